//! The node image: its Dockerfile, its deterministic build context, its tag and labels, and
//! the build itself (the context streamed to the engine while it is written).

pub mod context;
#[cfg(test)]
mod contract_check;
pub mod dockerfile;
pub mod ensure;
pub mod preload;

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::{bail, Context, Result};
use bytes::Bytes;

use crate::artifacts::Present;
use crate::cluster::labels;
use crate::config::Config;
use crate::digest::Digest;
use crate::docker::{BuildEvent, Engine};
use crate::progress::{Printer, Spinner};

/// Repository of the images kdind builds; the tag is `<kubernetes version>-<inputs digest>`.
pub const REPOSITORY: &str = "kdind/node";

/// Everything needed to build one image, decided before anything is sent.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    pub dockerfile: String,
    pub reference: String,
    pub preload: preload::Preload,
}

/// Decide the Dockerfile, tag and labels for a configuration and its verified artifacts.
pub fn spec(
    config: &Config,
    artifacts: &[Present],
    preload: preload::Preload,
    tag: Option<&str>,
) -> ImageSpec {
    let dockerfile = dockerfile::render(&dockerfile::DockerfileInputs {
        base_image: &config.base_image,
        kubernetes_version: &config.kubernetes_version,
    });
    let config_hash = context::inputs_digest(&dockerfile, artifacts, &preload);
    let reference = match tag {
        Some(tag) => tag.to_owned(),
        None => default_reference(&config.kubernetes_version, &config_hash),
    };
    let mut image_labels = BTreeMap::from([
        (
            labels::VERSION.to_owned(),
            env!("CARGO_PKG_VERSION").to_owned(),
        ),
        (
            labels::KUBERNETES_VERSION.to_owned(),
            config.kubernetes_version.clone(),
        ),
        (labels::CONFIG_HASH.to_owned(), config_hash.to_string()),
        (labels::BASE_IMAGE.to_owned(), config.base_image.clone()),
        (labels::PRELOAD.to_owned(), preload.images.join(",")),
    ]);
    for present in artifacts {
        image_labels.insert(
            format!("{}{}", labels::ARTIFACT_PREFIX, present.artifact.name),
            format!("{} sha256:{}", present.artifact.version, present.digest),
        );
    }
    // One LABEL step at the very end (labels passed through the build API would become one
    // step each); the config hash covers everything above it.
    let dockerfile = format!("{dockerfile}{}", label_instruction(&image_labels));
    ImageSpec {
        dockerfile,
        reference,
        preload,
    }
}

/// `LABEL "key"="value" ...` on continuation lines, keys sorted.
fn label_instruction(labels: &BTreeMap<String, String>) -> String {
    let quote = |text: &str| format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""));
    let pairs: Vec<String> = labels
        .iter()
        .map(|(key, value)| format!("{}={}", quote(key), quote(value)))
        .collect();
    format!("LABEL {}\n", pairs.join(" \\\n      "))
}

pub fn default_reference(kubernetes_version: &str, config_hash: &Digest) -> String {
    let hash = config_hash.to_string();
    format!("{REPOSITORY}:{kubernetes_version}-{}", &hash[..12])
}

/// How the build went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildReport {
    pub image_id: String,
    /// Steps whose result came from the layer cache, and steps that ran.
    pub cached_steps: usize,
    pub ran_steps: usize,
}

/// Build the image on the engine, streaming the context as it is written.
pub async fn build(
    engine: &Engine,
    spec: &ImageSpec,
    artifacts: &[Present],
    printer: &Printer,
) -> Result<BuildReport> {
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
    let dockerfile = spec.dockerfile.clone();
    let owned = artifacts.to_vec();
    let preload = spec.preload.clone();
    let gzip = engine.is_remote();
    let producer = tokio::task::spawn_blocking(move || {
        let writer = ChannelWriter::new(sender.clone());
        let written = if gzip {
            let mut encoder = flate2::write::GzEncoder::new(writer, flate2::Compression::fast());
            context::write(&dockerfile, &owned, &preload, &mut encoder)
                .and_then(|()| encoder.finish().map(drop).map_err(Into::into))
        } else {
            let mut writer = writer;
            context::write(&dockerfile, &owned, &preload, &mut writer)
        };
        if let Err(error) = &written {
            // Make the upload fail rather than end early with a valid-looking context.
            let _ = sender.blocking_send(Err(std::io::Error::other(format!("{error:#}"))));
        }
        written
    });
    let body = futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx));

    let mut display = BuildDisplay::new(printer);
    let result = engine
        .build_image(&spec.reference, body, |event| display.event(event))
        .await;
    let produced = producer.await.context("the build context writer stopped")?;
    produced.context("cannot write the build context")?;
    result?;
    display.finish()
}

/// Write the context to a file or stdout (`--context-out`), for other builders.
pub fn write_context(spec: &ImageSpec, artifacts: &[Present], out: impl Write) -> Result<()> {
    context::write(&spec.dockerfile, artifacts, &spec.preload, out)
}

/// A `Write` that hands 256 KiB pieces to the async side.
struct ChannelWriter {
    sender: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    buffer: Vec<u8>,
}

const PIECE: usize = 256 * 1024;

impl ChannelWriter {
    fn new(sender: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>) -> Self {
        Self {
            sender,
            buffer: Vec::with_capacity(PIECE),
        }
    }

