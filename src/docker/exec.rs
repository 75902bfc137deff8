//! Commands run in containers: in a running one with a stream as standard input, or once
//! in a throwaway container that is removed whatever happens.

use std::collections::HashMap;

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{LogsOptionsBuilder, UploadToContainerOptionsBuilder};
use futures_util::{Stream, StreamExt, TryStreamExt};

use super::{Engine, EngineError};

/// A command to run once in a throwaway container.
#[derive(Debug, Clone, Default)]
pub struct RunOnce<'a> {
    pub image: &'a str,
    pub command: &'a [&'a str],
    pub labels: HashMap<String, String>,
    /// A tar unpacked at `/` before the command starts (empty: nothing).
    pub files: Vec<u8>,
    pub privileged: bool,
    /// `SOURCE:TARGET[:ro]` mounts.
    pub binds: Vec<String>,
}

impl Engine {
    /// Run `command` in a running container with `body` as its standard input (closed at
    /// its end); the exit code and what it printed (stdout and stderr).
    pub async fn exec_with_input(
        &self,
        container: &str,
        command: &[&str],
        body: impl Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send,
    ) -> Result<(i64, String), EngineError> {
        use tokio::io::AsyncWriteExt;
        let action = format!("run `{}` in {container}", command.join(" "));
        let config = bollard::models::ExecConfig {
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            cmd: Some(command.iter().map(|word| (*word).to_owned()).collect()),
            ..Default::default()
        };
        let docker = self.long_running();
        let id = docker
            .create_exec(container, config)
            .await
            .map_err(self.call_error(action.clone()))?
            .id;
        let options = bollard::exec::StartExecOptions {
            detach: false,
            tty: false,
            output_capacity: None,
        };
        let started = docker
            .start_exec(&id, Some(options))
            .await
            .map_err(self.call_error(action.clone()))?;
        let bollard::exec::StartExecResults::Attached { mut output, input } = started else {
            return Err(self.call_error(action)(bollard::errors::Error::IOError {
                err: std::io::Error::other("the engine started the command detached"),
            }));
        };
        let writing = async move {
            // The body comes in whatever pieces its source makes (an export arrives in
            // pieces of a few KiB): gathered into large writes, as `docker exec -i` does.
            let mut input = tokio::io::BufWriter::with_capacity(1 << 20, input);
            let mut body = std::pin::pin!(body);
            while let Some(piece) = body.next().await {
                input.write_all(&piece?).await?;
            }
            input.shutdown().await
        };
        let reading = async move {
            let mut text = String::new();
            while let Some(frame) = output.next().await {
                text.push_str(&String::from_utf8_lossy(&frame?.into_bytes()));
            }
            Ok::<_, bollard::errors::Error>(text)
        };
        let (written, read) = tokio::join!(writing, reading);
        let text = read.map_err(self.call_error(action.clone()))?;
        written.map_err(|err| {
            self.call_error(action.clone())(bollard::errors::Error::IOError { err })
        })?;
        let code = docker
            .inspect_exec(&id)
            .await
            .map_err(self.call_error(action))?
            .exit_code
            .unwrap_or(-1);
        Ok((code, text))
    }

    /// Run a command once in a throwaway container (no network); its exit code and stdout.
    /// The container is removed whatever happens. A privileged run the engine cannot grant
    /// fails with the `Privileged` refusal.
    pub async fn run_once(&self, run: RunOnce<'_>) -> Result<(i64, String), EngineError> {
        let image = run.image;
        let body = ContainerCreateBody {
            image: Some(image.to_owned()),
            entrypoint: Some(run.command.iter().map(|word| (*word).to_owned()).collect()),
            cmd: Some(Vec::new()),
            network_disabled: Some(true),
            labels: Some(run.labels),
            host_config: Some(HostConfig {
                privileged: Some(run.privileged),
                binds: Some(run.binds),
                ..Default::default()
            }),
            ..Default::default()
        };
        let id = self
            .docker
            .create_container(
                None::<bollard::query_parameters::CreateContainerOptions>,
                body,
            )
            .await
            .map_err(self.call_error(format!("create a container of {image}")))?
            .id;
        let result = self.run_created(&id, run.files).await;
        let removed = self.remove_container(&id).await;
        let outcome = result?;
        removed?;
        Ok(outcome)
    }

    async fn run_created(&self, id: &str, files: Vec<u8>) -> Result<(i64, String), EngineError> {
        if !files.is_empty() {
            let upload = UploadToContainerOptionsBuilder::new().path("/").build();
            self.docker
                .upload_to_container(id, Some(upload), bollard::body_full(files.into()))
                .await
                .map_err(self.call_error(format!("copy files into {id}")))?;
        }
        self.start_container(id).await?;
        let mut waiting = self.docker.wait_container(id, None);
        let code = match waiting.next().await {
            Some(Ok(response)) => response.status_code,
            // A non-zero exit arrives as an error carrying the code.
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
            Some(Err(cause)) => return Err(self.call_error(format!("wait for {id}"))(cause)),
            None => -1,
        };
        let options = LogsOptionsBuilder::new().stdout(true).stderr(false).build();
        let frames: Vec<bollard::container::LogOutput> = self
            .docker
            .logs(id, Some(options))
            .try_collect()
            .await
            .map_err(self.call_error(format!("read the output of {id}")))?;
        let stdout = frames
            .into_iter()
            .map(|frame| String::from_utf8_lossy(&frame.into_bytes()).into_owned())
            .collect();
        Ok((code, stdout))
    }
}
