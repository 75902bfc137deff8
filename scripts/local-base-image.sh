#!/usr/bin/env bash
# Build a local Debian base image for machines that cannot reach a container registry.
#
# Usage: scripts/local-base-image.sh [SUITE] [TAG]
#   SUITE  Debian suite to bootstrap (default: trixie)
#   TAG    image tag to create (default: kdind-local/debian:SUITE)
#
# The image is made with `debootstrap --variant=minbase` from Debian's package mirror and
# imported with `docker import`. When TAG already exists it is reused and nothing is built.
# The only thing printed on stdout is the tag, so callers can do:
#   base=$(scripts/local-base-image.sh)
set -euo pipefail

suite="${1:-trixie}"
tag="${2:-kdind-local/debian:${suite}}"
mirror="${KDIND_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

log() { printf 'local-base-image: %s\n' "$*" >&2; }

if ! command -v docker >/dev/null 2>&1; then
  log "the docker CLI is not installed"
  exit 1
fi

if docker image inspect "$tag" >/dev/null 2>&1; then
  log "reusing existing image $tag"
  printf '%s\n' "$tag"
  exit 0
fi

if ! command -v debootstrap >/dev/null 2>&1; then
  log "debootstrap is not installed (apt-get install debootstrap)"
  exit 1
fi

workdir="$(mktemp -d "${TMPDIR:-/tmp}/kdind-base.XXXXXX")"
cleanup() { rm -rf "$workdir"; }
trap cleanup EXIT

log "bootstrapping Debian $suite from $mirror into $workdir (about a minute)"
debootstrap --variant=minbase "$suite" "$workdir/rootfs" "$mirror" >"$workdir/debootstrap.log" 2>&1 || {
  log "debootstrap failed; last lines of its log:"
  tail -n 20 "$workdir/debootstrap.log" >&2
  exit 1
}
# Keep the image small: package lists and caches are fetched again by any build that needs them.
rm -rf "$workdir/rootfs/var/lib/apt/lists/"* "$workdir/rootfs/var/cache/apt/"*.bin

log "importing as $tag"
tar -C "$workdir/rootfs" -c . | docker import \
  --change 'CMD ["/bin/bash"]' \
  --change 'ENV LANG=C.UTF-8' \
  - "$tag" >/dev/null
printf '%s\n' "$tag"
