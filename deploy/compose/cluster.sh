#!/usr/bin/env bash
# `make cluster-up` / `make cluster-down` / `make cluster-clean`: the cloud of
# compose.yaml, from the images of `make images`.
#
# With docker (CONTAINER_ENGINE=docker), `docker compose up --wait` honours the
# file's depends_on conditions. podman-compose 1.0.3 (Debian 12's) ignores them
# and podman runs no health checks by itself without systemd, so for podman this
# script keeps the order: PostgreSQL and RabbitMQ healthy, then the one-shot
# migrate+bootstrap done, then the services, each checked with
# `podman healthcheck run` until healthy (or the timeout, CLUSTER_TIMEOUT_S).
#
# With podman, names are given to the containers in /etc/hosts (--add-host) rather
# than left to podman's DNS: aardvark-dns 1.4 (Debian 12's) at times answers
# nothing for about 20 s (measured inside the api container: one lookup of
# `postgres` took 20.0 s, the resolver's 4 x 5 s, while others took 3 ms), and
# the services resolve `postgres` each time their pool opens a connection, so
# requests failed with 503 after the 5 s pool wait. The addresses are read once
# each container runs; they stay while it runs. The gateway (HAProxy) is given
# the replicas' addresses the same way (it resolves them through libc at start).
#
#   up      start (or complete) the cluster
#   down    stop and remove its containers and network; the volumes (data) stay
#   clean   down, and remove the volumes too
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
engine=${CONTAINER_ENGINE:-podman}
timeout_s=${CLUSTER_TIMEOUT_S:-180}
services=(api api-2 scheduler scheduler-2 network network-2 volume volume-2
          consoleproxy consoleproxy-2 compute-az1 compute-az2 compute-az3)
# Behind the gateway (HAProxy, haproxy.cfg), which starts last, once they are
# healthy: it resolves their names once, at its start, from its /etc/hosts.
fronted=(api api-2 consoleproxy consoleproxy-2)

log() { printf '==> %s\n' "$*" >&2; }

# On a fresh machine podman and podman-compose come from Debian's packages (as
# build.sh does for podman itself).
ensure_tools() {
    [ "$engine" = podman ] || return 0
    local missing=() t
    for t in podman runc podman-compose; do command -v "$t" >/dev/null || missing+=("$t"); done
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

if [ "$engine" = podman ]; then
    export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/../images/containers.conf}
    compose() { podman-compose -p nimbus -f "$here/compose.yaml" "$@"; }
    # compose, with each named service's address in the new containers' /etc/hosts.
    compose_hosts() {
        local names=() args="" name ip
        while [ "$1" != -- ]; do names+=("$1"); shift; done
        shift
        for name in "${names[@]}"; do
            ip=$(podman inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "nimbus-$name")
            [ -n "$ip" ] || { log "nimbus-$name has no address"; return 1; }
            args+=" --add-host=$name:$ip"
        done
        podman-compose --podman-run-args "$args" -p nimbus -f "$here/compose.yaml" "$@"
    }
else
    compose() { docker compose -p nimbus -f "$here/compose.yaml" "$@"; }
fi

# Poll each container's health check until it passes: podman only records a
# check's result when one runs, and without systemd nothing runs them.
wait_healthy() {
    local deadline=$((SECONDS + timeout_s)) name
    for name in "$@"; do
        until podman healthcheck run "$name" >/dev/null 2>&1; do
            if [ "$(podman inspect -f '{{.State.Running}}' "$name" 2>/dev/null)" != true ]; then
                log "$name is not running; its log:"; podman logs --tail 30 "$name" >&2 || true
                return 1
            fi
            if [ $SECONDS -ge $deadline ]; then
                log "$name not healthy after ${timeout_s}s; its log:"; podman logs --tail 30 "$name" >&2
                return 1
            fi
            sleep 1
        done
        log "$name healthy"
    done
}

# A restarted PostgreSQL or RabbitMQ container may come back on another address,
# which the services' /etc/hosts (written when they were made) does not know: they
# would retry the old one for ever. So a service whose entry is stale is removed,
# and the `up` that follows makes it anew (its data is in volumes).
drop_stale_hosts() {
    local name dep want have
    for name in "$@"; do
        podman container exists "nimbus-$name" || continue
        for dep in postgres rabbitmq; do
            want=$(podman inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "nimbus-$dep")
            have=$(podman inspect -f '{{range .HostConfig.ExtraHosts}}{{println .}}{{end}}' "nimbus-$name" \
                   | sed -n "s/^$dep:\(.*\)$/\1/p")
            if [ "$have" != "$want" ]; then
                log "nimbus-$name knows $dep at ${have:-nothing}, now $want: making it anew"
                podman rm -f -t 15 "nimbus-$name" >/dev/null
                break
            fi
        done
    done
}

up() {
    ensure_tools
    if [ "$engine" != podman ]; then
        compose up -d --wait --wait-timeout "$timeout_s"
        return
    fi
    # podman-compose's own output (and podman's complaint, harmless here, that
    # without systemd it cannot schedule health checks) is shown only on failure.
    local out
    out=$(mktemp)
    trap 'log "podman-compose said:"; tail -40 "$out" >&2; rm -f "$out"' ERR
    compose up -d postgres rabbitmq >>"$out" 2>&1
    wait_healthy nimbus-postgres nimbus-rabbitmq
    podman rm -f nimbus-migrate >/dev/null 2>&1 || true
    compose_hosts postgres rabbitmq -- up -d migrate >>"$out" 2>&1
    local rc
    rc=$(podman wait nimbus-migrate)
    podman logs nimbus-migrate 2>&1 | tail -5 >&2
    if [ "$rc" != 0 ]; then log "migrate+bootstrap failed ($rc)"; return 1; fi
    # podman-compose restarts a service's dependencies too: migrate runs once
    # more, harmlessly (both its steps are idempotent).
    drop_stale_hosts "${services[@]}"
    compose_hosts postgres rabbitmq -- up -d "${services[@]}" >>"$out" 2>&1 || true
    wait_healthy "${services[@]/#/nimbus-}"
    # Made anew each time: a replica restarted since (podman start) has a new
    # address, which only a new gateway container's /etc/hosts holds.
    podman rm -f nimbus-gateway >/dev/null 2>&1 || true
    compose_hosts "${fronted[@]}" -- up -d gateway >>"$out" 2>&1 || true
    wait_healthy nimbus-gateway
    trap - ERR
    rm -f "$out"
    log "Nimbus is up: identity http://127.0.0.1:5000/v3, compute http://127.0.0.1:8774 (make smoke checks it)"
}

# Fails when a container or the network of the project is left behind.
down() {
    compose down -t 15 "$@" >/dev/null 2>&1 || true
    if [ "$engine" = podman ]; then
        # podman-compose 1.0.3 leaves its network behind.
        podman network rm -f nimbus_default >/dev/null 2>&1 || true
    fi
    local label=com.docker.compose.project=nimbus
    [ "$engine" = podman ] && label=io.podman.compose.project=nimbus
    local left
    left=$("$engine" ps -a --format '{{.Names}}' --filter "label=$label")
    if "$engine" network inspect nimbus_default >/dev/null 2>&1; then left+=" network:nimbus_default"; fi
    if [ -n "${left// /}" ]; then log "left behind:" $left; return 1; fi
    log "stopped; no container left (volumes: $("$engine" volume ls -q --filter "label=$label" | wc -l) kept)"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    clean) down -v ;;
    *) echo "usage: $0 up|down|clean" >&2; exit 2 ;;
esac
