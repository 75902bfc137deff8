//! Networks and volumes: the shared network created once (and kept unique on engines that
//! allow duplicate names), volumes created with labels, both listed by label and removed.

use std::collections::HashMap;

use bollard::models::{NetworkCreateRequest, VolumeCreateRequest};
use bollard::query_parameters::{ListNetworksOptionsBuilder, ListVolumesOptionsBuilder};

use super::{not_found, Engine, EngineError};

impl Engine {
    /// The network named `name`, created when missing: its ID, and whether this call
    /// created it. Engines before API 1.44 let two callers create two networks of one name;
    /// when that happened, the oldest is kept and the newer one removed again.
    pub async fn ensure_network(
        &self,
        name: &str,
        labels: HashMap<String, String>,
    ) -> Result<(String, bool), EngineError> {
        if let Some(oldest) = self.networks_named(name).await?.into_iter().next() {
            return Ok((oldest, false));
        }
        let request = NetworkCreateRequest {
            name: name.to_owned(),
            driver: Some("bridge".to_owned()),
            labels: Some(labels),
            ..Default::default()
        };
        let created = match self.docker.create_network(request).await {
            Ok(response) => Some(response.id),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => None,
            Err(cause) => return Err(self.call_error(format!("create network {name}"))(cause)),
        };
        let oldest = self
            .networks_named(name)
            .await?
            .into_iter()
            .next()
            .unwrap_or_default();
        let outcome = match created {
            Some(id) if id == oldest => (id, true),
            Some(id) => {
                self.remove_network(&id).await?;
                (oldest, false)
            }
            None => (oldest, false),
        };
        // The engine resolves a container's network by name when it starts it, and refuses
        // an ambiguous name: wait (briefly) until the other creators have removed theirs.
        for _ in 0..50 {
            if self.networks_named(name).await?.len() <= 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        Ok(outcome)
    }

    /// IDs of the networks with exactly this name, oldest first.
    pub async fn networks_named(&self, name: &str) -> Result<Vec<String>, EngineError> {
        let filters = HashMap::from([("name", vec![name])]);
        let options = ListNetworksOptionsBuilder::new().filters(&filters).build();
        let mut networks: Vec<(String, String)> = self
            .docker
            .list_networks(Some(options))
            .await
            .map_err(self.call_error(format!("list networks named {name}")))?
            .into_iter()
            .filter(|network| network.name.as_deref() == Some(name))
            .filter_map(|network| Some((network.created.unwrap_or_default(), network.id?)))
            .collect();
        networks.sort();
        Ok(networks.into_iter().map(|(_, id)| id).collect())
    }

    /// IDs of the networks carrying a label filter.
    pub async fn networks_with_label(
        &self,
        label_filter: &str,
    ) -> Result<Vec<String>, EngineError> {
        let filters = HashMap::from([("label", vec![label_filter])]);
        let options = ListNetworksOptionsBuilder::new().filters(&filters).build();
        let networks = self
            .docker
            .list_networks(Some(options))
            .await
            .map_err(self.call_error(format!("list networks labelled {label_filter}")))?;
        Ok(networks
            .into_iter()
            .filter_map(|network| network.id)
            .collect())
    }

    /// Remove a network unless a container still uses it; whether it was removed. The
    /// engine decides "in use" itself (403 "has active endpoints"; 409 on some versions),
    /// so a node joining at the same moment is never cut off by a check made earlier.
    pub async fn remove_network(&self, id: &str) -> Result<bool, EngineError> {
        match self.docker.remove_network(id).await {
            Ok(()) => Ok(true),
            Err(error) if not_found(&error) => Ok(false),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 403 | 409,
                ..
            }) => Ok(false),
            Err(cause) => Err(self.call_error(format!("remove network {id}"))(cause)),
        }
    }

    /// Create a named volume; the labels of the volume the engine answers with, which are
    /// those of an existing volume of that name when there is one (the engine creates
    /// nothing then).
    pub async fn create_volume(
        &self,
        name: &str,
        labels: HashMap<String, String>,
    ) -> Result<HashMap<String, String>, EngineError> {
        let request = VolumeCreateRequest {
            name: Some(name.to_owned()),
            labels: Some(labels),
            ..Default::default()
        };
        self.docker
            .create_volume(request)
            .await
            .map(|volume| volume.labels)
            .map_err(self.call_error(format!("create volume {name}")))
    }

    /// Volumes carrying a label filter: name and labels.
    pub async fn volumes_with_label(
        &self,
        label_filter: &str,
    ) -> Result<Vec<(String, HashMap<String, String>)>, EngineError> {
        let filters = HashMap::from([("label", vec![label_filter])]);
        let options = ListVolumesOptionsBuilder::new().filters(&filters).build();
        let listing = self
            .docker
            .list_volumes(Some(options))
            .await
            .map_err(self.call_error(format!("list volumes labelled {label_filter}")))?;
        Ok(listing
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|volume| (volume.name, volume.labels))
            .collect())
    }

    pub async fn remove_volume(&self, name: &str) -> Result<bool, EngineError> {
        match self
            .docker
            .remove_volume(name, None::<bollard::query_parameters::RemoveVolumeOptions>)
            .await
        {
            Ok(()) => Ok(true),
            Err(error) if not_found(&error) => Ok(false),
            Err(cause) => Err(self.call_error(format!("remove volume {name}"))(cause)),
        }
    }
}
