#!/usr/bin/env bash
# Prepares the sandbox backends for the test suite: bubblewrap (and libseccomp, which builds its
# seccomp filter), and Podman's Docker-compatible API serving a busybox image imported from a tar
# (no registry is reachable from CI).
#
# Idempotent: run it again and it reuses the packages, the image and a live service.
# Usage:  eval "$(.ci/sandbox-setup.sh)"     or     source .ci/sandbox-setup.sh
# It prints `export` lines (DOCKER_HOST, SIGNOFF_TEST_DOCKER_IMAGE, CONTAINERS_CONF) and writes the
# same lines to "$SIGNOFF_SANDBOX_CI_DIR/env". Stop the service with: kill "$(cat "$dir/podman.pid")".
if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
  # sourced: run in a child shell (so `set -e` and `exit` stay there), then import its exports
  _signoff_env=$(bash "${BASH_SOURCE[0]}") && eval "$_signoff_env"
  unset _signoff_env
  return
fi
set -euo pipefail

dir=${SIGNOFF_SANDBOX_CI_DIR:-/tmp/signoff-sandbox-ci}
image=${SIGNOFF_TEST_DOCKER_IMAGE:-localhost/signoff-busybox:1}
mkdir -p "$dir"

missing=()
# (dot draws the workflow graphs of the console and `signoff graph --format svg`; node runs the
# tests of the console's script)
for pair in bwrap:bubblewrap podman:podman runc:runc /bin/busybox:busybox-static dot:graphviz node:nodejs; do
  cmd=${pair%%:*}; pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
done
# libseccomp builds bwrap's seccomp filter (through the pyseccomp package)
# (grep without -q reads all of ldconfig's output, so pipefail never sees a SIGPIPE)
ldconfig -p 2>/dev/null | grep 'libseccomp\.so\.2 ' >/dev/null || missing+=(libseccomp2)
if ((${#missing[@]})); then
  echo "installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq "${missing[@]}" >&2
fi

# podman's default ulimits are refused in this kind of container (setrlimit RLIMIT_NPROC: EPERM)
printf '[containers]\ndefault_ulimits = []\n' > "$dir/containers.conf"
export CONTAINERS_CONF=$dir/containers.conf
podman_() { podman --runtime=runc --storage-driver=vfs --cgroup-manager=cgroupfs "$@"; }

if ! podman_ image exists "$image"; then
  rm -rf "$dir/rootfs" "$dir/busybox.tar" && mkdir -p "$dir/rootfs/bin"
  cp /bin/busybox "$dir/rootfs/bin/busybox"
  (cd "$dir/rootfs/bin" && for c in $(./busybox --list); do [ "$c" = busybox ] || ln -sf busybox "$c"; done)
  mkdir -p "$dir/rootfs/tmp" "$dir/rootfs/workspace" "$dir/rootfs/skill"
  # podman's API drops a tmpfs `mode=`, but copies the mode of the image's own /tmp
  chmod 1777 "$dir/rootfs/tmp"
  tar -C "$dir/rootfs" -cf "$dir/busybox.tar" .
  podman_ import "$dir/busybox.tar" "$image" >&2
fi

sock=$dir/podman.sock
alive() { [ -f "$dir/podman.pid" ] && kill -0 "$(cat "$dir/podman.pid")" 2>/dev/null && [ -S "$sock" ]; }
if ! alive; then
  rm -f "$sock"
  # run from its own folder: conmon drops files such as `oom` into the working directory
  (cd "$dir" && exec nohup podman --runtime=runc --storage-driver=vfs --cgroup-manager=cgroupfs \
    system service --time=0 "unix://$sock" >"$dir/podman.log" 2>&1) &
  echo $! > "$dir/podman.pid"
  for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
  [ -S "$sock" ] || { echo "podman service did not start; see $dir/podman.log" >&2; exit 1; }
fi

cat > "$dir/env" <<ENV
export DOCKER_HOST=unix://$sock
export SIGNOFF_TEST_DOCKER_IMAGE=$image
export CONTAINERS_CONF=$dir/containers.conf
ENV
cat "$dir/env"
