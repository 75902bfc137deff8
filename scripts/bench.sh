#!/usr/bin/env bash
# kdind's benchmarks: each pair measured side by side in one run on this machine, at least
# five runs each, medians and ratios. Writes BENCHMARKS.md.
#
# Usage: scripts/bench.sh
# Needs: a Docker engine, hyperfine (apt-get install hyperfine), python3, curl, a Rust
# toolchain, and the local base image (scripts/local-base-image.sh; made when missing).
#
# Sections (numbering of the benchmark issue; D is the download benchmark):
#   1. node ready -> kubeconfig on the host: kdind's log-following wait against the 2018
#      method (poll `[ -e /kubeconfig ]` every 3 s, then `docker cp`)
#   2. rebuild with an unchanged config: kdind build against docker build of --context-out,
#      in alternating rounds
#   3. first build with 500 MiB of artifacts: kdind build against docker build of the same
#      context directory, in alternating rounds; kdind's peak RSS
#   4. tear-down of a running node: kdind down against docker rm -f -v + volume rm + network rm
#   5. the systemctl replacement: one is-active call; stripped binary size
#   6. kdind up to ready with the stand-in minikube (the part of time-to-cluster that is ours)
#   D. downloads: 500 MiB through kdind (hashing, verifying, caching) against curl from the
#      same local server; peak RSS at 50 MiB and 500 MiB
# The node images are made of stand-ins (tests/fixtures/standin.toml): no Kubernetes runs
# here, so these numbers are kdind's own overhead around it.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
export PATH="$HOME/.cargo/bin:$PATH"
export NO_COLOR=1

for tool in hyperfine python3 curl docker; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing" >&2; exit 1; }
done
docker info >/dev/null 2>&1 || { echo "bench: no Docker engine answers" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/kdind-bench.XXXXXX")"
base_image="${KDIND_BENCH_BASE_IMAGE:-kdind-local/debian:trixie}"
kdind="$root/target/release/kdind"
systemctl_bin="$root/target/release/systemctl"
export KDIND_CACHE_DIR="$work/cache"
export XDG_CONFIG_HOME="$work/config"
export KUBECONFIG="$work/kube/config"
server_pid=""
cleanup() {
  if [ -x "$systemctl_bin" ]; then
    "$systemctl_bin" --root "$work/root" stop bench >/dev/null 2>&1 || true
  fi
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
  fi
  for name in bench-wait bench-down bench-up; do "$kdind" -q down --name "$name" >/dev/null 2>&1 || true; done
  docker rm -f kdind-bench-2018 >/dev/null 2>&1 || true
  docker rmi -f kdind-bench/first:kdind kdind-bench/first:docker kdind-bench/rebuild:docker >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
say() { printf '\nbench: %s\n' "$*" >&2; }

hyper() { # hyperfine with our defaults; the JSON goes to $1
  local json="$1"
  shift
  hyperfine --style basic --export-json "$json" "$@" >&2
}
median() { # JSON file [index] -> median seconds
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][int(sys.argv[2])]["median"])' "$1" "${2:-0}"
}
ms() { python3 -c "print('%.0f' % ($1 * 1000))"; }
middle() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
timed_ms() { # run a command quietly, print its wall time in ms
  local start end
  start=$(date +%s%N)
  if ! "$@" >/dev/null 2>&1; then
    echo "bench: $* failed" >&2
    kill -TERM $$ # from inside a command substitution: stop the whole run
  fi
  end=$(date +%s%N)
  echo $(((end - start) / 1000000))
}
# alternate ROUNDS PREPARE A B: time commands A and B (function names) in turns, PREPARE
# before each run, A first in odd rounds and B first in even ones, so that drift on the
# machine hits both alike. Fills the arrays alt_a and alt_b (ms).
alternate() {
  local rounds=$1 prepare=$2 a=$3 b=$4 round
  alt_a=()
  alt_b=()
  for ((round = 1; round <= rounds; round++)); do
    if ((round % 2)); then
      $prepare; alt_a+=("$(timed_ms "$a")")
      $prepare; alt_b+=("$(timed_ms "$b")")
    else
      $prepare; alt_b+=("$(timed_ms "$b")")
      $prepare; alt_a+=("$(timed_ms "$a")")
    fi
  done
}
seconds_median() { python3 -c "print($(middle "$@") / 1000)"; }
ratio() { python3 -c "print('%.2f' % ($1 / $2))"; }
verdict() { python3 -c "print('met' if $1 else 'MISSED')"; }
peak_rss_mib() { # run a command, print its peak RSS in MiB
  python3 - "$@" <<'PY'
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
print("%.1f" % (resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024))
PY
}

