-- The compute catalog, servers, hosts and their claims, networks and ports.

CREATE TABLE flavors (
    id            text PRIMARY KEY,
    name          text NOT NULL UNIQUE,
    ram_mb        integer NOT NULL CHECK (ram_mb > 0),
    disk_gb       integer NOT NULL CHECK (disk_gb >= 0),
    ephemeral_gb  integer NOT NULL DEFAULT 0 CHECK (ephemeral_gb >= 0),
    swap_mb       integer NOT NULL DEFAULT 0 CHECK (swap_mb >= 0),
    vcpus         integer NOT NULL CHECK (vcpus > 0),
    rxtx_factor   double precision NOT NULL DEFAULT 1.0,
    is_public     boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE images (
    id                uuid PRIMARY KEY,
    name              text NOT NULL,
    status            text NOT NULL DEFAULT 'ACTIVE',
    visibility        text NOT NULL DEFAULT 'public' CHECK (visibility IN ('public', 'private')),
    owner_project_id  text,
    server_id         uuid,
    min_disk_gb       integer NOT NULL DEFAULT 0,
    min_ram_mb        integer NOT NULL DEFAULT 0,
    size_bytes        bigint NOT NULL DEFAULT 0,
    progress          integer NOT NULL DEFAULT 100,
    metadata          jsonb NOT NULL DEFAULT '{}',
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    deleted_at        timestamptz
);
CREATE INDEX images_owner_idx ON images (owner_project_id);

CREATE TABLE servers (
    id                 uuid PRIMARY KEY,
    project_id         text NOT NULL,
    user_id            text NOT NULL,
    name               text NOT NULL,
    image_id           uuid,
    flavor_id          text NOT NULL,
    flavor             jsonb NOT NULL,           -- FlavorSpec at create time
    vm_state           text NOT NULL,
    task_state         text,
    power_state        integer NOT NULL DEFAULT 0,
    host               text,
    availability_zone  text,                     -- requested, then the host's
    metadata           jsonb NOT NULL DEFAULT '{}',
    security_groups    jsonb NOT NULL DEFAULT '["default"]',
    addresses          jsonb NOT NULL DEFAULT '[]', -- list of Port, cached by the agent
    key_name           text,
    config_drive       boolean NOT NULL DEFAULT false,
    access_ipv4        text NOT NULL DEFAULT '',
    access_ipv6        text NOT NULL DEFAULT '',
    progress           integer NOT NULL DEFAULT 0,
    reservation_id     text NOT NULL,
    request_id         text,
    launched_at        timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    deleted_at         timestamptz
);
CREATE INDEX servers_project_created_idx ON servers (project_id, created_at DESC, id DESC);
CREATE INDEX servers_host_idx ON servers (host) WHERE deleted_at IS NULL;

CREATE TABLE server_faults (
    id          bigserial PRIMARY KEY,
    server_id   uuid NOT NULL REFERENCES servers (id),
    code        integer NOT NULL,
    message     text NOT NULL,
    details     text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX server_faults_server_idx ON server_faults (server_id, created_at DESC);

-- One row per compute agent; the agent keeps totals and last_heartbeat fresh,
-- the scheduler moves the used_* columns through claims.
CREATE TABLE compute_hosts (
    host               text PRIMARY KEY,
    availability_zone  text NOT NULL,
    total_ram_mb       integer NOT NULL,
    total_disk_gb      integer NOT NULL,
    total_vcpus        integer NOT NULL,
    ram_ratio          double precision NOT NULL DEFAULT 1.0,
    disk_ratio         double precision NOT NULL DEFAULT 1.0,
    cpu_ratio          double precision NOT NULL DEFAULT 1.0,
    used_ram_mb        integer NOT NULL DEFAULT 0 CHECK (used_ram_mb >= 0),
    used_disk_gb       integer NOT NULL DEFAULT 0 CHECK (used_disk_gb >= 0),
    used_vcpus         integer NOT NULL DEFAULT 0 CHECK (used_vcpus >= 0),
    disabled           boolean NOT NULL DEFAULT false,
    started_at         timestamptz NOT NULL DEFAULT now(),
    last_heartbeat     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE host_claims (
    server_id   uuid PRIMARY KEY,
    host        text NOT NULL REFERENCES compute_hosts (host),
    ram_mb      integer NOT NULL,
    disk_gb     integer NOT NULL,
    vcpus       integer NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE networks (
    id          uuid PRIMARY KEY,
    project_id  text NOT NULL,
    name        text NOT NULL,
    cidr        cidr NOT NULL UNIQUE,
    gateway     inet NOT NULL,
    is_default  boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, name)
);
CREATE UNIQUE INDEX networks_one_default_idx ON networks (project_id) WHERE is_default;
CREATE SEQUENCE network_subnet_seq;

-- Every usable address of a network, made with the network; a port takes one
-- with FOR UPDATE SKIP LOCKED so concurrent allocations never collide.
CREATE TABLE fixed_ips (
    network_id  uuid NOT NULL REFERENCES networks (id),
    address     inet NOT NULL,
    server_id   uuid,
    PRIMARY KEY (network_id, address)
);
CREATE INDEX fixed_ips_free_idx ON fixed_ips (network_id, address) WHERE server_id IS NULL;

CREATE TABLE ports (
    id          uuid PRIMARY KEY,
    server_id   uuid NOT NULL,
    network_id  uuid NOT NULL REFERENCES networks (id),
    address     inet NOT NULL,
    mac         macaddr NOT NULL UNIQUE,
    host        text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (network_id, address)
);
CREATE INDEX ports_server_idx ON ports (server_id);

CREATE TABLE security_groups (
    id           bigserial PRIMARY KEY,
    project_id   text NOT NULL,
    name         text NOT NULL,
    description  text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, name)
);

CREATE TABLE security_group_rules (
    id               bigserial PRIMARY KEY,
    parent_group_id  bigint NOT NULL REFERENCES security_groups (id) ON DELETE CASCADE,
    ip_protocol      text,
    from_port        integer,
    to_port          integer,
    cidr             cidr,
    group_id         bigint REFERENCES security_groups (id),
    created_at       timestamptz NOT NULL DEFAULT now()
);
