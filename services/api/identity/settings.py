"""Settings of the Keystone-compatible identity service (section ``[identity]``)."""

from __future__ import annotations

import ipaddress
from typing import Annotated

import msgspec


class IdentitySettings(msgspec.Struct, frozen=True, kw_only=True):
    host: str = "127.0.0.1"
    """Address the identity site listens on; ``0.0.0.0`` exposes it on every
    interface, which a multi-host deployment needs."""

    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 5000
    """TCP port of the identity site (Keystone's customary 5000); 0 picks a free one."""

    public_url: str = "http://127.0.0.1:5000"
    """Base URL clients reach this service at, without a trailing slash. It goes
    into version documents, the catalog's identity entry and ``WWW-Authenticate``;
    change it together with ``host``/``port`` or any proxy in front."""

    compute_public_url: str = "http://127.0.0.1:8774"
    """Base URL of the compute API. The catalog's compute endpoints (public,
    internal and admin alike) are ``{compute_public_url}/v2/{project_id}``."""

    image_public_url: str = "http://127.0.0.1:9292"
    """Base URL of the image endpoint (type ``image``, a Glance v2 subset), as the
    catalog names it: clients discover ``/v2`` below it."""

    network_public_url: str = "http://127.0.0.1:9696"
    """Base URL of the network endpoint (type ``network``, a Neutron v2.0 subset),
    as the catalog names it: clients discover ``/v2.0`` below it."""

    block_storage_public_url: str = "http://127.0.0.1:8776"
    """Base URL of the block-storage endpoint; the catalog's ``block-storage`` and
    ``volumev3`` entries are ``{block_storage_public_url}/v3/{project_id}``."""

    region: str = "region-a"
    """Region name of every catalog endpoint; clients that pass a region name
    must use this one."""

    token_ttl_s: Annotated[int, msgspec.Meta(gt=0)] = 86400
    """Seconds a token stays valid after it is issued (24 h by default). Shorter
    limits the damage of a leaked token but makes clients log in more often;
    a rescoped token keeps the expiry of the token it came from."""

    token_purge_interval_s: Annotated[float, msgspec.Meta(ge=0)] = 3600.0
    """Seconds between deletions of expired token rows; 0 turns purging off.
    Expired tokens are refused either way; this only bounds the table's size."""

    demo_password: str = "demo"
    """Password of the bootstrap user ``demo`` (member of project ``demo``).
    Changing it and bootstrapping again updates the stored hash."""

    alt_password: str = "alt"
    """Password of the bootstrap user ``alt`` (member of project ``alt``)."""

    admin_password: str = "admin"
    """Password of the bootstrap user ``admin`` (admin and member of project ``admin``).
    Set it to something else anywhere reachable from outside."""

    password_check_threads: Annotated[int, msgspec.Meta(ge=0)] = 0
    """Password checks of logins that run at once, each on its own thread (scrypt:
    about 50 ms of CPU and 16 MiB); 0 means half the machine's cores, at least
    one. More serves a burst of logins sooner but leaves less CPU to the compute
    API, which shares the process."""

    password_check_queue: Annotated[int, msgspec.Meta(ge=0)] = 32
    """Logins that may wait for a password check beyond those running; one more is
    refused at once with 503 and ``Retry-After`` instead of queueing. Longer rides
    out bursts; each waiting login makes those behind it wait about 50 ms divided
    by the threads longer."""

    login_address_burst: Annotated[float, msgspec.Meta(ge=0)] = 30.0
    """Failed logins a client address may make in a row before its logins get 429
    with ``Retry-After`` (a successful one costs ``login_success_cost`` of a
    failure); 0 turns the per-address limit off. Higher spares the users behind
    one NAT address each other's typos; lower stops a guesser sooner."""

    login_address_per_minute: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    """How fast an address's allowance refills, in failed logins per minute: the
    rate one address keeps guessing at once its burst is spent."""

    login_user_burst: Annotated[float, msgspec.Meta(ge=0)] = 10.0
    """Failed logins against one user (by name or id), from any address, before
    its password logins get 429; 0 turns the per-user limit off. This bounds
    guessing one account from many addresses; the price is that whoever keeps
    failing against a user keeps its owner from logging in by password meanwhile
    (tokens already issued, and rescoping them, keep working)."""

    login_user_per_minute: Annotated[float, msgspec.Meta(gt=0)] = 3.0
    """How fast a user's allowance refills, in failed logins per minute: the rate
    at which one account can be guessed at, however many addresses try."""

    login_success_cost: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.1
    """What a successful login counts for, as a share of a failed one (0.1: ten
    successes weigh one failure). Above 0 so that a client logging in for every
    request cannot keep the process hashing without end; well below 1 so that
    users are not throttled by their own normal use."""

    login_throttle_entries: Annotated[int, msgspec.Meta(ge=100)] = 100_000
    """Addresses, and separately user names, whose spent allowance is remembered
    (about 200 bytes each). When full, the least recently seen is forgotten, which
    gives it a fresh allowance: too few lets a flood of other names or addresses
    wash a throttled one out; more costs memory."""

    trusted_proxies: str = ""
    """Comma-separated addresses or networks (``10.0.0.0/8``) of reverse proxies
    in front of the identity site. Only a request whose peer is one of them has
    its client address read from ``X-Forwarded-For`` (the rightmost entry that is
    not itself a trusted proxy). Empty (the default): the peer address is the
    client, since anyone can write ``X-Forwarded-For``; behind a proxy that is not
    listed, every client shares the proxy's allowance."""

    def __post_init__(self) -> None:
        trusted_networks(self.trusted_proxies)  # a typo fails at start, not per login


def trusted_networks(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """The networks of a ``trusted_proxies`` value.

    Raises:
        ValueError: an entry is not an address or network.
    """
    return tuple(ipaddress.ip_network(part.strip(), strict=False)
                 for part in text.split(",") if part.strip())
