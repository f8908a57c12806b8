-- Keypairs (spec 4.4.9) and what security groups (4.4.11) need beyond 0002.

-- Nova keeps keypairs per user; here they are per project and user: a user
-- sees, uses and counts (maxTotalKeypairs) only the keypairs made in the
-- project the token is scoped to. Only the public key is stored: a generated
-- private key is returned once, by create, and never kept.
CREATE TABLE keypairs (
    id           bigserial PRIMARY KEY,
    project_id   text NOT NULL,
    user_id      text NOT NULL,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    fingerprint  text NOT NULL,
    public_key   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, user_id, name)
);

-- A rule whose source is a group goes with that group (Nova deleted those
-- rules with the group too); 0002 made the reference without ON DELETE.
ALTER TABLE security_group_rules
    DROP CONSTRAINT security_group_rules_group_id_fkey,
    ADD CONSTRAINT security_group_rules_group_id_fkey
        FOREIGN KEY (group_id) REFERENCES security_groups (id) ON DELETE CASCADE;

-- Exactly one source (a CIDR or a group) per rule; the API checks it first.
ALTER TABLE security_group_rules
    ADD CONSTRAINT security_group_rules_one_source
        CHECK ((cidr IS NULL) <> (group_id IS NULL));

CREATE INDEX security_group_rules_parent_idx ON security_group_rules (parent_group_id, id);
CREATE INDEX security_group_rules_source_idx ON security_group_rules (group_id)
    WHERE group_id IS NOT NULL;
