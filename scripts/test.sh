#!/usr/bin/env bash
# README's test command: formatting, lints and the whole test suite, engine tier included.
#
# Engine-tier tests (named engine_*) need a Docker engine and the local base image
# (scripts/local-base-image.sh). With KDIND_REQUIRE_DOCKER=1 a missing engine fails the run;
# without it those tests skip and print a SKIPPED line saying why.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

step() { printf '\n==> %s\n' "$*" >&2; }

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test --workspace"
cargo test --workspace --locked
