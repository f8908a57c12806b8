-- Floating IPs (spec section 4.4.8), fixed IP reservations and non-overlapping
-- networks. Every table here is written by the network service only.

-- Every address of the configured floating IP pool, made by the network service
-- on first use (services/network/floating_ips.py). A project holds an address
-- from allocation to deallocation; a server from association to disassociation.
CREATE SEQUENCE floating_ip_id_seq;

CREATE TABLE floating_ips (
    address         inet PRIMARY KEY,
    pool            text NOT NULL,
    -- Set while allocated. The id is the one the API shows; it is drawn anew at
    -- each allocation, so a stale id never names a later allocation of the same
    -- address. allocation_key is the allocating request's key: a redelivered
    -- allocation finds its address instead of taking a second one.
    id              bigint UNIQUE,
    project_id      text,
    allocation_key  uuid UNIQUE,
    allocated_at    timestamptz,
    -- Set while associated: the server, and which of its fixed addresses (on
    -- which network) the floating address maps to.
    server_id       uuid,
    network_id      uuid REFERENCES networks (id),
    fixed_address   inet,
    associated_at   timestamptz,
    CHECK ((project_id IS NULL) = (id IS NULL)),
    CHECK (server_id IS NULL OR project_id IS NOT NULL),
    CHECK ((server_id IS NULL) = (fixed_address IS NULL)),
    CHECK ((server_id IS NULL) = (network_id IS NULL))
);
CREATE INDEX floating_ips_free_idx ON floating_ips (pool, address) WHERE project_id IS NULL;
CREATE INDEX floating_ips_project_idx ON floating_ips (project_id, id) WHERE project_id IS NOT NULL;
CREATE INDEX floating_ips_server_idx ON floating_ips (server_id) WHERE server_id IS NOT NULL;

-- A fixed address that create server asks for is reserved for the server
-- before the server is written (server_id set, no port yet); the port takes it
-- when the server is built. reserved_at lets the network service free a
-- reservation whose server was never written or is deleted.
ALTER TABLE fixed_ips ADD COLUMN reserved_at timestamptz;
CREATE INDEX fixed_ips_server_idx ON fixed_ips (server_id) WHERE server_id IS NOT NULL;

-- Networks made by the management command may have any CIDR: none may overlap
-- another (the UNIQUE on cidr only caught equal ones). A default network whose
-- next /24 would overlap is carved from the index after (ON CONFLICT DO NOTHING
-- also covers exclusion constraints).
ALTER TABLE networks ADD CONSTRAINT networks_cidr_no_overlap
    EXCLUDE USING gist (cidr inet_ops WITH &&);
