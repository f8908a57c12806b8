-- Volumes (issue "Volumes, and the last gaps"): the volume service's volumes,
-- snapshots and types. The API writes a volume or snapshot row in its first
-- status and the message that starts the work in the same transaction (the
-- outbox); the volume service and the compute agents move the status on with
-- guarded updates (shared/db/volumes.py), along shared/volume_states.py.

-- The types a volume may be created with: a seeded, configurable set (the
-- volume service writes its configured names at start, shared/db/volumes.py).
CREATE TABLE volume_types (
    id           uuid PRIMARY KEY,
    name         text NOT NULL UNIQUE,
    extra_specs  jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE volumes (
    id                     uuid PRIMARY KEY,
    project_id             text NOT NULL,
    user_id                text NOT NULL,
    status                 text NOT NULL CHECK (status IN (
                               'creating', 'available', 'attaching', 'in-use', 'detaching',
                               'deleting', 'error', 'error_deleting')),
    size_gb                integer NOT NULL CHECK (size_gb > 0),
    display_name           text,
    display_description    text,
    volume_type_id         uuid REFERENCES volume_types (id),
    availability_zone      text NOT NULL,
    snapshot_id            uuid,           -- made from this snapshot
    image_id               uuid,           -- made from this image (bootable)
    metadata               jsonb NOT NULL DEFAULT '{}',
    bootable               boolean NOT NULL DEFAULT false,  -- made from an image
    -- How a compute host reaches the bits (shared.contracts.volume.VolumeConnection
    -- as JSON), set by the backend when the volume is made; NULL before.
    connection             jsonb,
    -- The one attachment a volume may have: the server, the device it shows as,
    -- whether it is that server's root disk, and whether the server's delete
    -- deletes it too (boot from volume's delete_on_termination).
    server_id              uuid,
    device                 text,
    boot                   boolean NOT NULL DEFAULT false,
    delete_on_termination  boolean NOT NULL DEFAULT false,
    -- The request that began the transient status (creating, attaching, ...): a
    -- late copy of an older request's message finds nothing to do.
    status_request_id      text,
    -- Why the volume is in error / error_deleting, in the user's terms.
    error_reason           text,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    deleted_at             timestamptz,
    CHECK ((server_id IS NULL) = (device IS NULL))
);
CREATE INDEX volumes_project_idx ON volumes (project_id, created_at DESC, id DESC)
    WHERE deleted_at IS NULL;
CREATE INDEX volumes_server_idx ON volumes (server_id) WHERE server_id IS NOT NULL;
-- The sweep looks only at volumes in a transient status.
CREATE INDEX volumes_transient_idx ON volumes (updated_at)
    WHERE status IN ('creating', 'attaching', 'detaching', 'deleting');

CREATE TABLE volume_snapshots (
    id                   uuid PRIMARY KEY,
    project_id           text NOT NULL,
    user_id              text NOT NULL,
    volume_id            uuid NOT NULL REFERENCES volumes (id),
    status               text NOT NULL CHECK (status IN (
                             'creating', 'available', 'deleting', 'error', 'error_deleting')),
    size_gb              integer NOT NULL CHECK (size_gb > 0),
    display_name         text,
    display_description  text,
    -- Where the backend keeps the snapshot's bits (its own name); NULL before.
    location             text,
    status_request_id    text,
    error_reason         text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    deleted_at           timestamptz
);
CREATE INDEX volume_snapshots_project_idx ON volume_snapshots (project_id, created_at DESC, id DESC)
    WHERE deleted_at IS NULL;
CREATE INDEX volume_snapshots_volume_idx ON volume_snapshots (volume_id) WHERE deleted_at IS NULL;
CREATE INDEX volume_snapshots_transient_idx ON volume_snapshots (updated_at)
    WHERE status IN ('creating', 'deleting');
