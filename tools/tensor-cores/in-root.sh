#!/usr/bin/env bash
# Runs a command inside a Debian trixie root whose Mesa (26, from trixie-backports) gives lavapipe Vulkan's
# cooperative matrices, so that Dawn offers `chromium-experimental-subgroup-matrix` (8x8x8, subgroups of 8) on
# a machine without a GPU. The project is bind-mounted at /proj and the command runs there, with this machine's
# `node` copied in; everything else comes from the root.
#
#   sudo tools/tensor-cores/in-root.sh node -e "..."      # build the root if missing, then run
#   TENSOR_CORE_ROOT=/some/dir tools/tensor-cores/in-root.sh ...
#
# Needs root (mmdebstrap, mount, chroot) and Debian's package mirror. The root (about 410 MB) is built once, in
# about a minute, at $TENSOR_CORE_ROOT (default /var/cache/tfjs-dataflow/trixie-lavapipe); later runs reuse it.
# Why a chroot: running node under the root's own dynamic loader works for one process but not for vitest's forked
# workers.
set -euo pipefail
project=$(cd "$(dirname "$0")/../.." && pwd)
root=${TENSOR_CORE_ROOT:-/var/cache/tfjs-dataflow/trixie-lavapipe}
[ "$#" -gt 0 ] || { echo "usage: $0 COMMAND [ARG...]" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "$0: needs root (mmdebstrap, mount and chroot); run it with sudo" >&2; exit 2; }

# The mirror this machine's apt already uses (deb822 .sources or a one-line sources.list), else Debian's own.
mirror() {
  local uri
  uri=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -n 1 || true)
  [ -n "$uri" ] || uri=$(grep -hsE '^deb ' /etc/apt/sources.list | awk '{print $2}' | grep -v security | head -n 1 || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

if [ ! -f "$root/.tfjs-dataflow-ready" ]; then
  command -v mmdebstrap >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >/dev/null; }
  m=$(mirror)
  echo "Building the trixie root with Mesa 26 at $root (from $m)..." >&2
  rm -rf "$root"
  mkdir -p "$(dirname "$root")"
  mmdebstrap --quiet --variant=apt --aptopt='APT::Install-Recommends "false"' \
    --include=mesa-vulkan-drivers/trixie-backports,libvulkan1,vulkan-tools \
    trixie "$root" "deb $m trixie main" "deb $m trixie-backports main"
  mkdir -p "$root/proj"
  touch "$root/.tfjs-dataflow-ready"
fi
# This machine's node, refreshed each time (the project's node_modules were installed by it).
install -m 0755 "$(readlink -f "$(command -v node)")" "$root/usr/local/bin/node"

# Mounts live in a private mount namespace, so they vanish with the command whatever way it ends.
exec unshare --mount --propagation private bash -c '
  set -e
  root=$1; project=$2; shift 2
  mount -t proc proc "$root/proc"
  mount --rbind /dev "$root/dev"
  mount -t tmpfs tmpfs "$root/tmp"
  mount --bind "$project" "$root/proj"
  # A clean environment, but for the test settings (TFJS_DATAFLOW_*) and CI.
  mapfile -t passed < <(env | grep -E "^(TFJS_DATAFLOW_[A-Z_]*|CI)=" || true)
  exec chroot "$root" env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/tmp XDG_RUNTIME_DIR=/tmp "${passed[@]}" \
    sh -c "cd /proj && exec \"\$@\"" sh "$@"
' bash "$root" "$project" "$@"
