-- What "nothing lost" needs in the database (issue 9): the outbox of messages that
-- accepted work depends on, and the build requests a reschedule is made from.

-- A message is written here in the transaction that changes the rows it is about,
-- so it exists exactly when that work was accepted; the relay (shared/outbox.py)
-- publishes it and deletes the row. claimed_until is a lease: the process that
-- holds it publishes the row, and once it lapses (that process died) any relay
-- may claim it. Bodies can hold a server's admin password and user data, as the
-- broker's own persistent messages do: rows live for milliseconds unless the
-- broker is down.
CREATE TABLE outbox (
    id             bigserial PRIMARY KEY,
    queue          text NOT NULL,
    body           bytea NOT NULL,
    request_id     text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    claimed_until  timestamptz NOT NULL,
    attempts       integer NOT NULL DEFAULT 0
);
CREATE INDEX outbox_claimed_idx ON outbox (claimed_until);

-- The request whose task the server is in (the create's while it builds): the
-- compute agent acts on a message only if it carries that request's id, so a copy
-- of an older message delivered late (at-least-once) cannot act on a newer task of
-- the same kind (a second rebuild, a second snapshot).
ALTER TABLE servers ADD COLUMN task_request_id text;

-- The build request of a server still building (Nova's build_requests): the
-- ScheduleBuild message it was created with, and every host tried so far with why
-- it failed, so that a build whose host died can be scheduled again elsewhere.
-- Dropped when the server leaves BUILD (ACTIVE, ERROR or DELETED). Like the
-- outbox's, its body holds the admin password and user data the server was
-- created with, for as long as the build lasts (seconds), as Nova's request
-- spec and the broker's persistent messages do.
CREATE TABLE build_requests (
    server_id   uuid PRIMARY KEY,
    body        bytea NOT NULL,
    attempts    jsonb NOT NULL DEFAULT '[]',
    created_at  timestamptz NOT NULL DEFAULT now()
);
