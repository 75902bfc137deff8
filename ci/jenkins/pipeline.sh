#!/usr/bin/env bash
# The stages of kdind's Jenkins recipe (ci/jenkins/Jenkinsfile), one per subcommand, so
# that they run the same on a Jenkins agent and in kdind's real tier.
#
# Usage: ci/jenkins/pipeline.sh up|build|deploy|logs|down
#
#   up      kdind up (KDIND_CONFIG, when set, is the cluster's kdind.toml)
#   build   docker build of APP_DIR as APP_IMAGE in a builder container beside the node, on
#           the kdind network, through `kdind env --internal`: the image lands in the
#           cluster's own docker, with no registry and no load step
#   deploy  MANIFEST with @APP_IMAGE@ replaced, applied by kubectl in the builder container,
#           then every Deployment in it rolled out
#   logs    kdind logs into ./kdind-logs, for archiveArtifacts
#   down    kdind down
#
# Environment: KDIND (the binary, default kdind), KDIND_NAME (default kdind), APP_DIR
# (default .), APP_IMAGE (default app:ci), MANIFEST (default deploy/kubernetes.yaml),
# BUILDER_IMAGE (anything with the docker CLI, kubectl and bash; default the node's own
# image, which has all three and is already on the engine).
set -euo pipefail

kdind="${KDIND:-kdind}"
name="${KDIND_NAME:-kdind}"
app_dir="$(cd "${APP_DIR:-.}" && pwd)"
app_image="${APP_IMAGE:-app:ci}"
manifest="${MANIFEST:-deploy/kubernetes.yaml}"

# Run a bash script in the builder container, beside the node on the kdind network, with
# the internal kubeconfig and the inner docker's client certificate mounted, and APP_DIR
# as its working directory.
in_builder() {
  local settings
  # `kdind env --internal` prints shell exports of host paths: read them in a subshell.
  mapfile -t settings < <(
    eval "$("$kdind" env --name "$name" --internal)"
    printf '%s\n' "$KUBECONFIG" "$DOCKER_HOST" "$DOCKER_CERT_PATH"
  )
  local image="${BUILDER_IMAGE:-}"
  if [ -z "$image" ]; then
    image="$(docker inspect --format '{{index .Config.Labels "dev.kdind.image"}}' "kdind-$name")"
  fi
  docker run --rm --network kdind \
    -e KUBECONFIG=/kdind/kubeconfig -e DOCKER_HOST="${settings[1]}" \
    -e DOCKER_TLS_VERIFY=1 -e DOCKER_CERT_PATH=/kdind/docker -e APP_IMAGE="$app_image" \
    -v "${settings[0]}:/kdind/kubeconfig:ro" -v "${settings[2]}:/kdind/docker:ro" \
    -v "$app_dir:/workspace" -w /workspace \
    --entrypoint bash "$image" -c "$1"
}

case "${1:-}" in
  up) "$kdind" up --name "$name" ;;
  build)
    # shellcheck disable=SC2016 # expanded by the builder's bash
    in_builder 'docker build -t "$APP_IMAGE" . && docker image inspect --format "built {{.Id}} in the cluster" "$APP_IMAGE"'
    ;;
  deploy)
    # The manifest goes in through the workspace mount, with the image filled in.
    rendered="$app_dir/.kdind-manifest.yaml"
    sed "s#@APP_IMAGE@#$app_image#g" "$manifest" >"$rendered"
    trap 'rm -f "$rendered"' EXIT
    # shellcheck disable=SC2016 # expanded by the builder's bash
    in_builder 'kubectl apply -f .kdind-manifest.yaml -o name | grep "^deployment" | while read -r deployment; do kubectl rollout status "$deployment" --timeout=300s; done'
    ;;
  logs) "$kdind" logs --name "$name" kdind-logs || true ;;
  down) "$kdind" down --name "$name" ;;
  *)
    echo "usage: $0 up|build|deploy|logs|down" >&2
    exit 2
    ;;
esac
