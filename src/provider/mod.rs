//! Driving a cluster's node through the engine, as kind's providers do: creating it (the
//! volume claimed first, the privileged-then-capabilities fallback, port choice and
//! retries), following its phase lines to Ready, reading files out of it, and removing what
//! a failed run made. Commands orchestrate; the decisions live here, written against the
//! small `NodeEngine` interface so that the unit tests can drive them with a fake engine.

mod files;
mod follow;
pub mod host;
mod provision;

use std::collections::HashMap;
use std::future::Future;

pub use files::{find_node, node_files, read_kubeconfig, rewrite_kubeconfig};
pub use follow::wait_until_ready;
pub use provision::{clean_up, provision, Created, Plan, PrivilegedMode};

use crate::docker::{ContainerSpec, Engine, EngineError};

/// The engine calls that creating and removing a node needs.
pub trait NodeEngine: Sync {
    /// The network named `name` (created when missing): its ID and whether this call made it.
    fn ensure_network(
        &self,
        name: &str,
        labels: HashMap<String, String>,
    ) -> impl Future<Output = Result<(String, bool), EngineError>> + Send;
    /// Create a named volume; the labels of the volume the engine answers with (an existing
    /// one's, when the name was taken).
    fn create_volume(
        &self,
        name: &str,
        labels: HashMap<String, String>,
    ) -> impl Future<Output = Result<HashMap<String, String>, EngineError>> + Send;
    fn create_container(
        &self,
        spec: &ContainerSpec,
    ) -> impl Future<Output = Result<String, EngineError>> + Send;
    fn start_container(&self, id: &str) -> impl Future<Output = Result<(), EngineError>> + Send;
    fn remove_container(&self, id: &str) -> impl Future<Output = Result<bool, EngineError>> + Send;
    fn remove_volume(&self, name: &str) -> impl Future<Output = Result<bool, EngineError>> + Send;
    fn remove_network(&self, id: &str) -> impl Future<Output = Result<bool, EngineError>> + Send;
}

impl NodeEngine for Engine {
    async fn ensure_network(
        &self,
        name: &str,
        labels: HashMap<String, String>,
    ) -> Result<(String, bool), EngineError> {
        Engine::ensure_network(self, name, labels).await
    }

    async fn create_volume(
        &self,
        name: &str,
        labels: HashMap<String, String>,
    ) -> Result<HashMap<String, String>, EngineError> {
        Engine::create_volume(self, name, labels).await
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<String, EngineError> {
        Engine::create_container(self, spec).await
    }

    async fn start_container(&self, id: &str) -> Result<(), EngineError> {
        Engine::start_container(self, id).await
    }

    async fn remove_container(&self, id: &str) -> Result<bool, EngineError> {
        Engine::remove_container(self, id).await
    }

    async fn remove_volume(&self, name: &str) -> Result<bool, EngineError> {
        Engine::remove_volume(self, name).await
    }

    async fn remove_network(&self, id: &str) -> Result<bool, EngineError> {
        Engine::remove_network(self, id).await
    }
}
