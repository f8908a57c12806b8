-- Console tokens (os-getVNCConsole, spec section 4.4.16): the API writes one
-- per console URL it hands out; the console proxy spends it once.
--
-- Only the SHA-256 of a token is kept, so that reading this table does not let
-- anyone open a console. A token is good until expires_at and for one use:
-- the proxy consumes it with one guarded UPDATE (used = false AND
-- expires_at > now()), so two connections racing with one token cannot both win.

CREATE TABLE console_tokens (
    token_sha256  bytea PRIMARY KEY CHECK (length(token_sha256) = 32),
    server_id     uuid NOT NULL,
    project_id    text NOT NULL,
    console_type  text NOT NULL CHECK (console_type IN ('novnc', 'xvpvnc')),
    -- Where the guest's VNC server listens, as its compute agent reported it.
    host          text NOT NULL,
    port          integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
    expires_at    timestamptz NOT NULL,
    used          boolean NOT NULL DEFAULT false,
    used_at       timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now()
);
-- For the proxy's sweep of tokens long expired.
CREATE INDEX console_tokens_expires_idx ON console_tokens (expires_at);
