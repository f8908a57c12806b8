-- What each project's live servers use, kept as they change (issue 14).
--
-- Before this a create counted the project's live servers under the quota lock
-- (count and sums over `servers`): work that grew with the project, done while
-- every other create of the project waited. Boots went from 104/s at 1,000
-- servers to 81/s at 10,000.
--
-- The counts live in one row per project, kept by one trigger on `servers`, so
-- every path that creates, deletes or purges a server keeps them true without
-- knowing about them: a server counts (1 instance, its flavor's vcpus and RAM)
-- from its insert until `deleted_at` is set or the row goes. The same row is
-- the project's quota lock (services/api/queries/quotas.py `lock_project`):
-- taking it returns the usage in the same statement.

CREATE TABLE project_usage (
    project_id  text PRIMARY KEY,
    instances   bigint NOT NULL DEFAULT 0,
    cores       bigint NOT NULL DEFAULT 0,
    ram_mb      bigint NOT NULL DEFAULT 0
);

INSERT INTO project_usage (project_id, instances, cores, ram_mb)
SELECT project_id, count(*), coalesce(sum((flavor->>'vcpus')::bigint), 0),
       coalesce(sum((flavor->>'ram_mb')::bigint), 0)
  FROM servers WHERE deleted_at IS NULL GROUP BY project_id;

CREATE FUNCTION project_usage_count() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    was_live boolean := TG_OP <> 'INSERT' AND OLD.deleted_at IS NULL;
    is_live boolean := TG_OP <> 'DELETE' AND NEW.deleted_at IS NULL;
BEGIN
    IF was_live AND (NOT is_live OR OLD.project_id <> NEW.project_id
                     OR OLD.flavor IS DISTINCT FROM NEW.flavor) THEN
        UPDATE project_usage
           SET instances = instances - 1,
               cores = cores - (OLD.flavor->>'vcpus')::bigint,
               ram_mb = ram_mb - (OLD.flavor->>'ram_mb')::bigint
         WHERE project_id = OLD.project_id;
        was_live := false;
    END IF;
    IF is_live AND NOT was_live THEN
        INSERT INTO project_usage AS u (project_id, instances, cores, ram_mb)
        VALUES (NEW.project_id, 1, (NEW.flavor->>'vcpus')::bigint,
                (NEW.flavor->>'ram_mb')::bigint)
        ON CONFLICT (project_id) DO UPDATE
           SET instances = u.instances + 1, cores = u.cores + EXCLUDED.cores,
               ram_mb = u.ram_mb + EXCLUDED.ram_mb;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER servers_project_usage
AFTER INSERT OR DELETE OR UPDATE OF deleted_at, project_id, flavor ON servers
FOR EACH ROW EXECUTE FUNCTION project_usage_count();
