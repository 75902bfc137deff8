#!/usr/bin/env bash
# The steps of kdind's GitHub Action (action.yml at the repository's root), one per
# subcommand, so that they run the same in a workflow and in kdind's own tests.
#
# Usage: ci/github/action.sh install|up|logs|down
#
# Reads the action's inputs as INPUT_* variables (INPUT_NAME, INPUT_CONFIG,
# INPUT_KUBERNETES_VERSION, INPUT_WAIT, INPUT_IMAGE, INPUT_ALLOW_UNVERIFIED,
# INPUT_DOCKER_ENV) and the runner's GITHUB_ENV, GITHUB_OUTPUT, GITHUB_PATH and
# RUNNER_TEMP. KDIND names the kdind binary (default: kdind on PATH).
set -euo pipefail

kdind="${KDIND:-kdind}"
name="${INPUT_NAME:-kdind}"
temp="${RUNNER_TEMP:-${TMPDIR:-/tmp}}"
kubeconfig="$temp/kdind-$name.kubeconfig"
logs="$temp/kdind-logs-$name"

# install: build kdind from the action's own checkout unless one is on PATH already.
install() {
  if command -v "$kdind" >/dev/null 2>&1; then
    echo "kdind: using $(command -v "$kdind") ($("$kdind" --version))"
    return
  fi
  local root="${RUNNER_TOOL_CACHE:-$temp}/kdind"
  cargo install --locked --quiet --path "${GITHUB_ACTION_PATH:-.}" --root "$root"
  echo "$root/bin" >>"${GITHUB_PATH:?GITHUB_PATH is set by the runner}"
  echo "kdind: built $("$root/bin/kdind" --version) into $root/bin"
}

# up: the cluster, its kubeconfig exported to later steps (and its docker, when asked).
up() {
  local args=(up --name "$name" --kubeconfig "$kubeconfig")
  [ -z "${INPUT_CONFIG:-}" ] || args+=(--config "$INPUT_CONFIG")
  [ -z "${INPUT_KUBERNETES_VERSION:-}" ] || args+=(--kubernetes-version "$INPUT_KUBERNETES_VERSION")
  [ -z "${INPUT_WAIT:-}" ] || args+=(--wait "$INPUT_WAIT")
  [ -z "${INPUT_IMAGE:-}" ] || args+=(--image "$INPUT_IMAGE")
  [ "${INPUT_ALLOW_UNVERIFIED:-false}" != true ] || args+=(--allow-unverified)
  "$kdind" "${args[@]}"
  # `kdind env` prints shell exports: evaluated in a subshell, printed as KEY=value.
  local docker_env
  docker_env="$(
    eval "$("$kdind" env --name "$name")"
    printf 'DOCKER_HOST=%s\nDOCKER_TLS_VERIFY=%s\nDOCKER_CERT_PATH=%s\n' \
      "$DOCKER_HOST" "$DOCKER_TLS_VERIFY" "$DOCKER_CERT_PATH"
  )"
  echo "KUBECONFIG=$kubeconfig" >>"${GITHUB_ENV:?GITHUB_ENV is set by the runner}"
  if [ "${INPUT_DOCKER_ENV:-false}" = true ]; then
    echo "$docker_env" >>"$GITHUB_ENV"
  fi
  {
    echo "kubeconfig=$kubeconfig"
    grep '^DOCKER_HOST=' <<<"$docker_env" | sed 's/^DOCKER_HOST=/docker-host=/'
  } >>"${GITHUB_OUTPUT:?GITHUB_OUTPUT is set by the runner}"
}

# logs: everything kdind logs collects, for the artifact upload.
logs() {
  "$kdind" logs --name "$name" "$logs" || true
  echo "logs-dir=$logs" >>"${GITHUB_OUTPUT:-/dev/null}"
}

down() {
  "$kdind" down --name "$name"
}

case "${1:-}" in
  install | up | logs | down) "$1" ;;
  *)
    echo "usage: $0 install|up|logs|down" >&2
    exit 2
    ;;
esac
