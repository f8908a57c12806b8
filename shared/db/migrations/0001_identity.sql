-- Identity: domains, projects, users, roles, role assignments and tokens.
--
-- Ids are uuid4 hex text, as Keystone's are, except the Default domain whose
-- id is the literal 'default' that every client assumes. Passwords are stored
-- only as scrypt hashes and tokens only as SHA-256 digests of the token id, so
-- a copy of this database gives no way in.

CREATE TABLE domains (
    id          text PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    description text NOT NULL DEFAULT '',
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE projects (
    id          text PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    domain_id   text NOT NULL REFERENCES domains (id),
    description text NOT NULL DEFAULT '',
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (domain_id, name)
);

CREATE TABLE users (
    id                 text PRIMARY KEY,
    name               text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    domain_id          text NOT NULL REFERENCES domains (id),
    -- scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>
    password_hash      text NOT NULL CHECK (password_hash LIKE 'scrypt$%'),
    enabled            boolean NOT NULL DEFAULT true,
    default_project_id text REFERENCES projects (id) ON DELETE SET NULL,
    email              text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (domain_id, name)
);

CREATE TABLE roles (
    id   text PRIMARY KEY,
    name text NOT NULL UNIQUE
);

CREATE TABLE role_assignments (
    user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    project_id text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    role_id    text NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, project_id, role_id)
);

-- Listing a project's members.
CREATE INDEX role_assignments_project_idx ON role_assignments (project_id);

CREATE TABLE tokens (
    -- SHA-256 of the token id; the id itself is never stored.
    token_hash     bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id        text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- NULL for an unscoped token.
    project_id     text REFERENCES projects (id) ON DELETE CASCADE,
    -- Role names the user held on the project when the token was issued.
    roles          text[] NOT NULL DEFAULT '{}',
    -- Authentication methods, as in a v3 token body: {password} or {token,password}.
    methods        text[] NOT NULL,
    -- API version the token was asked for through: 'v2.0' or 'v3'.
    api_version    text NOT NULL CHECK (api_version IN ('v2.0', 'v3')),
    audit_id       text NOT NULL,
    -- audit_id of the first token of a rescoping chain; NULL for a first token.
    audit_chain_id text,
    issued_at      timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL
);

-- Purging expired tokens.
CREATE INDEX tokens_expires_at_idx ON tokens (expires_at);
-- ON DELETE CASCADE from users and projects.
CREATE INDEX tokens_user_idx ON tokens (user_id);
CREATE INDEX tokens_project_idx ON tokens (project_id);
