//! Images: builds from a streamed context, inspect, pull and `docker save` export.

use std::collections::HashMap;

use bollard::query_parameters::{BuildImageOptionsBuilder, CreateImageOptionsBuilder};
use futures_util::{Stream, StreamExt, TryStreamExt};

use super::{not_found, Engine, EngineError};

/// What an image build reports, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildEvent {
    /// A line of the builder's output (`Step 3/20 : RUN ...`, a command's output, ...).
    Output(String),
    /// The build failed; the engine's message.
    Failed(String),
    /// The image that was built.
    Built(String),
}

/// The image's ID and labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    pub id: String,
    pub labels: HashMap<String, String>,
}

impl Engine {
    /// Build an image from a tar context streamed from `body` (plain or gzip; the engine
    /// tells them apart), with the classic builder, removing intermediate containers even
    /// when a step fails. Each event is handed to `on_event` as it arrives.
    pub async fn build_image(
        &self,
        tag: &str,
        body: impl Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + 'static,
        mut on_event: impl FnMut(BuildEvent),
    ) -> Result<(), EngineError> {
        let options = BuildImageOptionsBuilder::new()
            .dockerfile("Dockerfile")
            .t(tag)
            .rm(true)
            .forcerm(true)
            .build();
        let docker = self.long_running();
        let mut stream = docker.build_image(options, None, Some(bollard::body_try_stream(body)));
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(event) = build_event(info) {
                        on_event(event);
                    }
                }
                // A failed step arrives as an error in the stream: it is the build's outcome,
                // not a failure to talk to the engine.
                Err(bollard::errors::Error::DockerStreamError { error }) => {
                    on_event(BuildEvent::Failed(error));
                }
                Err(cause) => return Err(self.call_error(format!("build image {tag}"))(cause)),
            }
        }
        Ok(())
    }

    /// The image named `reference`, or None when the engine does not have it.
    pub async fn image(&self, reference: &str) -> Result<Option<ImageInfo>, EngineError> {
        match self.docker.inspect_image(reference).await {
            Ok(image) => Ok(Some(ImageInfo {
                id: image.id.unwrap_or_default(),
                labels: image
                    .config
                    .and_then(|config| config.labels)
                    .unwrap_or_default(),
            })),
            Err(error) if not_found(&error) => Ok(None),
            Err(cause) => Err(self.call_error(format!("inspect image {reference}"))(cause)),
        }
    }

    /// The tagged images carrying a label filter, newest first: (first tag, created).
    pub async fn images_with_label(
        &self,
        label_filter: &str,
    ) -> Result<Vec<(String, i64)>, EngineError> {
        let filters = HashMap::from([("label", vec![label_filter])]);
        let options = bollard::query_parameters::ListImagesOptionsBuilder::new()
            .filters(&filters)
            .build();
        let mut images: Vec<(String, i64)> = self
            .docker
            .list_images(Some(options))
            .await
            .map_err(self.call_error(format!("list images labelled {label_filter}")))?
            .into_iter()
            .filter_map(|image| {
                let tag = image
                    .repo_tags
                    .into_iter()
                    .find(|tag| tag != "<none>:<none>")?;
                Some((tag, image.created))
            })
            .collect();
        images.sort_by_key(|image| std::cmp::Reverse(image.1));
        Ok(images)
    }

    /// Pull `reference` through the engine (its registries, credentials and mirrors).
    pub async fn pull_image(&self, reference: &str) -> Result<(), EngineError> {
        let options = CreateImageOptionsBuilder::new()
            .from_image(reference)
            .build();
        let docker = self.long_running();
        let mut stream = docker.create_image(Some(options), None, None);
        while let Some(item) = stream.next().await {
            item.map_err(self.call_error(format!("pull {reference}")))?;
        }
        Ok(())
    }

    /// The images as one `docker save` archive, streamed.
    pub fn export_images(
        &self,
        references: &[&str],
    ) -> impl Stream<Item = Result<bytes::Bytes, EngineError>> + Send + 'static {
        let docker = self.long_running();
        let action = format!("export {}", references.join(" "));
        let endpoint = self.endpoint.describe();
        let stream = docker.export_images(references);
        stream.map_err(move |cause| EngineError::Call {
            endpoint: endpoint.clone(),
            action: action.clone(),
            cause,
        })
    }
}

fn build_event(info: bollard::models::BuildInfo) -> Option<BuildEvent> {
    if let Some(detail) = info.error_detail {
        return Some(BuildEvent::Failed(detail.message.unwrap_or_default()));
    }
    if let Some(id) = info.aux.and_then(|image| image.id) {
        return Some(BuildEvent::Built(id));
    }
    info.stream
        .or(info.status)
        .filter(|text| !text.is_empty())
        .map(BuildEvent::Output)
}
