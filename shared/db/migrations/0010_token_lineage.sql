-- Token lineage: a token rescoped from another (the "token" auth method)
-- records its parent, so that revoking a token revokes every token rescoped
-- from it, transitively.
--
-- The foreign key does the work: deleting a token (revocation, or a cascade
-- from its user or project) deletes its children, theirs in turn, and so on.
-- Because the insert of a child checks that its parent row exists under a key
-- share lock, a rescoping racing with the revocation of its parent either
-- fails or is deleted with it; no child outlives its parent. Tokens issued
-- before this migration have no recorded parent.

ALTER TABLE tokens
    ADD COLUMN parent_hash bytea REFERENCES tokens (token_hash) ON DELETE CASCADE;

-- The cascade looks children up by parent; most tokens have none.
CREATE INDEX tokens_parent_idx ON tokens (parent_hash) WHERE parent_hash IS NOT NULL;
