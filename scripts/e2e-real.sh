#!/usr/bin/env bash
# The real end-to-end tier: a real Kubernetes boots in a kdind node, with nothing from the
# network beyond a local mirror and local images.
#
# Usage: scripts/e2e-real.sh MIRROR
#   MIRROR  the directory scripts/build-upstream.sh laid out (it also built the images)
#
# Checks, in order (each prints `ok` or `FAILED`; the run ends with `N passed, N failed`):
#   build       kdind build takes the real programs from the mirror and preloads the images
#   up          kdind up exits 0, the node Ready and every kube-system pod Ready (with
#               HTTP(S)_PROXY set to a proxy that is not there yet: NO_PROXY must keep
#               the cluster's own traffic away from it)
#   kubectl     the host's kubectl, through the merged kubeconfig, sees the node Ready
#   image       an image built through `kdind env` (no registry, no load step) runs as a pod
#   service     a ClusterIP Service reaches that pod from another pod
#   dns         in-cluster DNS resolves the Service's name and kubernetes.default
#   nodeport    a NodePort Service answers on the host through `up --port`, listed by
#               `kdind list`
#   defaults    the runner-safe kubelet and kube-proxy settings are in force (no disk
#               eviction, no image garbage collection, swap tolerated, conntrack untouched)
#   proxy       the node's docker pulls through the proxy from kdind up's environment (a
#               recording proxy beside the node sees the request); NO_PROXY extended
#   jenkins     the Jenkins recipe's build and deploy stages (ci/jenkins/pipeline.sh): a
#               builder container beside the node builds into the cluster through
#               `kdind env --internal`, kubectl there rolls the Deployment out
#   internal    a sibling container on the kdind network reaches the API server through
#               `kdind kubeconfig --internal`, TLS verified
#   restart     `docker restart` of the node brings the same cluster back Ready, same ports
#               and kubeconfig
#   stop-start  `kdind stop` keeps the cluster (listed as stopped), `kdind start` brings it
#               back Ready with the same ports, the NodePort answering again
#   remote      the node's own TLS docker as a remote engine, reached on the node's address
#               (not loopback): `kdind up` there of a second, nested cluster, whose
#               kubeconfig names that address and answers kubectl with TLS verified, whose
#               `kdind env` builds into its docker, and whose `kdind down` leaves nothing
#   logs        kdind logs collects real kubelet, cri-dockerd, dockerd and minikube logs
#   down        kdind down leaves nothing behind
#
# Environment: KDIND (the binary; default target/debug/kdind), KDIND_E2E_NAME (default
# e2e-real), KDIND_E2E_TIMINGS (a file to append `stage seconds` lines to, for benchmarks).
set -uo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
[ $# -eq 1 ] || {
  echo "usage: $0 MIRROR" >&2
  exit 2
}
mirror="$(cd "$1" && pwd)"
kdind="${KDIND:-$here/target/debug/kdind}"
name="${KDIND_E2E_NAME:-e2e-real}"
node="kdind-$name"
work="$(mktemp -d "${TMPDIR:-/tmp}/kdind-e2e-real.XXXXXX")"
passed=0
failed=0
remote=()

