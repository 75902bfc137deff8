#!/usr/bin/env bash
# The steps of kdind's GitLab CI recipe (ci/gitlab/kdind.gitlab-ci.yml), one per
# subcommand, so that they run the same in a GitLab job and in kdind's tests.
#
# Usage: ci/gitlab/job.sh up [KDIND UP OPTION...] | logs | down
#
# The job talks to a docker:dind service with TLS: DOCKER_HOST=tcp://docker:2376,
# DOCKER_TLS_VERIFY=1, DOCKER_CERT_PATH=/certs/client. The engine is then remote, so
# `kdind up` publishes the node's ports on the service's addresses and writes a kubeconfig
# whose server is the service (https://docker:PORT, in the API server's certificate), not
# 127.0.0.1.
#
# Environment: KDIND (the binary, default kdind), KDIND_NAME (default ci), KUBECONFIG (the
# file to write; default .kdind/kubeconfig), KDIND_CONFIG (a kdind.toml, optional). Options
# after `up` go to `kdind up` (e.g. --image REF, --allow-unverified, --port 8080:30080).
set -euo pipefail

kdind="${KDIND:-kdind}"
name="${KDIND_NAME:-ci}"
kubeconfig="${KUBECONFIG:-.kdind/kubeconfig}"

up() {
  mkdir -p "$(dirname "$kubeconfig")"
  "$kdind" up --name "$name" --kubeconfig "$kubeconfig" "$@"
  # A kubeconfig pointing at this job's own loopback reaches nothing: say so at once.
  local server
  server="$(sed -n 's/^ *server: //p' "$kubeconfig" | head -n1)"
  case "$server" in
    https://127.* | https://localhost:* | https://\[::1\]:*)
      if [[ "${DOCKER_HOST:-}" == tcp://* ]]; then
        echo "job.sh: the kubeconfig says $server, but the engine is $DOCKER_HOST" >&2
        exit 1
      fi
      ;;
  esac
  echo "job.sh: cluster $name at $server (KUBECONFIG=$kubeconfig)"
}

case "${1:-}" in
  up)
    shift
    up "$@"
    ;;
  logs) "$kdind" logs --name "$name" kdind-logs || true ;;
  down) "$kdind" down --name "$name" ;;
  *)
    echo "usage: $0 up|logs|down" >&2
    exit 2
    ;;
esac
