-- Per-project limits (spec section 3.8): quotas and rate limits that differ
-- from the defaults, set by the management command. A project without rows
-- here has the defaults of services/api/quotas.py and services/api/ratelimit.py.
--
-- Usage is not stored: it is counted from the project's live servers under a
-- per-project advisory lock when a server is created (see quotas.py), so it
-- can never drift from the servers themselves.

CREATE TABLE project_quotas (
    project_id  text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    -- The absolute limit's name as /limits shows it: maxTotalInstances, ...
    resource    text NOT NULL CHECK (resource ~ '^max[A-Za-z]+$'),
    -- -1 means unlimited.
    hard_limit  integer NOT NULL CHECK (hard_limit >= -1),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, resource)
);

-- A project's rate limits replace the default rule with the same verb and uri
-- label and add to the others (see ratelimit.py).
CREATE TABLE project_rate_limits (
    project_id  text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    verb        text NOT NULL CHECK (verb IN ('GET', 'POST', 'PUT', 'DELETE')),
    -- A label shown in /limits ("*", "*/servers", "*changes-since*").
    uri         text NOT NULL CHECK (length(uri) BETWEEN 1 AND 255),
    -- Matched (anchored at the start) against the path after /v2/{project_id},
    -- with "?query" appended when there is one.
    regex       text NOT NULL CHECK (length(regex) BETWEEN 1 AND 255),
    value       integer NOT NULL CHECK (value > 0),
    unit        text NOT NULL CHECK (unit IN ('SECOND', 'MINUTE', 'HOUR', 'DAY')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, verb, uri)
);