say "building kdind and the systemctl replacement (release)"
cargo build --quiet --release --locked -p kdind -p kdind-systemctl
if ! docker image inspect "$base_image" >/dev/null 2>&1; then
  say "making the local base image $base_image"
  base_image="$(scripts/local-base-image.sh trixie)"
fi

# The stand-in mirror and configuration.
bash tests/fixtures/standin/make-mirror.sh "$work/mirror" >/dev/null
mirror="file://$work/mirror"
{ echo "base_image = \"$base_image\""; cat tests/fixtures/standin.toml; } >"$work/kdind.toml"
say "building the stand-in node image"
standin="$("$kdind" -q build --config "$work/kdind.toml" --mirror "$mirror")"

# --- 5. systemctl ----------------------------------------------------------------------
say "5. systemctl is-active on a running service"
size_bytes=$(stat -c %s "$systemctl_bin")
mkdir -p "$work/root/etc/systemd/system"
printf '[Service]\nExecStart=/bin/sleep 600\n' >"$work/root/etc/systemd/system/bench.service"
"$systemctl_bin" --root "$work/root" start bench
hyper "$work/is-active.json" -N --warmup 20 --runs 500 "$systemctl_bin --root $work/root is-active bench"
is_active=$(median "$work/is-active.json")

# --- D. downloads ----------------------------------------------------------------------
say "D. downloads from a local HTTP server: kdind against curl"
mkdir -p "$work/www"
head -c $((500 * 1024 * 1024)) /dev/urandom >"$work/www/big"
head -c $((50 * 1024 * 1024)) /dev/urandom >"$work/www/medium"
for name in minikube kubectl kubeadm cri-dockerd crictl cni-plugins; do
  printf '%s stand-in\n' "$name" >"$work/www/$name"
done
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$work/www" "$port" >/dev/null 2>&1 &
server_pid=$!
until curl -fs -o /dev/null "http://127.0.0.1:$port/minikube"; do sleep 0.1; done
download_config() { # the kubelet is FILE; everything else is tiny
  local big="$1" arch
  arch=$(case "$(uname -m)" in aarch64) echo arm64 ;; *) echo amd64 ;; esac)
  for name in minikube kubectl kubeadm kubelet cri-dockerd crictl cni-plugins; do
    local file="$name"
    [ "$name" = kubelet ] && file="$big"
    printf '[artifacts.%s]\nurl = "http://127.0.0.1:%s/%s"\nsha256 = { %s = "%s" }\n\n' \
      "$name" "$port" "$file" "$arch" "$(sha256sum "$work/www/$file" | cut -d' ' -f1)"
  done
}
download_config big >"$work/download-big.toml"
download_config medium >"$work/download-medium.toml"
hyper "$work/download.json" --warmup 1 --runs 5 \
  --prepare "rm -rf $work/dl-cache $work/curl-out" \
  -n kdind "KDIND_CACHE_DIR=$work/dl-cache $kdind -q build --download-only --config $work/download-big.toml" \
  -n curl "mkdir -p $work/curl-out && curl -fs -o $work/curl-out/big http://127.0.0.1:$port/big && for f in minikube kubectl kubeadm cri-dockerd crictl cni-plugins; do curl -fs -o $work/curl-out/\$f http://127.0.0.1:$port/\$f; done"
