#!/usr/bin/env bash
# The real boot's numbers: `kdind up` to Ready with real Kubernetes, stage by stage, the
# node image's size with and without preloaded images, the idle node's memory, and
# `kdind load` against `docker save | docker exec -i NODE docker load` on the same image. Writes
# the section "The real boot" of BENCHMARKS.md (scripts/bench.sh keeps it when it rewrites
# the rest).
#
# Usage: scripts/bench-real.sh MIRROR [RUNS]
#   MIRROR  what scripts/build-upstream.sh laid out (its images must be on the engine)
#   RUNS    how many `kdind up` to time (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
[ $# -ge 1 ] || {
  echo "usage: $0 MIRROR [RUNS]" >&2
  exit 2
}
mirror="$(cd "$1" && pwd)"
runs="${2:-3}"
kdind="${KDIND:-$root/target/release/kdind}"
[ -x "$kdind" ] || cargo build --release --locked -q
base_image="${KDIND_BENCH_BASE_IMAGE:-kdind-local/debian:trixie}"
name=bench-real
work="$(mktemp -d "${TMPDIR:-/tmp}/kdind-bench-real.XXXXXX")"
export KUBECONFIG="$work/kube/config" KDIND_MIRROR="file://$mirror" NO_COLOR=1
cleanup() {
  "$kdind" -q down --name "$name" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
say() { printf 'bench-real: %s\n' "$*" >&2; }

sed "s#^base_image = .*#base_image = \"$base_image\"#" assets/kdind.toml >"$work/on.toml"
sed 's/^enabled = true/enabled = false/' "$work/on.toml" >"$work/off.toml"
mib() { docker image inspect --format '{{.Size}}' "$1" | awk '{ printf "%d", $1 / 1048576 }'; }

say "node images with and without preloaded images"
image_on="$("$kdind" -q build --config "$work/on.toml" --allow-unverified)"
image_off="$("$kdind" -q build --config "$work/off.toml" --allow-unverified)"
size_on="$(mib "$image_on")"
size_off="$(mib "$image_off")"
preloaded="$(docker image inspect --format '{{index .Config.Labels "dev.kdind.preload"}}' "$image_on" | tr ',' '\n' | grep -c .)"

# seconds between two RFC 3339 timestamps
between() { python3 -c 'import sys
from datetime import datetime
def t(s): return datetime.fromisoformat(s[:26].rstrip("Z"))
print("%.1f" % (t(sys.argv[2]) - t(sys.argv[1])).total_seconds())' "$1" "$2"; }

stages=(prepare certificates docker images minikube apiserver node dns pods kubeconfig ready)
declare -A stage_times
totals=()
for run in $(seq 1 "$runs"); do
  say "kdind up, run $run of $runs"
  begin=$(date +%s.%N)
  "$kdind" -q up --name "$name" --config "$work/on.toml" --allow-unverified --wait 10m >/dev/null
  total="$(python3 -c "print('%.1f' % ($(date +%s.%N) - $begin))")"
  totals+=("$total")
  log="$(docker logs -t "kdind-$name" 2>&1 | sed -n 's/^\([^ ]*\) kdind-phase: \(.*\)$/\1 \2/p')"
  for stage in "${stages[@]}"; do
    at="$(echo "$log" | awk -v s="$stage" '$2 == s { print $1; exit }')"
    [ -n "$at" ] || continue
    stage_times[$stage]+="$at "
  done
  [ "$run" -eq "$runs" ] || "$kdind" -q down --name "$name" >/dev/null
done

# Per stage: median of (next stage's start - this stage's start) over the runs.
breakdown=""
for index in $(seq 0 $((${#stages[@]} - 2))); do
  stage="${stages[$index]}"
  next="${stages[$((index + 1))]}"
  read -r -a starts <<<"${stage_times[$stage]:-}"
  read -r -a ends <<<"${stage_times[$next]:-}"
  durations=()
  for i in "${!starts[@]}"; do
    [ -n "${ends[$i]:-}" ] && durations+=("$(between "${starts[$i]}" "${ends[$i]}")")
  done
  [ "${#durations[@]}" -gt 0 ] || continue
  median="$(printf '%s\n' "${durations[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')"
  breakdown="$breakdown| $stage | $median s | ${durations[*]} |"$'\n'
done
median_total="$(printf '%s\n' "${totals[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')"

say "the idle node's memory (after 60 s)"
sleep 60
memory="$(docker stats --no-stream --format '{{.MemUsage}}' "kdind-$name")"

# Loads are short and noisy: more runs than the boots get (KDIND_BENCH_LOAD_RUNS).
load_runs="${KDIND_BENCH_LOAD_RUNS:-7}"
say "kdind load against docker save | docker exec -i docker load (200 MiB image, $load_runs runs each, alternating)"
mkdir -p "$work/load"
head -c 200M /dev/urandom >"$work/load/blob"
printf 'FROM scratch\nCOPY blob /blob\n' >"$work/load/Dockerfile"
DOCKER_BUILDKIT=0 docker build -q -t kdind-bench/load:1 "$work/load" >/dev/null
forget() { docker exec "kdind-$name" docker rmi -f kdind-bench/load:1 >/dev/null 2>&1 || true; }
seconds() { # command... -> wall seconds
  local begin
  begin=$(date +%s.%N)
  "$@" >/dev/null 2>&1
  python3 -c "print('%.2f' % ($(date +%s.%N) - $begin))"
}
load_kdind=()
load_cli=()
for _ in $(seq 1 "$load_runs"); do
  forget
  load_kdind+=("$(seconds "$kdind" -q load --name "$name" kdind-bench/load:1)")
  forget
  load_cli+=("$(seconds bash -c "docker save kdind-bench/load:1 | docker exec -i kdind-$name docker load")")
done
forget
docker rmi kdind-bench/load:1 >/dev/null
median_of() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
load_kdind_median="$(median_of "${load_kdind[@]}")"
load_cli_median="$(median_of "${load_cli[@]}")"
load_ratio="$(python3 -c "print('%.2f' % ($load_kdind_median / $load_cli_median))")"

section="$work/section.md"
cat >"$section" <<MD
## The real boot

Measured by \`scripts/bench-real.sh\` on $(date -u +%Y-%m-%d): real Kubernetes $(sed -n 's/^kubernetes_version = "\(.*\)"/\1/p' assets/kdind.toml)
built from its Go modules (\`scripts/build-upstream.sh\`), capability fallback (this engine
refuses privileged containers), $(nproc) cores. Reproduce with:

\`\`\`sh
scripts/build-upstream.sh ~/.cache/kdind/mirror
scripts/bench-real.sh ~/.cache/kdind/mirror
\`\`\`

| what | value |
|---|---|
| \`kdind up\` to Ready, preloaded images (median of $runs; every kube-system pod Ready) | $median_total s (runs: ${totals[*]}) |
| without preloaded images | not measurable here: the node would pull from registry.k8s.io, which these machines cannot reach, so \`up\` fails at stage minikube |
| node image with preloaded images ($preloaded images) | $size_on MiB |
| node image without them | $size_off MiB |
| idle node's memory (\`docker stats\`, 60 s after Ready) | $memory |
| \`kdind load\` of a 200 MiB image into the node (median of $load_runs) | $load_kdind_median s (runs: ${load_kdind[*]}) |
| \`docker save IMAGE \| docker exec -i NODE docker load\`, same image (median of $load_runs) | $load_cli_median s (runs: ${load_cli[*]}) |
| ratio kdind / docker CLI (target at most 1.0) | $load_ratio |

Where the seconds go (median of the runs; each stage from its phase line to the next one's,
as \`kdind up\` shows them):

| stage | median | each run |
|---|---|---|
$breakdown
MD
# Everything before an earlier real-boot section, then this one.
kept="$(sed '/^## The real boot/,$d' BENCHMARKS.md)"
printf '%s\n\n' "$kept" >BENCHMARKS.md
cat "$section" >>BENCHMARKS.md
say "wrote the real boot's section of BENCHMARKS.md"
cat "$section"
