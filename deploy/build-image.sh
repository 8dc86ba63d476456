#!/usr/bin/env bash
# Builds Signoff's container image with Podman (or Docker) from the repository's Dockerfile.
#
#   deploy/build-image.sh [TAG]          # TAG defaults to localhost/signoff:dev
#
# The Dockerfile builds FROM python:3.11-slim. Where no container registry answers (an offline
# CI machine), this script builds an equivalent base instead: Debian bookworm with python3 and
# its venv module, made by mmdebstrap from Debian's package mirror and imported as
# localhost/signoff-base:bookworm. That base also trusts the host's own extra certificate
# authorities (/usr/local/share/ca-certificates), so that pip works behind a TLS-inspecting
# proxy. Set SIGNOFF_IMAGE_BASE to use another base.
#
# Podman runs with the options .ci/sandbox-setup.sh uses on this kind of machine (runc, vfs,
# cgroupfs, CONTAINERS_CONF without default ulimits); docker is used when podman is absent.
set -euo pipefail
cd "$(dirname "$0")/.."

tag=${1:-localhost/signoff:dev}
upstream=python:3.11-slim
local_base=localhost/signoff-base:bookworm
work=${SIGNOFF_IMAGE_WORK:-/tmp/signoff-image}
mkdir -p "$work"

if command -v podman >/dev/null 2>&1; then
  if [ -z "${CONTAINERS_CONF:-}" ]; then
    printf '[containers]\ndefault_ulimits = []\n' > "$work/containers.conf"
    export CONTAINERS_CONF=$work/containers.conf
  fi
  engine() { podman --runtime=runc --storage-driver=vfs --cgroup-manager=cgroupfs "$@"; }
  have() { engine image exists "$1"; }
  build() { engine build --format docker --layers="${SIGNOFF_IMAGE_LAYERS:-false}" "$@"; }
else
  engine() { docker "$@"; }
  have() { docker image inspect "$1" >/dev/null 2>&1; }
  build() { docker build "$@"; }
fi

local_rootfs() {
  # python:3.11-slim's equivalent from Debian packages: bookworm, python3 (3.11), venv, CA certificates
  command -v mmdebstrap >/dev/null 2>&1 || {
    echo "installing mmdebstrap" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >&2
  }
  local extra=()
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    extra+=(--customize-hook='copy-in /usr/local/share/ca-certificates /usr/local/share/'
            --customize-hook='chroot "$1" update-ca-certificates --fresh >/dev/null')
  fi
  rm -f "$work/base.tar"
  mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates \
    --aptopt='APT::Install-Recommends "false"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    "${extra[@]}" bookworm "$work/base.tar" >&2
  engine import --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' "$work/base.tar" "$local_base" >&2
  rm -f "$work/base.tar"
}

base=${SIGNOFF_IMAGE_BASE:-}
if [ -z "$base" ]; then
  if have "$upstream" || engine pull --quiet "$upstream" >/dev/null 2>&1; then
    base=$upstream
  else
    echo "no registry answers for $upstream: building $local_base with mmdebstrap" >&2
    have "$local_base" || local_rootfs
    base=$local_base
  fi
fi
echo "building $tag from $base" >&2
previous=$(engine image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
build --build-arg "BASE=$base" --tag "$tag" .
# the image this tag named before is left without a name: remove it (vfs keeps full copies)
if [ -n "$previous" ] && [ "$previous" != "$(engine image inspect --format '{{.Id}}' "$tag")" ]; then
  engine rmi "$previous" >/dev/null 2>&1 || true
fi