download_kdind=$(median "$work/download.json" 0)
download_curl=$(median "$work/download.json" 1)
rm -rf "$work/dl-cache"
rss_big=$(KDIND_CACHE_DIR="$work/dl-cache" peak_rss_mib "$kdind" -q build --download-only --config "$work/download-big.toml")
rm -rf "$work/dl-cache"
rss_medium=$(KDIND_CACHE_DIR="$work/dl-cache" peak_rss_mib "$kdind" -q build --download-only --config "$work/download-medium.toml")
rm -rf "$work/dl-cache"
kill "$server_pid"
server_pid=""
mibps() { python3 -c "print('%.0f' % (500 / $1))"; }

# --- 6. up to ready --------------------------------------------------------------------
say "6. kdind up to ready (stand-in minikube)"
# (--prepare runs before every run; the node of the previous run is removed there.)
hyper "$work/up.json" --warmup 1 --runs 5 \
  --prepare "$kdind -q down --name bench-up" \
  "$kdind -q up --name bench-up --image $standin"
up_s=$(median "$work/up.json")
"$kdind" -q down --name bench-up

# --- 1. ready -> kubeconfig on the host -------------------------------------------------
say "1. node ready -> kubeconfig on the host"
# A node whose readiness comes after a controlled delay, speaking the entrypoint's protocol:
# the kubeconfig is staged at once, readiness takes BENCH_DELAY, then the kubeconfig is
# published (with its sha256), the time is printed, and the node says ready.
mkdir -p "$work/waitnode"
cat >"$work/waitnode/ready" <<'SH'
#!/bin/bash
mkdir -p /etc/kdind
cat >/etc/kdind/.kubeconfig.staged <<'YAML'
apiVersion: v1
kind: Config
clusters:
- cluster: {server: 'https://127.0.0.1:8443'}
  name: minikube
contexts:
- context: {cluster: minikube, user: minikube}
  name: minikube
current-context: minikube
users:
- name: minikube
  user: {token: bench}
YAML
echo "kdind-kubeconfig: staged"
sleep "${BENCH_DELAY:-2}"
cp /etc/kdind/.kubeconfig.staged /etc/kdind/kubeconfig
cp /etc/kdind/.kubeconfig.staged /kubeconfig
echo "kdind-phase: kubeconfig"
echo "kdind-kubeconfig: published sha256=$(sha256sum /etc/kdind/kubeconfig | cut -d' ' -f1)"
echo "bench-ready-at $(date +%s%N)"
echo "kdind-phase: ready"
exec sleep infinity
SH
chmod +x "$work/waitnode/ready"
printf 'FROM %s\nCOPY ready /bench-ready\nENTRYPOINT ["/usr/bin/tini", "--", "/bench-ready"]\n' "$standin" >"$work/waitnode/Dockerfile"
docker build -q -t kdind-bench/wait:1 "$work/waitnode" >/dev/null
ready_at() { docker logs "$1" 2>/dev/null | sed -n 's/^bench-ready-at //p' | head -n1; }
kdind_latency=()
old_latency=()
for _ in 1 2 3 4 5 6 7; do
  "$kdind" -q up --name bench-wait --image kdind-bench/wait:1 >/dev/null
  done_at=$(date +%s%N)
  kdind_latency+=("$(( (done_at - $(ready_at kdind-bench-wait)) / 1000000 ))")
  "$kdind" -q down --name bench-wait
  docker run -d --name kdind-bench-2018 kdind-bench/wait:1 >/dev/null
  until docker exec kdind-bench-2018 test -e /kubeconfig; do sleep 3; done
  docker cp kdind-bench-2018:/kubeconfig "$work/kubeconfig-2018"
  done_at=$(date +%s%N)
  old_latency+=("$(( (done_at - $(ready_at kdind-bench-2018)) / 1000000 ))")
  docker rm -f kdind-bench-2018 >/dev/null
done
wait_kdind_ms=$(middle "${kdind_latency[@]}")
wait_old_ms=$(middle "${old_latency[@]}")

