-- Instance actions (spec 4.4.20): one row per operation a user asked of a
-- server, keyed by its request id, and the events the services recorded for it.

CREATE TABLE instance_actions (
    id           bigserial PRIMARY KEY,
    server_id    uuid NOT NULL,
    project_id   text NOT NULL,
    user_id      text NOT NULL,
    action       text NOT NULL,
    request_id   text NOT NULL,
    message      text,
    start_time   timestamptz NOT NULL DEFAULT now(),
    finish_time  timestamptz,
    UNIQUE (server_id, request_id)
);
CREATE INDEX instance_actions_server_idx ON instance_actions (server_id, start_time DESC, id DESC);

CREATE TABLE instance_action_events (
    id           bigserial PRIMARY KEY,
    action_id    bigint NOT NULL REFERENCES instance_actions (id) ON DELETE CASCADE,
    event        text NOT NULL,
    host         text,
    start_time   timestamptz NOT NULL DEFAULT now(),
    finish_time  timestamptz,
    result       text,
    traceback    text,
    UNIQUE (action_id, event)
);
