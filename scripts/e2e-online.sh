#!/usr/bin/env bash
# The real thing, end to end: on a host with a Docker engine that allows privileged
# containers and with internet access (upstream downloads, Debian mirror, Docker Hub).
#
#   1. kdind build with the default configuration (real minikube, kubeadm, kubelet, kubectl,
#      cri-dockerd, crictl, CNI plugins);
#   2. kdind up, then kubectl get nodes until the node is Ready;
#   3. docker build through the cluster's own docker (eval "$(kdind env)"), and run that
#      image as a pod with imagePullPolicy Never: no registry, no load step;
#   4. kdind down, and check that nothing labelled by kdind is left.
#
# It cannot run on kdind's CI machines: they reach no container registry and no upstream
# download site, and refuse privileged containers. CI covers the same path with stand-ins
# (tests/fixtures/standin.toml).
#
# cri-dockerd publishes no checksum: pin one in a kdind.toml (KDIND_CONFIG) or this script
# passes --allow-unverified (KDIND_E2E_ALLOW_UNVERIFIED=0 to refuse instead).
#
# Usage: scripts/e2e-online.sh            (kdind from PATH, or KDIND=path/to/kdind)
set -euo pipefail

kdind="${KDIND:-kdind}"
name="${KDIND_E2E_NAME:-e2e}"
work="$(mktemp -d)"
unverified=()
[ "${KDIND_E2E_ALLOW_UNVERIFIED:-1}" = 1 ] && unverified=(--allow-unverified)

step() { printf '\n==> [e2e %4ss] %s\n' "$SECONDS" "$*" >&2; }
cleanup() {
  step "kdind down --name $name"
  "$kdind" down --name "$name" || true
  rm -rf "$work"
}
trap cleanup EXIT

step "kdind build"
"$kdind" build "${unverified[@]}"

step "kdind up --name $name"
"$kdind" up --name "$name" --wait 10m "${unverified[@]}"

export KUBECONFIG="$work/kubeconfig"
"$kdind" kubeconfig --name "$name" >"$KUBECONFIG"
chmod 0600 "$KUBECONFIG"

step "kubectl get nodes (until Ready)"
kubectl wait --for=condition=Ready node --all --timeout=180s
kubectl get nodes -o wide

step "docker build through the cluster's docker"
(
  eval "$("$kdind" env --name "$name")"
  docker info --format 'inner docker {{.ServerVersion}} on {{.Name}}'
  mkdir -p "$work/app"
  printf 'FROM busybox:1.36\nCMD ["echo", "kdind-e2e: hello from an image built in the cluster"]\n' >"$work/app/Dockerfile"
  docker build -t kdind-e2e/hello:1 "$work/app"
)

step "run it as a pod without a registry"
kubectl run kdind-e2e-hello --image=kdind-e2e/hello:1 --image-pull-policy=Never --restart=Never
kubectl wait --for=jsonpath='{.status.phase}'=Succeeded pod/kdind-e2e-hello --timeout=180s
kubectl logs kdind-e2e-hello | grep -q 'kdind-e2e: hello from an image built in the cluster'

trap - EXIT
cleanup
step "nothing left behind"
left="$(docker ps -aq --filter "label=dev.kdind.cluster=$name"; docker volume ls -q --filter "label=dev.kdind.cluster=$name")"
if [ -n "$left" ]; then
  echo "left behind: $left" >&2
  exit 1
fi
step "passed"
