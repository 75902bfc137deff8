#!/usr/bin/env bash
# README's test command: shellcheck, formatting, lints and the whole test suite, engine tier
# included.
#
# Engine-tier tests (named engine_*) need a Docker engine and the local base image
# (scripts/local-base-image.sh). With KDIND_REQUIRE_DOCKER=1 a missing engine fails the run;
# without it those tests skip and print a SKIPPED line saying why.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

step() { printf '\n==> %s\n' "$*" >&2; }

# Every shell script of the project: the scripts, the node's entrypoint and helpers, the
# kube-proxy image's helper, the stand-ins, the CI recipes' steps and CI's entry point.
step "shellcheck"
if command -v shellcheck >/dev/null; then
  mapfile -t scripts < <(
    {
      printf '%s\n' scripts/*.sh scripts/upstream/* .ci/run tests/fixtures/standin/* ci/*/*.sh
      find assets/rootfs -type f -perm -u+x
    } | sort -u
  )
  shellcheck "${scripts[@]}"
elif [ "${CI:-}" = true ]; then
  echo "shellcheck is not installed (.ci/run installs it)" >&2
  exit 1
else
  echo "SKIPPED: shellcheck is not installed (apt-get install shellcheck)" >&2
fi

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test --workspace"
cargo test --workspace --locked