    fn send(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let piece = Bytes::from(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(PIECE),
        ));
        self.sender.blocking_send(Ok(piece)).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the engine stopped reading the build context",
            )
        })
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let room = PIECE - self.buffer.len();
        let taken = room.min(bytes.len());
        self.buffer.extend_from_slice(&bytes[..taken]);
        if self.buffer.len() >= PIECE {
            self.send()?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

impl Drop for ChannelWriter {
    fn drop(&mut self) {
        let _ = self.send();
    }
}

/// The builder colours a step's stderr; the terminal codes are noise in kdind's output.
fn strip_ansi(text: &str) -> String {
    let mut clean = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            chars.next();
            for code in chars.by_ref() {
                if code.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            clean.push(c);
        }
    }
    clean
}

/// Shows the build: the current step (a spinner on a terminal, a line otherwise), every
/// line with `-v`, and the failing step's output when a step fails.
struct BuildDisplay<'a> {
    printer: &'a Printer,
    spinner: Option<Spinner>,
    step_output: Vec<String>,
    step: String,
    cached_steps: usize,
    ran_steps: usize,
    image_id: Option<String>,
    failure: Option<String>,
}

impl<'a> BuildDisplay<'a> {
    fn new(printer: &'a Printer) -> Self {
        Self {
            printer,
            spinner: printer
                .animated()
                .then(|| Spinner::new("sending the build context")),
            step_output: Vec::new(),
            step: String::new(),
            cached_steps: 0,
            ran_steps: 0,
            image_id: None,
            failure: None,
        }
    }

    fn event(&mut self, event: BuildEvent) {
        match event {
            BuildEvent::Output(text) => {
                for line in strip_ansi(&text).lines() {
                    self.line(line.trim_end());
                }
            }
            BuildEvent::Failed(message) => self.failure = Some(message),
            BuildEvent::Built(id) => self.image_id = Some(id),
        }
    }

    fn line(&mut self, line: &str) {
        if line.is_empty() {
            return;
        }
        if line.starts_with("Step ") {
            self.step = line.to_owned();
            self.step_output.clear();
            match &self.spinner {
                Some(spinner) => spinner.set(line),
                None => self.printer.note(line),
            }
            return;
        }
        let builder_note = line.starts_with(" ---> ") || line.starts_with("Removing intermediate");
        if line.contains("---> Using cache") {
            self.cached_steps += 1;
        } else if line.contains("---> Running in ") {
            self.ran_steps += 1;
        } else if let Some(id) = line.strip_prefix("Successfully built ") {
            self.image_id.get_or_insert_with(|| id.to_owned());
        }
        if !builder_note {
            self.step_output.push(line.to_owned());
        }
        if self.printer.verbose() > 0 {
            match &self.spinner {
                Some(spinner) => spinner.println(line),
                None => self.printer.detail(line),
            }
        }
    }

    fn finish(mut self) -> Result<BuildReport> {
        if let Some(spinner) = self.spinner.take() {
            spinner.clear();
        }
        if let Some(message) = self.failure {
            let tail: Vec<&str> = self
                .step_output
                .iter()
                .rev()
                .take(60)
                .rev()
                .map(String::as_str)
                .collect();
            bail!(
                "the image build failed at {}\n{}\n{message}",
                if self.step.is_empty() {
                    "its start"
                } else {
                    &self.step
                },
                tail.join("\n")
            );
        }
        let Some(image_id) = self.image_id else {
            bail!("the engine ended the build without naming an image");
        };
        Ok(BuildReport {
            image_id,
            cached_steps: self.cached_steps,
            ran_steps: self.ran_steps,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_colours_are_removed_from_build_output() {
        assert_eq!(strip_ansi("\x1b[91mfailed\n\x1b[0m"), "failed\n");
        assert_eq!(strip_ansi("plain"), "plain");
    }

    #[test]
    fn a_failed_build_names_the_step_and_shows_its_output_only() {
        let printer = Printer::new(true, 0);
        let mut display = BuildDisplay::new(&printer);
        for line in [
            "Step 1/3 : FROM base",
            " ---> 1234",
            "Step 2/3 : RUN false",
            " ---> Running in abc",
            "\x1b[91mthe reason\n\x1b[0m",
            "Removing intermediate container abc",
        ] {
            display.event(BuildEvent::Output(format!("{line}\n")));
        }
        display.event(BuildEvent::Failed("returned a non-zero code: 1".into()));
        let error = display.finish().unwrap_err().to_string();
        assert_eq!(
            error,
            "the image build failed at Step 2/3 : RUN false\nthe reason\nreturned a non-zero code: 1"
        );
    }

    #[test]
    fn labels_are_one_quoted_instruction() {
        let labels = BTreeMap::from([
            ("b.key".to_owned(), "v1 sha256:ab".to_owned()),
            ("a.key".to_owned(), "say \"hi\"".to_owned()),
        ]);
        assert_eq!(
            label_instruction(&labels),
            "LABEL \"a.key\"=\"say \\\"hi\\\"\" \\\n      \"b.key\"=\"v1 sha256:ab\"\n"
        );
    }

    #[test]
    fn the_default_tag_holds_the_kubernetes_version_and_the_config_hash() {
        let digest = crate::digest::hash_bytes(b"x");
        let reference = default_reference("v1.35.1", &digest);
        assert_eq!(
            reference,
            format!("kdind/node:v1.35.1-{}", &digest.to_string()[..12])
        );
    }
}
