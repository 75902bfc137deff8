//! kdind's integration tests: one binary, readable helpers in `support`.
//!
//! Tests whose names start with `engine_` need a Docker engine. With
//! `KDIND_REQUIRE_DOCKER=1` (CI) a missing engine fails them; otherwise they skip and say so
//! on stderr.

mod artifacts;
mod cli;
mod doctor;
mod http_server;
mod image;
mod lifecycle;
mod list;
mod recipes;
mod remote;
mod support;
