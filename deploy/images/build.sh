#!/usr/bin/env bash
# `make images`: the Nimbus container images, built without any registry.
#
#   nimbus-base:bookworm-rN  Debian 12 (minbase + python3) made by debootstrap and
#                            imported; the FROM of the four below
#   nimbus:latest            the services (one image, a command per service)
#   nimbus-postgres:latest   PostgreSQL 15 from Debian's packages
#   nimbus-rabbitmq:latest   RabbitMQ from Debian's packages
#   nimbus-gateway:latest    HAProxy from Debian's packages (the compose
#                            cluster's published ports, deploy/compose/haproxy.cfg)
#
# CONTAINER_ENGINE=podman (default) or docker. With podman the tools are installed
# with apt-get when missing and deploy/images/containers.conf (runc, rlimits this
# machine allows) is used unless CONTAINERS_CONF names another. The root
# filesystem is cached as build/images/debian-bookworm-rN.tar, so only the first run
# pays for debootstrap; the engine's layer cache makes the rest quick. The base
# trusts the host's extra CA certificates (/usr/local/share/ca-certificates).
# Remove everything: deploy/images/build.sh clean.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
engine=${CONTAINER_ENGINE:-podman}
suite=${NIMBUS_DEBIAN_SUITE:-bookworm}
mirror=${NIMBUS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
cache="$repo/build/images"
# Bump when the recipe of the root filesystem changes: the old cache is ignored.
recipe=2
base="localhost/nimbus-base:$suite-r$recipe"
tag=${NIMBUS_IMAGE_TAG:-latest}
images=(nimbus nimbus-postgres nimbus-rabbitmq nimbus-gateway)

log() { printf '==> %s\n' "$*" >&2; }

ensure_tools() {
    local missing=()
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    if [ "$engine" = podman ]; then
        for t in podman runc catatonit; do
            command -v "$t" >/dev/null || [ -x "/usr/libexec/podman/$t" ] || missing+=("$t")
        done
    fi
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    if [ "$engine" = podman ]; then
        export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/containers.conf}
    fi
}

# The base root filesystem: debootstrap once into a tarball, import when the
# engine does not hold the image yet.
ensure_base() {
    local tar="$cache/debian-$suite-r$recipe.tar"
    if [ ! -s "$tar" ]; then
        log "debootstrap $suite (first run only; cached in $tar)"
        local root="$cache/rootfs-$suite"
        rm -rf "$root" && mkdir -p "$cache"
        debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
            "$suite" "$root" "$mirror" >"$cache/debootstrap.log" 2>&1 \
            || { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
        # Smaller image, and apt inside builds behaves as in a container.
        rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
        echo 'APT::Install-Recommends "false";' > "$root/etc/apt/apt.conf.d/90nimbus"
        # No documentation, manuals or translations, now or in packages installed
        # later (dpkg skips them): tens of MB off each image.
        printf '%s\n' 'path-exclude=/usr/share/doc/*' 'path-include=/usr/share/doc/*/copyright' \
            'path-exclude=/usr/share/man/*' 'path-exclude=/usr/share/info/*' \
            'path-exclude=/usr/share/locale/*' 'path-include=/usr/share/locale/locale.alias' \
            > "$root/etc/dpkg/dpkg.cfg.d/90nimbus-nodoc"
        find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
        rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/*
        find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
        # The host's own trust additions (a site's TLS-inspecting proxy, say), so
        # that pip inside the builds reaches PyPI wherever the host does.
        if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
            cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
            chroot "$root" update-ca-certificates >/dev/null
        fi
        tar -C "$root" -cf "$tar.part" . && mv "$tar.part" "$tar"
        rm -rf "$root"
    fi
    if ! "$engine" image inspect "$base" >/dev/null 2>&1; then
        log "importing $base"
        "$engine" import --change 'CMD ["/bin/bash"]' "$tar" "$base" >/dev/null
    fi
}

build() {
    local name=$1 file=$2
    local args=(build --network host --build-arg "BASE=$base" -f "$here/$file" -t "localhost/$name:$tag")
    # Podman drops HEALTHCHECK from OCI-format images; the docker format keeps it.
    [ "$engine" = podman ] && args+=(--format docker)
    local before after
    before=$("$engine" image inspect -f '{{.Id}}' "localhost/$name:$tag" 2>/dev/null || true)
    log "building localhost/$name:$tag"
    "$engine" "${args[@]}" "$repo"
    after=$("$engine" image inspect -f '{{.Id}}' "localhost/$name:$tag")
    # The image this build replaced, untagged now; its layers other images
    # still use stay (removal of one in use fails, harmlessly).
    if [ -n "$before" ] && [ "$before" != "$after" ]; then
        "$engine" rmi "$before" >/dev/null 2>&1 || true
    fi
}

# Every image of these builds carries the label org.nimbus.images, the
# intermediate ones (the layer cache, the builder stage) included.
clean() {
    for name in "${images[@]}"; do "$engine" rmi -f "localhost/$name:$tag" >/dev/null 2>&1 || true; done
    "$engine" images -a -q --filter label=org.nimbus.images | sort -u \
        | xargs -r "$engine" rmi -f >/dev/null 2>&1 || true
    # Every recipe's base, not only the current one.
    "$engine" images -q --filter reference='localhost/nimbus-base' | sort -u \
        | xargs -r "$engine" rmi -f >/dev/null 2>&1 || true
    rm -rf "$cache"
}

case "${1:-build}" in
    build)
        ensure_tools
        ensure_base
        build nimbus nimbus.Containerfile
        build nimbus-postgres postgres.Containerfile
        build nimbus-rabbitmq rabbitmq.Containerfile
        build nimbus-gateway gateway.Containerfile
        "$engine" images --filter reference='localhost/nimbus*' ;;
    clean)
        [ "$engine" = podman ] && export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/containers.conf}
        clean ;;
    *) echo "usage: $0 [build|clean]" >&2; exit 2 ;;
esac
