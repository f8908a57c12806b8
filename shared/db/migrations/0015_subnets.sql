-- A network's address space as one or more subnets (issue 14, point 4). Before
-- this a network was one CIDR (networks.cidr), and a project's default network,
-- one /24, ended at 253 servers. Now the network service adds a further subnet
-- to a full default network (services/network/growth.py), carved from the
-- project supernet like the first; networks.cidr and networks.gateway stay the
-- first subnet's (what os-networks shows).
--
-- ordinal 0 is the network's first subnet, made with the network; the n-th
-- added one is ordinal n. The API derives a subnet's id from (network_id,
-- ordinal), so the one subnet every network showed before keeps its id.
-- fixed_ips stay keyed by (network_id, address): a subnet's rows are the
-- network's rows inside its cidr, and the subnet of an address is found with
-- the exclusion constraint's GiST index (cidr >>= address).

CREATE TABLE subnets (
    network_id  uuid NOT NULL REFERENCES networks (id),
    ordinal     integer NOT NULL CHECK (ordinal >= 0),
    cidr        cidr NOT NULL,
    gateway     inet NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (network_id, ordinal),
    -- No two subnets of any networks overlap (networks_cidr_no_overlap does the
    -- same for first subnets only; a network's insert is checked by both).
    CONSTRAINT subnets_cidr_no_overlap EXCLUDE USING gist (cidr inet_ops WITH &&)
);

-- Existing networks keep their one subnet and their size.
INSERT INTO subnets (network_id, ordinal, cidr, gateway, created_at)
SELECT id, 0, cidr, gateway, created_at FROM networks;