# --- 4. tear-down ----------------------------------------------------------------------
say "4. tear-down of a running node"
hyper "$work/down.json" --runs 5 \
  --prepare "$kdind -q up --name bench-down --image $standin >/dev/null" \
  -n "kdind down" "$kdind -q down --name bench-down" \
  -n "docker CLI" "docker rm -f -v kdind-bench-down && docker volume rm kdind-bench-down-docker && docker network rm kdind"
down_kdind=$(median "$work/down.json" 0)
down_docker=$(median "$work/down.json" 1)
"$kdind" -q down --name bench-down >/dev/null 2>&1 || true

# --- 2. rebuild ------------------------------------------------------------------------
say "2. rebuild with an unchanged config"
"$kdind" -q build --config "$work/kdind.toml" --mirror "$mirror" --context-out "$work/context.tar"
rebuild_kdind() { "$kdind" -q build --config "$work/kdind.toml" --mirror "$mirror"; }
rebuild_docker() { docker build -q -t kdind-bench/rebuild:docker - <"$work/context.tar"; }
rebuild_kdind >/dev/null 2>&1
rebuild_docker >/dev/null 2>&1
alternate 21 true rebuild_kdind rebuild_docker
rebuild_kdind_runs=("${alt_a[@]}")
rebuild_docker_runs=("${alt_b[@]}")
rebuild_kdind=$(seconds_median "${rebuild_kdind_runs[@]}")
rebuild_docker=$(seconds_median "${rebuild_docker_runs[@]}")

# --- 3. first build with 500 MiB of artifacts ------------------------------------------
say "3. first build with 500 MiB of artifacts"
mkdir -p "$work/bigmirror"
cp -r "$work/mirror/." "$work/bigmirror/"
big_kubelet="$work/bigmirror/standins.kdind.test/kubelet"
head -c $((500 * 1024 * 1024)) /dev/urandom >"$big_kubelet"
sha256sum "$big_kubelet" | cut -d' ' -f1 >"$big_kubelet.sha256"
# A configuration of its own: kdind.lock beside it records the big file's checksum.
mkdir -p "$work/big"
cp "$work/kdind.toml" "$work/big/kdind.toml"
big_args=(--config "$work/big/kdind.toml" --mirror "file://$work/bigmirror")
"$kdind" -q build --download-only "${big_args[@]}" >/dev/null
"$kdind" -q build "${big_args[@]}" --context-out "$work/big.tar"
mkdir -p "$work/bigcontext"
tar -C "$work/bigcontext" -xf "$work/big.tar"
rm -f "$work/big.tar"
# Each run starts without the image, so the 500 MiB layer is built again by both; the
# previous run's writes are flushed and the page cache dropped (where allowed) first, so
# that no run pays for another's writeback and both read their input cold.
first_prepare() {
  docker rmi -f kdind-bench/first:kdind kdind-bench/first:docker >/dev/null 2>&1 || true
  sync
  echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
}
first_kdind() { "$kdind" -q build "${big_args[@]}" --tag kdind-bench/first:kdind; }
first_docker() { docker build -q -t kdind-bench/first:docker "$work/bigcontext"; }
alternate 7 first_prepare first_kdind first_docker
first_kdind_runs=("${alt_a[@]}")
first_docker_runs=("${alt_b[@]}")
first_kdind=$(seconds_median "${first_kdind_runs[@]}")
first_docker=$(seconds_median "${first_docker_runs[@]}")
first_prepare
first_rss=$(peak_rss_mib "$kdind" -q build "${big_args[@]}" --tag kdind-bench/first:kdind)

# --- the report ------------------------------------------------------------------------
r_wait=$(python3 -c "print('%.0f' % ($wait_old_ms / max($wait_kdind_ms, 1)))")
r_rebuild=$(ratio "$rebuild_kdind" "$rebuild_docker")
r_first=$(ratio "$first_kdind" "$first_docker")
r_down=$(ratio "$down_kdind" "$down_docker")
r_download=$(ratio "$download_kdind" "$download_curl")
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')
engine=$(docker version --format 'dockerd {{.Server.Version}} (API {{.Server.APIVersion}})')
# scripts/bench-real.sh owns the section on the real boot: keep it.
real_section="$(sed -n '/^## The real boot/,$p' BENCHMARKS.md 2>/dev/null || true)"
cat >BENCHMARKS.md <<MD
# Benchmarks

