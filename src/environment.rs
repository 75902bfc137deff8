//! The process environment, read in this one place: every variable kdind reads (DOCKER_HOST
//! and its TLS companions, KUBECONFIG, HOME, XDG_CACHE_HOME, XDG_CONFIG_HOME, NO_COLOR) goes through
//! `var`, and the functions that resolve a path from them take a lookup function instead,
//! so their tests pass an environment of their own. (The KDIND_* variables are options and
//! are read by clap in `cli.rs`.)

/// The variable's value; unset and empty are the same, as the tools kdind sits beside treat
/// them.
pub fn var(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|value| !value.is_empty())
}
