-- A server list with changes-since (services/api/queries/servers.py, _PAGE_WHERE)
-- reads the project's servers changed since a time, deleted ones included. With only
-- servers_project_created_idx that was a sequential scan of the whole table: 37 ms
-- at 100,000 servers for a poll that found nothing, growing with the cloud. With
-- this index it reads the rows changed since then, in the project, and no others.
CREATE INDEX servers_project_updated_idx ON servers (project_id, updated_at);

-- Get and list detail show a server's latest fault: a subquery per server ordered
-- by (created_at DESC, id DESC). The old index had no id, so each server's lookup
-- ran an incremental sort, even of nothing: about 10 µs a server, 10 ms of a
-- 1,000-server page. With id in the index the first entry is the answer. It
-- starts with server_id, so it serves the foreign key as the old one did.
CREATE INDEX server_faults_latest_idx ON server_faults (server_id, created_at DESC, id DESC);
DROP INDEX server_faults_server_idx;