Measured by \`scripts/bench.sh\` on $(date -u +%Y-%m-%d): $(nproc) cores ($cpu),
$(free -g | awk '/Mem:/ {print $2}') GiB memory, $(uname -sr), $engine, classic builder.
Every pair ran side by side in this one run, medians of 5 runs or more: hyperfine for 4, 5,
6 and D; alternating rounds (each side first in every other round) for 1 (7 rounds), 2 (21)
and 3 (7). Sections 2 and 3 are dominated by the engine's own work; each round's time is
listed below the table. Node images are made of stand-ins
(\`tests/fixtures/standin.toml\`): no Kubernetes runs, so the numbers are kdind's own share.
Reproduce with:

\`\`\`sh
scripts/bench.sh
\`\`\`

| # | what | kdind | other | ratio | target | verdict |
|---|---|---|---|---|---|---|
| 1 | node ready -> kubeconfig on the host (kdind's log-following wait; other: poll \`[ -e /kubeconfig ]\` every 3 s, then \`docker cp\`) | $wait_kdind_ms ms | $wait_old_ms ms | ${r_wait}x faster | kdind 50 ms or less | $(verdict "$wait_kdind_ms <= 50") |
| 2 | rebuild, unchanged config (other: \`docker build - < context.tar\` from \`--context-out\`) | $(ms "$rebuild_kdind") ms | $(ms "$rebuild_docker") ms | $r_rebuild | 1.1 or less | $(verdict "$r_rebuild <= 1.1") |
| 3 | first build with 500 MiB of artifacts (other: \`docker build DIR\` of the same context) | $(ms "$first_kdind") ms | $(ms "$first_docker") ms | $r_first | 1.0 or less | $(verdict "$r_first <= 1.0") |
| 3 | kdind's peak RSS during that build | $first_rss MiB | | | 64 MiB or less | $(verdict "$first_rss <= 64") |
| 4 | tear-down of a running node (other: \`docker rm -f -v\`, \`volume rm\`, \`network rm\`) | $(ms "$down_kdind") ms | $(ms "$down_docker") ms | $r_down | 1.2 or less | $(verdict "$r_down <= 1.2") |
| 5 | \`systemctl is-active\` on a running service (median of 500) | $(python3 -c "print('%.2f' % ($is_active * 1000))") ms | | | 2 ms or less | $(verdict "$is_active <= 0.002") |
| 5 | systemctl replacement, stripped release binary | $((size_bytes / 1024)) KiB | | | (reported) | - |
| 6 | \`kdind up\` to ready with the stand-in minikube | $(ms "$up_s") ms | | | 5 s or less | $(verdict "$up_s <= 5") |
| D | download 500 MiB + 6 small files from a local HTTP server, hashed, verified, cached (other: curl) | $(ms "$download_kdind") ms ($(mibps "$download_kdind") MiB/s) | $(ms "$download_curl") ms ($(mibps "$download_curl") MiB/s) | $r_download | (reported) | - |
| D | kdind's peak RSS downloading 50 MiB / 500 MiB (flat: the data streams to disk) | $rss_medium / $rss_big MiB | | | flat | $(verdict "$rss_big <= $rss_medium * 1.5") |

Section 1 in detail (ms, each round): kdind ${kdind_latency[*]}; 2018 method ${old_latency[*]}.
Section 2 in detail (ms, each round): kdind ${rebuild_kdind_runs[*]}; docker build ${rebuild_docker_runs[*]}.
Section 3 in detail (ms, each round): kdind ${first_kdind_runs[*]}; docker build ${first_docker_runs[*]}.
MD
[ -z "$real_section" ] || printf '\n%s\n' "$real_section" >>BENCHMARKS.md
say "wrote BENCHMARKS.md"
cat BENCHMARKS.md
