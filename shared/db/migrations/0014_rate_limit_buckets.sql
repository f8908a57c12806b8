-- Rate-limit counters shared by every API process (issue 13, item 4): one leaky
-- bucket per (project, rule), where a rule is known by its verb and uri label as
-- in project_rate_limits. Before this, each API process counted in its memory,
-- so N replicas gave a project N times its allowance.
--
-- A bucket holds `level` seconds of its unit, as of `at`; a request adds
-- unit/value seconds and it drains one second per second (services/api/
-- ratelimit.py explains the rules). The arithmetic lives here, in three
-- functions, and nowhere else: the API calls rate_limit_charge once per
-- rate-limited request and rate_limit_status for /limits.

CREATE TABLE rate_limit_buckets (
    project_id  text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    verb        text NOT NULL,
    uri         text NOT NULL,
    level       double precision NOT NULL CHECK (level >= 0),
    at          timestamptz NOT NULL,
    PRIMARY KEY (project_id, verb, uri)
);

-- The level left at `t` of a bucket filled to `level` at `at`, capped at the
-- rule's unit (a rule whose unit shrank must not wait for the old one to drain).
CREATE FUNCTION rate_limit_drained(level double precision, at timestamptz,
                                   seconds double precision, t timestamptz)
RETURNS double precision LANGUAGE sql IMMUTABLE AS $$
    SELECT least(seconds, greatest(0, level - greatest(0, extract(epoch FROM t - at))))
$$;

-- Seconds until one more request fits a bucket at `level` (<= 0: it fits now).
CREATE FUNCTION rate_limit_wait(level double precision, seconds double precision,
                                value integer)
RETURNS double precision LANGUAGE sql IMMUTABLE AS $$
    SELECT level + seconds / value - seconds
$$;

-- Charge one request to every given rule of the project, or to none of them.
-- Returns nothing when charged, else one row per rule that is spent with how
-- long until the request would fit. The project's buckets are locked in key
-- order (two requests of one project never deadlock), created on first use.
-- `p_now` is for tests; NULL means the database's clock, the one clock every
-- API process shares.
CREATE FUNCTION rate_limit_charge(p_project text, p_verbs text[], p_uris text[],
                                  p_seconds double precision[], p_values integer[],
                                  p_now timestamptz DEFAULT NULL)
RETURNS TABLE (verb text, uri text, retry_after double precision)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    t timestamptz := coalesce(p_now, clock_timestamp());
    locked integer;
BEGIN
    PERFORM 1 FROM rate_limit_buckets b
      JOIN unnest(p_verbs, p_uris) AS r(v, u) ON b.verb = r.v AND b.uri = r.u
     WHERE b.project_id = p_project
     ORDER BY b.verb, b.uri FOR UPDATE OF b;
    GET DIAGNOSTICS locked = ROW_COUNT;
    IF locked < cardinality(p_verbs) THEN
        INSERT INTO rate_limit_buckets AS b (project_id, verb, uri, level, at)
        SELECT p_project, r.v, r.u, 0, t FROM unnest(p_verbs, p_uris) AS r(v, u)
         ORDER BY r.v, r.u
        ON CONFLICT DO NOTHING;
        PERFORM 1 FROM rate_limit_buckets b
          JOIN unnest(p_verbs, p_uris) AS r(v, u) ON b.verb = r.v AND b.uri = r.u
         WHERE b.project_id = p_project
         ORDER BY b.verb, b.uri FOR UPDATE OF b;
    END IF;
    RETURN QUERY
    SELECT r.v, r.u, rate_limit_wait(rate_limit_drained(b.level, b.at, r.s, t), r.s, r.n)
      FROM rate_limit_buckets b
      JOIN unnest(p_verbs, p_uris, p_seconds, p_values) AS r(v, u, s, n)
        ON b.verb = r.v AND b.uri = r.u
     WHERE b.project_id = p_project
       AND rate_limit_wait(rate_limit_drained(b.level, b.at, r.s, t), r.s, r.n) > 1e-9;
    IF NOT FOUND THEN
        UPDATE rate_limit_buckets b
           SET level = rate_limit_drained(b.level, b.at, r.s, t) + r.s / r.n, at = t
          FROM unnest(p_verbs, p_uris, p_seconds, p_values) AS r(v, u, s, n)
         WHERE b.project_id = p_project AND b.verb = r.v AND b.uri = r.u;
    END IF;
END
$$;

-- Each given rule's requests left now and when the next one fits, charging
-- nothing (a rule never used has its whole allowance).
CREATE FUNCTION rate_limit_status(p_project text, p_verbs text[], p_uris text[],
                                  p_seconds double precision[], p_values integer[],
                                  p_now timestamptz DEFAULT NULL)
RETURNS TABLE (verb text, uri text, remaining integer, next_available timestamptz)
LANGUAGE sql STABLE AS $$
    WITH t AS (SELECT coalesce(p_now, clock_timestamp()) AS t),
    cur AS (
        SELECT r.v, r.u, r.s, r.n, r.i,
               coalesce(rate_limit_drained(b.level, b.at, r.s, t.t), 0) AS level, t.t
          FROM t, unnest(p_verbs, p_uris, p_seconds, p_values) WITH ORDINALITY AS r(v, u, s, n, i)
          LEFT JOIN rate_limit_buckets b
            ON b.project_id = p_project AND b.verb = r.v AND b.uri = r.u)
    SELECT v, u,
           greatest(0, least(n, floor((s - level) / (s / n) + 1e-9)::integer)),
           t + make_interval(secs => greatest(0, rate_limit_wait(level, s, n)))
      FROM cur ORDER BY i
$$;
