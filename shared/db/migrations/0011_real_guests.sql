-- Real guests (issue "Real guests"): images have files in the image store, and
-- hosts say which hypervisor they run and what it can do.

-- The image's file: a bare name inside the image store (shared.image_store) and
-- its format; NULL for an image whose bits were never written (a snapshot in
-- SAVING, or one that failed).
ALTER TABLE images ADD COLUMN location text;
ALTER TABLE images ADD COLUMN disk_format text NOT NULL DEFAULT 'raw'
    CHECK (disk_format IN ('raw', 'qcow2'));

-- What the host's driver reports (drivers.base.Capabilities, as JSON); the API
-- refuses an action the server's host cannot do. Hosts that report nothing yet
-- (agents of an older release) can do everything they could before.
ALTER TABLE compute_hosts ADD COLUMN hypervisor_type text NOT NULL DEFAULT 'fake';
ALTER TABLE compute_hosts ADD COLUMN capabilities jsonb;