step() { printf '\n==> [e2e-real %4ss] %s\n' "$SECONDS" "$*" >&2; }
ok() {
  passed=$((passed + 1))
  printf 'e2e-real: %-9s ok (%s)\n' "$1" "$2"
}
not_ok() {
  failed=$((failed + 1))
  printf 'e2e-real: %-9s FAILED: %s\n' "$1" "$2"
}
finish() {
  printf '\n%d passed, %d failed\n' "$passed" "$failed"
  [ "$failed" -eq 0 ]
}
cleanup() {
  "$kdind" down --name "$name" >/dev/null 2>&1 || true
  docker rm -f "$name-sibling" "$name-proxy" >/dev/null 2>&1 || true
  [ "${#remote[@]}" -eq 0 ] || "${remote[@]}" "$kdind" down --name "$name-remote" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# A private configuration (so its kdind.lock stays here) on the local base image, that also
# preloads that image (the sibling check runs it), and a private kubeconfig to merge into.
base_image="${KDIND_TEST_BASE_IMAGE:-kdind-local/debian:trixie}"
sed -e "s#^images = \[\]#images = [\"$base_image\"]#" -e "s#^base_image = .*#base_image = \"$base_image\"#" \
  "$here/assets/kdind.toml" >"$work/kdind.toml"

# The kubectl built with the rest (static, so it also runs in the sibling container); the
# host's own kubectl when it has one.
version="$(sed -n 's/^kubernetes_version = "\(.*\)"/\1/p' "$work/kdind.toml")"
built_kubectl="$mirror/dl.k8s.io/release/$version/bin/linux/$(go env GOARCH)/kubectl"
if ! command -v kubectl >/dev/null; then
  mkdir -p "$work/bin"
  ln -s "$built_kubectl" "$work/bin/kubectl"
  PATH="$work/bin:$PATH"
fi
export KDIND_CONFIG="$work/kdind.toml" KDIND_MIRROR="file://$mirror"
export KUBECONFIG="$work/kube/config"
mkdir -p "$work/kube"
printf 'apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n' >"$KUBECONFIG"
chmod 0600 "$KUBECONFIG"
kubectl=(kubectl --request-timeout=20s)

step "kdind build"
started=$SECONDS
if "$kdind" build --allow-unverified >"$work/build.out" 2>"$work/build.err"; then
  image="$(tail -n1 "$work/build.out")"
  preloaded="$(docker image inspect --format '{{index .Config.Labels "dev.kdind.preload"}}' "$image")"
  if [[ "$preloaded" == *registry.k8s.io/kube-apiserver:* && "$preloaded" == *"$base_image"* ]]; then
    ok build "$image in $((SECONDS - started)) s, preloads $preloaded"
  else
    not_ok build "the image's preload label lacks kubeadm's images or $base_image: $preloaded"
  fi
else
  not_ok build "$(tail -n 30 "$work/build.err")"
  finish
  exit 1
fi

# A host port for the NodePort check (`up --port`); a clash is unlikely in this range.
nodeport_host=$((20000 + RANDOM % 10000))
nodeport=30080

# The test program (server, client, resolver, recording proxy), for the host and for images.
mkdir -p "$work/app"
(cd "$here/tests/e2e/app" && CGO_ENABLED=0 go build -trimpath -o "$work/app/app" .) || {
  not_ok build "cannot build tests/e2e/app"
  finish
  exit 1
}
printf 'FROM scratch\nCOPY app /app\nENTRYPOINT ["/app"]\n' >"$work/app/Dockerfile"
proxy="http://$name-proxy:3128"

step "kdind up --name $name --port $nodeport_host:$nodeport (HTTP(S)_PROXY=$proxy)"
started=$SECONDS
if HTTP_PROXY="$proxy" HTTPS_PROXY="$proxy" NO_PROXY=corp.example \
  "$kdind" up --name "$name" --allow-unverified --wait 10m --port "$nodeport_host:$nodeport" \
  >"$work/up.out" 2>"$work/up.err"; then
  up_seconds=$((SECONDS - started))
  pods="$("${kubectl[@]}" get pods -n kube-system -o 'jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status} {end}')"
  missing=""
  for component in kube-apiserver etcd kube-controller-manager kube-scheduler kube-proxy coredns; do
    [[ " $pods" == *" $component-"*"=True"* ]] || missing="$missing $component"
  done
  if [[ "$pods" == *"=False"* || -n "$missing" ]]; then
    not_ok up "kube-system pods not all Ready after up:$missing ($pods)"
  else
    ok up "Ready in $up_seconds s; $pods"
  fi
  if [ -n "${KDIND_E2E_TIMINGS:-}" ]; then
    docker logs -t "$node" 2>&1 | sed -n 's/^\([^ ]*\) kdind-phase: \(.*\)$/\1 \2/p' >>"$KDIND_E2E_TIMINGS"
  fi
else
  not_ok up "$(tail -n 40 "$work/up.err")"
  "$kdind" logs --name "$name" "$work/logs" >/dev/null 2>&1 &&
    tail -n 40 "$work"/logs/*kubelet* 2>/dev/null
  finish
  exit 1
fi

step "the host's kubectl through the merged kubeconfig"
context="$("${kubectl[@]}" config current-context 2>&1)"
ready="$("${kubectl[@]}" get nodes -o 'jsonpath={.items[*].status.conditions[?(@.type=="Ready")].status}' 2>&1)"
if [ "$context" = "kdind-$name" ] && [ "$ready" = True ]; then
  ok kubectl "context $context, node Ready"
else
  not_ok kubectl "context '$context', node Ready '$ready'"
fi

step "an image built through kdind env runs as a pod"
if (eval "$("$kdind" env --name "$name")" && DOCKER_BUILDKIT=0 docker build -q -t kdind-e2e/app:1 "$work/app") >"$work/image.out" 2>&1 &&
  "${kubectl[@]}" run e2e-app --image=kdind-e2e/app:1 --image-pull-policy=Never --port=8080 \
    --labels=app=e2e-app -- serve 8080 >/dev/null &&
  "${kubectl[@]}" wait --for=condition=Ready pod/e2e-app --timeout=120s >/dev/null &&
  "${kubectl[@]}" logs e2e-app | grep -q 'kdind-e2e: serving on :8080'; then
  ok image "$("${kubectl[@]}" logs e2e-app)"
else
  not_ok image "$(cat "$work/image.out"; "${kubectl[@]}" describe pod e2e-app 2>&1 | tail -n 20)"
fi

# run_pod NAME ARGS...: a pod of the test image that must succeed; prints its log.
run_pod() {
  local pod="$1"
  shift
  "${kubectl[@]}" run "$pod" --image=kdind-e2e/app:1 --image-pull-policy=Never --restart=Never -- "$@" >/dev/null &&
    "${kubectl[@]}" wait --for=jsonpath='{.status.phase}'=Succeeded "pod/$pod" --timeout=120s >/dev/null
  local status=$?
  "${kubectl[@]}" logs "$pod" 2>&1
  return $status
}

step "a ClusterIP Service reaches the pod from another pod"
"${kubectl[@]}" expose pod e2e-app --name=e2e-svc --port=80 --target-port=8080 >/dev/null
if answer="$(run_pod e2e-get get http://e2e-svc/)" && [[ "$answer" == *"kdind-e2e: hello from e2e-app"* ]]; then
  ok service "$(echo "$answer" | tail -n1)"
else
  not_ok service "$answer"
fi

step "in-cluster DNS"
if svc="$(run_pod e2e-dns-svc resolve e2e-svc.default.svc.cluster.local)" &&
  api="$(run_pod e2e-dns-api resolve kubernetes.default)"; then
  ok dns "$(echo "$svc" "$api" | grep kdind-e2e | tr '\n' ' ')"
else
  not_ok dns "${svc:-} ${api:-}"
fi

step "a NodePort Service from the host through up --port"
"${kubectl[@]}" create service nodeport e2e-app --tcp=80:8080 --node-port="$nodeport" >/dev/null
listed="$("$kdind" list -o json 2>&1)"
if answer="$("$work/app/app" get "http://127.0.0.1:$nodeport_host/" 2>&1)" &&
  [[ "$answer" == *"kdind-e2e: hello from e2e-app"* ]] &&
  [[ "$listed" == *"127.0.0.1:$nodeport_host:$nodeport/tcp"* ]]; then
  ok nodeport "127.0.0.1:$nodeport_host -> node port $nodeport: $(echo "$answer" | tail -n1)"
else
  not_ok nodeport "$answer / kdind list: $listed"
fi

step "runner-safe kubelet and kube-proxy settings"
configz="$("${kubectl[@]}" get --raw "/api/v1/nodes/$node/proxy/configz" 2>&1)"
proxy_conf="$("${kubectl[@]}" -n kube-system get configmap kube-proxy -o 'jsonpath={.data.config\.conf}' 2>&1)"
missing=""
for setting in '"imageGCHighThresholdPercent":100' '"failSwapOn":false' '"imagefs.available":"0%"' \
  '"nodefs.available":"0%"' '"nodefs.inodesFree":"0%"'; do
  [[ "$configz" == *"$setting"* ]] || missing="$missing $setting"
done
grep -Eq '^ *maxPerCore: 0$' <<<"$proxy_conf" || missing="$missing conntrack.maxPerCore=0"
if [ -z "$missing" ]; then
  ok defaults "kubelet: no disk eviction, image GC off, swap tolerated; kube-proxy: conntrack maxPerCore 0"
else
  not_ok defaults "missing:$missing (kubelet configz: ${configz:0:400})"
fi

step "the node's docker pulls through kdind up's proxy"
dropin="$(docker exec "$node" cat /etc/systemd/system/docker.service.d/kdind-proxy.conf 2>&1)"
if DOCKER_BUILDKIT=0 docker build -q -t kdind-e2e/proxy:1 "$work/app" >/dev/null 2>"$work/proxy.err" &&
  docker run -d --name "$name-proxy" --network kdind kdind-e2e/proxy:1 proxy 3128 >/dev/null 2>>"$work/proxy.err"; then
  for _ in 1 2 3 4 5; do
    docker exec "$node" docker pull proxied.invalid/kdind-e2e:1 >/dev/null 2>&1 || true
    docker logs "$name-proxy" 2>&1 | grep -q 'proxy saw CONNECT proxied.invalid:443' && break
    sleep 2
  done
  saw="$(docker logs "$name-proxy" 2>&1 | grep 'proxy saw' | head -n 3 | tr '\n' ' ')"
  if [[ "$saw" == *"CONNECT proxied.invalid:443"* && "$dropin" == *"NO_PROXY=corp.example,"*"10.96.0.0/12"*"$node"* ]]; then
    ok proxy "$saw; docker's NO_PROXY keeps corp.example and adds the cluster's addresses"
  else
    not_ok proxy "proxy saw: ${saw:-nothing}; drop-in: $dropin"
  fi
else
  not_ok proxy "$(cat "$work/proxy.err")"
fi

step "the Jenkins recipe: build beside the node, deploy with kubectl"
cat >"$work/app/deploy.yaml" <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: e2e-jenkins
spec:
  replicas: 1
  selector:
    matchLabels:
      app: e2e-jenkins
  template:
    metadata:
      labels:
        app: e2e-jenkins
    spec:
      containers:
        - name: app
          image: "@APP_IMAGE@"
          imagePullPolicy: Never
          args: [serve, "8080"]
YAML
jenkins=(env KDIND="$kdind" KDIND_NAME="$name" APP_DIR="$work/app" APP_IMAGE=kdind-e2e/jenkins:1
  MANIFEST="$work/app/deploy.yaml" "$here/ci/jenkins/pipeline.sh")
if "${jenkins[@]}" build >"$work/jenkins.out" 2>&1 && "${jenkins[@]}" deploy >>"$work/jenkins.out" 2>&1 &&
  [ "$("${kubectl[@]}" get deployment e2e-jenkins -o 'jsonpath={.status.readyReplicas}')" = 1 ]; then
  ok jenkins "$(grep -E '^built |successfully rolled out' "$work/jenkins.out" | tr '\n' ' ')"
else
  not_ok jenkins "$(tail -n 20 "$work/jenkins.out")"
fi

step "a sibling container on the kdind network, through kdind kubeconfig --internal"
"$kdind" kubeconfig --name "$name" --internal >"$work/internal.kubeconfig" 2>"$work/internal.err"
chmod 0644 "$work/internal.kubeconfig"
if grep -q insecure-skip-tls-verify "$work/internal.kubeconfig"; then
  not_ok internal "the internal kubeconfig turns TLS verification off"
elif sibling="$(docker run --rm --name "$name-sibling" --network kdind \
  -v "$work/internal.kubeconfig:/kubeconfig:ro" -v "$built_kubectl:/usr/local/bin/kubectl:ro" \
  "$base_image" kubectl --kubeconfig /kubeconfig --request-timeout=20s get nodes --no-headers 2>&1)" &&
  [[ "$sibling" == *" Ready "* ]]; then
  ok internal "$(grep server: "$work/internal.kubeconfig" | tr -s ' ') -> $sibling"
else
  not_ok internal "${sibling:-} $(cat "$work/internal.err")"
fi

step "docker restart of the node"
ports_before="$(docker port "$node" | sort)"
kubeconfig_before="$(sha256sum <"$KUBECONFIG")"
readies_before="$(docker logs "$node" 2>/dev/null | grep -c '^kdind-phase: ready$')"
started=$SECONDS
docker restart "$node" >/dev/null
back=0
while [ $((SECONDS - started)) -lt 600 ]; do
  if [ "$(docker logs "$node" 2>/dev/null | grep -c '^kdind-phase: ready$')" -gt "$readies_before" ]; then
    back=1
    break
  fi
  if docker logs "$node" 2>/dev/null | tail -n 5 | grep -q '^kdind-phase: failed'; then break; fi
  sleep 2
done
ready="$("${kubectl[@]}" get nodes -o 'jsonpath={.items[*].status.conditions[?(@.type=="Ready")].status}' 2>&1)"
if [ "$back" = 1 ] && [ "$ready" = True ] && [ "$(docker port "$node" | sort)" = "$ports_before" ] &&
  [ "$(sha256sum <"$KUBECONFIG")" = "$kubeconfig_before" ] &&
  "${kubectl[@]}" get pod e2e-app >/dev/null 2>&1; then
  ok restart "Ready again in $((SECONDS - started)) s, same ports ($(echo "$ports_before" | tr '\n' ' ')) and kubeconfig"
else
  not_ok restart "back=$back ready=$ready ports: $(docker port "$node" | tr '\n' ' ') / $(docker logs "$node" 2>&1 | tail -n 20)"
fi

step "kdind stop, then kdind start"
ports_before="$(docker port "$node" | sort)"
started=$SECONDS
if "$kdind" stop --name "$name" >/dev/null 2>"$work/stop.err" &&
  state="$(docker inspect --format '{{.State.Status}}' "$node")" && [ "$state" = exited ] &&
  "$kdind" list -o json | grep -q '"state": "exited"' &&
  docker volume inspect "$node-docker" >/dev/null 2>&1 &&
  "$kdind" start --name "$name" --wait 10m >/dev/null 2>"$work/start.err" &&
  [ "$("${kubectl[@]}" get nodes -o 'jsonpath={.items[*].status.conditions[?(@.type=="Ready")].status}')" = True ] &&
  [ "$(docker port "$node" | sort)" = "$ports_before" ] &&
  answer="$("$work/app/app" get "http://127.0.0.1:$nodeport_host/" 2>&1)" &&
  [[ "$answer" == *"kdind-e2e: hello from e2e-app"* ]]; then
  ok stop-start "stopped (volume kept), started and Ready in $((SECONDS - started)) s, same ports, NodePort answering"
else
  not_ok stop-start "$(cat "$work/stop.err" "$work/start.err" 2>/dev/null | tail -n 20) state=${state:-?} answer=${answer:-}"
fi

step "a remote engine: the node's own docker, on the node's address"
node_ip="$(docker inspect --format '{{(index .NetworkSettings.Networks "kdind").IPAddress}}' "$node")"
cert_path="$(
  eval "$("$kdind" env --name "$name")"
  echo "$DOCKER_CERT_PATH"
)"
mkdir -p "$work/remote"
remote=(env DOCKER_HOST="tcp://$node_ip:2376" DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH="$cert_path"
  HOME="$work/remote" XDG_CONFIG_HOME="$work/remote/config" KUBECONFIG="$work/remote/kubeconfig")
started=$SECONDS
if "$kdind" load --name "$name" "$image" >"$work/remote.out" 2>&1 &&
  "${remote[@]}" "$kdind" up --name "$name-remote" --image "$image" --wait 10m >>"$work/remote.out" 2>&1; then
  server="$(sed -n 's/^ *server: //p' "$work/remote/kubeconfig" | head -n1)"
  nodes="$("${remote[@]}" kubectl --request-timeout=20s get nodes --no-headers 2>&1)"
  built="$(
    eval "$("${remote[@]}" "$kdind" env --name "$name-remote")"
    DOCKER_BUILDKIT=0 docker build -q -t kdind-e2e/remote:1 "$work/app" 2>&1 &&
      docker image inspect --format '{{.Id}}' kdind-e2e/remote:1 2>&1
  )"
  "${remote[@]}" "$kdind" down --name "$name-remote" >>"$work/remote.out" 2>&1
  left="$("${remote[@]}" docker ps -aq --filter label=dev.kdind.cluster 2>&1; "${remote[@]}" docker volume ls -q --filter label=dev.kdind.cluster 2>&1)"
  if [[ "$server" == "https://$node_ip:"* && "$nodes" == *" Ready "* && "$built" == *sha256:* && -z "$left" ]]; then
    ok remote "up in $((SECONDS - started)) s (image loaded first) on $node_ip: kubeconfig $server, kubectl: $nodes; built ${built##*$'\n'}; down left nothing"
  else
    not_ok remote "server=$server nodes=$nodes built=$built left=$left $(tail -n 20 "$work/remote.out")"
  fi
else
  not_ok remote "$(tail -n 30 "$work/remote.out")"
fi

step "kdind logs"
if "$kdind" logs --name "$name" "$work/logs" >/dev/null 2>"$work/logs.err"; then
  missing=""
  for pattern in 'kubelet:Kubernetes v1\.|kubelet\.go|Starting kubelet' 'cri-docker:cri-dockerd|Connecting to docker' \
    'docker:API listen|Daemon has completed|dockerd' 'minikube:minikube|Done!|kubeadm'; do
    file="${pattern%%:*}"
    found="$(find "$work/logs" -name "$file*" -type f | head -n1)"
    if [ -z "$found" ] || ! grep -Eq "${pattern#*:}" "$found"; then missing="$missing $file"; fi
  done
  if [ -z "$missing" ]; then
    ok logs "$(cd "$work/logs" && find . -type f | sort | tr '\n' ' ')"
  else
    not_ok logs "missing or empty:$missing (have: $(cd "$work/logs" && find . -type f | tr '\n' ' '))"
  fi
else
  not_ok logs "$(cat "$work/logs.err")"
fi

step "kdind down"
docker rm -f "$name-proxy" >/dev/null 2>&1 || true
"$kdind" down --name "$name" >/dev/null 2>"$work/down.err"
left="$(docker ps -aq --filter "label=dev.kdind.cluster=$name"; docker volume ls -q --filter "label=dev.kdind.cluster=$name"; docker volume ls -q | grep -x "$node.*" || true)"
if [ -z "$left" ] && ! grep -q "kdind-$name" "$KUBECONFIG"; then
  ok down "no container, volume or kubeconfig entry left"
else
  not_ok down "left behind: $left $(grep "kdind-$name" "$KUBECONFIG")"
fi

finish
