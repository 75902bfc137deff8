//! Getting bytes from a URL into a file while hashing them: https and http through reqwest
//! (rustls with the ring provider), file:// from the local disk. Connection errors, 5xx
//! answers and bodies cut short are retried with backoff; a transfer that stopped part way
//! resumes with a Range request where the server allows it.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::{StatusCode, Url};

use crate::digest::{Digest, Hasher};
use crate::progress::TransferProgress as Progress;

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub first_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            first_delay: Duration::from_millis(500),
        }
    }
}

/// No progress display.
#[cfg(test)]
pub struct Silent;

#[cfg(test)]
impl Progress for Silent {
    fn update(&self, _done: u64, _total: Option<u64>) {}
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url} was not found (HTTP 404): check the version and the URL{mirror_hint}")]
    NotFound { url: String, mirror_hint: String },

    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: StatusCode },

    #[error("the download of {url} was cut short: {got} of {expected} bytes arrived ({attempts} attempts)")]
    Truncated {
        url: String,
        got: u64,
        expected: u64,
        attempts: u32,
    },

    #[error("TLS with {url} failed: {cause}\nIf a proxy or private CA sits in between, use --mirror with a URL it serves, or add its CA to the system's trust store")]
    Tls { url: String, cause: String },

    #[error("cannot download {url} ({attempts} attempts): {cause}")]
    Network {
        url: String,
        cause: String,
        attempts: u32,
    },

    #[error("{url} is larger than the {limit} bytes a checksum file may have")]
    TooLarge { url: String, limit: u64 },

    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        #[source]
        cause: std::io::Error,
    },

    #[error("{0} is not a valid URL")]
    BadUrl(String),
}

impl FetchError {
    fn io(path: &Path, cause: std::io::Error) -> Self {
        Self::Io {
            path: path.to_owned(),
            cause,
        }
    }

    /// The error of the last attempt, saying how many there were.
    fn after(self, attempts: u32) -> Self {
        match self {
            Self::Truncated {
                url, got, expected, ..
            } => Self::Truncated {
                url,
                got,
                expected,
                attempts,
            },
            Self::Network { url, cause, .. } => Self::Network {
                url,
                cause,
                attempts,
            },
            other => other,
        }
    }
}

/// Pacing of retries: `first_delay`, doubled after each failed attempt, until the policy's
/// attempts are used up.
struct Backoff {
    policy: RetryPolicy,
    /// The attempt under way, from 1.
    attempt: u32,
    delay: Duration,
}

impl Backoff {
    fn new(policy: RetryPolicy) -> Self {
        Self {
            policy,
            attempt: 1,
            delay: policy.first_delay,
        }
    }

    /// Wait before the next attempt; false when none is left.
    async fn wait(&mut self) -> bool {
        if self.attempt >= self.policy.attempts {
            return false;
        }
        tokio::time::sleep(self.delay).await;
        self.delay *= 2;
        self.attempt += 1;
        true
    }
}

/// The HTTP client and retry policy shared by every download of a build.
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    retry: RetryPolicy,
    mirrored: bool,
}

/// The outcome of a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fetched {
    pub digest: Digest,
    pub len: u64,
    /// Bytes that were already on disk from an earlier, interrupted transfer.
    pub resumed_from: u64,
}

enum Attempt {
    Done,
    /// Worth another try; the partial file keeps what arrived.
    Retry(FetchError),
}

impl Fetcher {
    pub fn new(retry: RetryPolicy, mirrored: bool) -> anyhow::Result<Self> {
        // Either this call installs ring, or an earlier one did: both are fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .user_agent(concat!("kdind/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(60))
            .build()?;
        Ok(Self {
            client,
            retry,
            mirrored,
        })
    }

    fn not_found(&self, url: &str) -> FetchError {
        FetchError::NotFound {
            url: url.to_owned(),
            mirror_hint: if self.mirrored {
                " (is the file on the mirror?)".to_owned()
            } else {
                String::new()
            },
        }
    }

    /// A small text file, such as a checksum file.
    pub async fn text(&self, url: &str) -> Result<String, FetchError> {
        const LIMIT: u64 = 64 * 1024;
        let parsed = Url::parse(url).map_err(|_| FetchError::BadUrl(url.to_owned()))?;
        if parsed.scheme() == "file" {
            let path = file_path(&parsed)?;
            let bytes = std::fs::read(&path).map_err(|cause| FetchError::io(&path, cause))?;
            return Ok(String::from_utf8_lossy(&bytes).into_owned());
        }
        let mut backoff = Backoff::new(self.retry);
        loop {
            let outcome = async {
                let response = self.client.get(url).send().await?;
                let status = response.status();
                if !status.is_success() {
                    return Ok(Err(status));
                }
                if response.content_length().unwrap_or(0) > LIMIT {
                    return Ok(Ok(None));
                }
                response.bytes().await.map(|bytes| Ok(Some(bytes)))
            }
            .await;
            let error = match outcome {
                Ok(Ok(Some(bytes))) if bytes.len() as u64 <= LIMIT => {
                    return Ok(String::from_utf8_lossy(&bytes).into_owned())
                }
                Ok(Ok(_)) => {
                    return Err(FetchError::TooLarge {
                        url: url.to_owned(),
                        limit: LIMIT,
                    })
                }
                Ok(Err(status)) => self.status_error(url, status),
                Err(error) => classify(url, &error, backoff.attempt),
            };
            if !retryable(&error) || !backoff.wait().await {
                return Err(error);
            }
        }
    }

    fn status_error(&self, url: &str, status: StatusCode) -> FetchError {
        if status == StatusCode::NOT_FOUND {
            self.not_found(url)
        } else {
            FetchError::Status {
                url: url.to_owned(),
                status,
            }
        }
    }

    /// Download `url` into `partial`, appending to what an earlier attempt left there when
    /// the server allows it, and hash everything.
    pub async fn to_file(
        &self,
        url: &str,
        partial: &Path,
        progress: &dyn Progress,
    ) -> Result<Fetched, FetchError> {
        let parsed = Url::parse(url).map_err(|_| FetchError::BadUrl(url.to_owned()))?;
        if let Some(dir) = partial.parent() {
            std::fs::create_dir_all(dir).map_err(|cause| FetchError::io(dir, cause))?;
        }
        if parsed.scheme() == "file" {
            return copy_local(&file_path(&parsed)?, partial, progress);
        }
        let mut state = Partial::open(partial)?;
        let resumed_from = state.hasher.len();
        let mut backoff = Backoff::new(self.retry);
        loop {
            match self.attempt(url, &mut state, progress).await? {
                Attempt::Done => {
                    return Ok(Fetched {
                        len: state.hasher.len(),
                        digest: state.hasher.finish(),
                        resumed_from,
                    })
                }
                Attempt::Retry(error) => {
                    if !backoff.wait().await {
                        return Err(error.after(backoff.attempt));
                    }
                }
            }
        }
    }

    async fn attempt(
        &self,
        url: &str,
        state: &mut Partial,
        progress: &dyn Progress,
    ) -> Result<Attempt, FetchError> {
        let offset = state.hasher.len();
        let mut request = self.client.get(url);
        if offset > 0 {
            request = request.header(reqwest::header::RANGE, format!("bytes={offset}-"));
        }
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(error) => return retry_or_fail(classify(url, &error, 1)),
        };
        let status = response.status();
        let total = match status {
            StatusCode::PARTIAL_CONTENT => match content_range(&response) {
                Some((start, total)) if start == offset => total,
                // The server sent some other range: start over.
                _ => {
                    state.restart()?;
                    return Ok(Attempt::Retry(network(url, "unexpected Content-Range")));
                }
            },
            StatusCode::RANGE_NOT_SATISFIABLE => {
                state.restart()?;
                return Ok(Attempt::Retry(network(url, "range not satisfiable")));
            }
            status if status.is_success() => {
                if offset > 0 {
                    // No Range support: the body is the whole file.
                    state.restart()?;
                }
                response.content_length()
            }
            status => return retry_or_fail(self.status_error(url, status)),
        };
        progress.update(state.hasher.len(), total);
        loop {
            match response.chunk().await {
                Ok(Some(bytes)) => {
                    state.append(&bytes)?;
                    progress.update(state.hasher.len(), total);
                }
                Ok(None) => break,
                Err(error) => {
                    state.flush()?;
                    let error = match total {
                        Some(expected) if state.hasher.len() < expected => FetchError::Truncated {
                            url: url.to_owned(),
                            got: state.hasher.len(),
                            expected,
                            attempts: 1,
                        },
                        _ => classify(url, &error, 1),
                    };
                    return retry_or_fail(error);
                }
            }
        }
        state.flush()?;
        if let Some(expected) = total {
            if state.hasher.len() < expected {
                return Ok(Attempt::Retry(FetchError::Truncated {
                    url: url.to_owned(),
                    got: state.hasher.len(),
                    expected,
                    attempts: 1,
                }));
            }
        }
        Ok(Attempt::Done)
    }
}

fn retry_or_fail(error: FetchError) -> Result<Attempt, FetchError> {
    if retryable(&error) {
        Ok(Attempt::Retry(error))
    } else {
        Err(error)
    }
}

fn retryable(error: &FetchError) -> bool {
    match error {
        FetchError::Network { .. } | FetchError::Truncated { .. } => true,
        FetchError::Status { status, .. } => {
            status.is_server_error() || *status == StatusCode::TOO_MANY_REQUESTS
        }
        _ => false,
    }
}

fn network(url: &str, cause: &str) -> FetchError {
    FetchError::Network {
        url: url.to_owned(),
        cause: cause.to_owned(),
        attempts: 1,
    }
}

/// Sort a reqwest error into TLS (not retried) and everything else on the wire (retried).
fn classify(url: &str, error: &reqwest::Error, attempts: u32) -> FetchError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    let mut deepest = error.to_string();
    while let Some(current) = source {
        // rustls reports through io::Error, whose source() skips the wrapped error itself;
        // a peer that hangs up mid-handshake is an io::Error of its own.
        let io = current.downcast_ref::<std::io::Error>();
        let tls = current
            .downcast_ref::<rustls::Error>()
            .map(ToString::to_string)
            .or_else(|| {
                io.and_then(|io| io.get_ref())
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                    .map(ToString::to_string)
            })
            .or_else(|| {
                io.map(ToString::to_string)
                    .filter(|text| text.starts_with("tls handshake"))
            });
        if let Some(cause) = tls {
            return FetchError::Tls {
                url: url.to_owned(),
                cause,
            };
        }
        deepest = current.to_string();
        source = current.source();
    }
    FetchError::Network {
        url: url.to_owned(),
        cause: deepest,
        attempts,
    }
}

fn content_range(response: &reqwest::Response) -> Option<(u64, Option<u64>)> {
    let value = response
        .headers()
        .get(reqwest::header::CONTENT_RANGE)?
        .to_str()
        .ok()?;
    let rest = value.strip_prefix("bytes ")?;
    let (span, total) = rest.split_once('/')?;
    let (start, _end) = span.split_once('-')?;
    Some((start.parse().ok()?, total.parse().ok()))
}

fn file_path(url: &Url) -> Result<PathBuf, FetchError> {
    url.to_file_path()
        .map_err(|()| FetchError::BadUrl(url.to_string()))
}

fn copy_local(
    source: &Path,
    partial: &Path,
    progress: &dyn Progress,
) -> Result<Fetched, FetchError> {
    let mut input = File::open(source).map_err(|cause| FetchError::io(source, cause))?;
    let total = input.metadata().ok().map(|metadata| metadata.len());
    let mut state = Partial::create(partial)?;
    let mut buffer = vec![0u8; 1024 * 1024];
    loop {
        let read = std::io::Read::read(&mut input, &mut buffer)
            .map_err(|cause| FetchError::io(source, cause))?;
        if read == 0 {
            break;
        }
        state.append(&buffer[..read])?;
        progress.update(state.hasher.len(), total);
    }
    state.flush()?;
    Ok(Fetched {
        len: state.hasher.len(),
        digest: state.hasher.finish(),
        resumed_from: 0,
    })
}

/// The file a download is written to, and the hash of everything in it.
struct Partial {
    path: PathBuf,
    writer: BufWriter<File>,
    hasher: Hasher,
}

impl Partial {
    /// Open for appending, hashing what an earlier attempt left.
    fn open(path: &Path) -> Result<Self, FetchError> {
        let mut hasher = Hasher::default();
        match File::open(path) {
            Ok(existing) => hasher
                .read_all(existing)
                .map_err(|cause| FetchError::io(path, cause))?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(cause) => return Err(FetchError::io(path, cause)),
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|cause| FetchError::io(path, cause))?;
        Ok(Self {
            path: path.to_owned(),
            writer: BufWriter::with_capacity(1024 * 1024, file),
            hasher,
        })
    }

    fn create(path: &Path) -> Result<Self, FetchError> {
        let file = File::create(path).map_err(|cause| FetchError::io(path, cause))?;
        Ok(Self {
            path: path.to_owned(),
            writer: BufWriter::with_capacity(1024 * 1024, file),
            hasher: Hasher::default(),
        })
    }

    fn append(&mut self, bytes: &[u8]) -> Result<(), FetchError> {
        self.writer
            .write_all(bytes)
            .map_err(|cause| FetchError::io(&self.path, cause))?;
        self.hasher.update(bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), FetchError> {
        self.writer
            .flush()
            .and_then(|()| self.writer.get_ref().sync_data())
            .map_err(|cause| FetchError::io(&self.path, cause))
    }

    fn restart(&mut self) -> Result<(), FetchError> {
        self.flush()?;
        *self = Self::create(&self.path.clone())?;
        Ok(())
    }
}

#[cfg(test)]
#[path = "../../tests/it/http_server.rs"]
mod http_server;

#[cfg(test)]
mod tests {
    use super::http_server::{Reply, TestServer};
    use super::*;
    use crate::digest::hash_bytes;

    fn fast() -> Fetcher {
        Fetcher::new(
            RetryPolicy {
                attempts: 4,
                first_delay: Duration::from_millis(10),
            },
            false,
        )
        .unwrap()
    }

    fn body(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    /// GET /f into `partial`, which must succeed.
    async fn fetch_ok(server: &TestServer, partial: &Path) -> Fetched {
        fast()
            .to_file(&server.url("/f"), partial, &Silent)
            .await
            .unwrap()
    }

    /// A server answering every request with `payload`, with or without Range support.
    fn serving(payload: &[u8], ranges: bool) -> TestServer {
        let payload = payload.to_vec();
        TestServer::start(move |_, _| {
            let reply = Reply::ok(payload.clone());
            if ranges {
                reply.with_ranges()
            } else {
                reply
            }
        })
    }

    #[tokio::test]
    async fn downloads_and_hashes() {
        let payload = body(300_000);
        let server = serving(&payload, false);
        let dir = tempfile::tempdir().unwrap();
        let partial = dir.path().join("p");
        let fetched = fetch_ok(&server, &partial).await;
        assert_eq!(fetched.digest, hash_bytes(&payload));
        assert_eq!(fetched.len, 300_000);
        assert_eq!(std::fs::read(&partial).unwrap(), payload);
    }

    #[tokio::test]
    async fn server_errors_are_retried_until_the_file_comes() {
        let server = TestServer::start(|_, before| {
            if before < 2 {
                Reply::status(503)
            } else {
                Reply::ok("finally")
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let fetched = fast()
            .to_file(&server.url("/f"), &dir.path().join("p"), &Silent)
            .await
            .unwrap();
        assert_eq!(fetched.digest, hash_bytes(b"finally"));
        assert_eq!(server.count("/f"), 3);
    }

    #[tokio::test]
    async fn not_found_is_not_retried_and_names_the_url() {
        let server = TestServer::start(|_, _| Reply::status(404));
        let dir = tempfile::tempdir().unwrap();
        let url = server.url("/missing");
        let error = fast()
            .to_file(&url, &dir.path().join("p"), &Silent)
            .await
            .unwrap_err();
        assert!(matches!(error, FetchError::NotFound { .. }), "{error}");
        assert!(error.to_string().contains(&url), "{error}");
        assert_eq!(server.count("/missing"), 1);
    }

    #[tokio::test]
    async fn an_interrupted_transfer_resumes_with_a_range_request() {
        let payload = body(100_000);
        let served = payload.clone();
        let server = TestServer::start(move |_, before| {
            let reply = Reply::ok(served.clone()).with_ranges();
            if before == 0 {
                reply.cut_after(40_000)
            } else {
                reply
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let partial = dir.path().join("p");
        let fetched = fetch_ok(&server, &partial).await;
        assert_eq!(fetched.digest, hash_bytes(&payload));
        let seen = server.seen();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert_eq!(seen[0].range, None);
        assert_eq!(seen[1].range.as_deref(), Some("bytes=40000-"));
    }

    #[tokio::test]
    async fn a_partial_file_from_an_earlier_run_is_resumed() {
        let payload = body(50_000);
        let server = serving(&payload, true);
        let dir = tempfile::tempdir().unwrap();
        let partial = dir.path().join("p");
        std::fs::write(&partial, &payload[..12_345]).unwrap();
        let fetched = fetch_ok(&server, &partial).await;
        assert_eq!(fetched.resumed_from, 12_345);
        assert_eq!(fetched.digest, hash_bytes(&payload));
        assert_eq!(server.seen()[0].range.as_deref(), Some("bytes=12345-"));
    }

    #[tokio::test]
    async fn without_range_support_the_download_starts_over() {
        let payload = body(50_000);
        let server = serving(&payload, false);
        let dir = tempfile::tempdir().unwrap();
        let partial = dir.path().join("p");
        std::fs::write(&partial, b"stale bytes from somewhere else").unwrap();
        let fetched = fetch_ok(&server, &partial).await;
        assert_eq!(fetched.digest, hash_bytes(&payload));
        assert_eq!(std::fs::read(&partial).unwrap(), payload);
    }

    #[tokio::test]
    async fn a_body_always_cut_short_is_a_truncation_error_with_counts() {
        let server = TestServer::start(|_, _| Reply::ok(body(10_000)).cut_after(4_000));
        let dir = tempfile::tempdir().unwrap();
        let error = fast()
            .to_file(&server.url("/f"), &dir.path().join("p"), &Silent)
            .await
            .unwrap_err();
        let text = error.to_string();
        assert!(matches!(error, FetchError::Truncated { .. }), "{text}");
        assert!(text.contains("4000 of 10000 bytes"), "{text}");
        assert!(text.contains("4 attempts"), "{text}");
    }

    #[tokio::test]
    async fn tls_failures_are_reported_as_tls_and_not_retried() {
        // A plain-HTTP server spoken to with https: the handshake cannot succeed.
        let server = TestServer::start(|_, _| Reply::ok("plain"));
        let dir = tempfile::tempdir().unwrap();
        let url = format!("https://127.0.0.1:{}/f", server.port);
        let error = fast()
            .to_file(&url, &dir.path().join("p"), &Silent)
            .await
            .unwrap_err();
        assert!(matches!(error, FetchError::Tls { .. }), "{error:?}");
        assert!(error.to_string().starts_with("TLS with"), "{error}");
    }

    #[tokio::test]
    async fn connection_refused_is_retried_then_reported() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let dir = tempfile::tempdir().unwrap();
        let url = format!("http://127.0.0.1:{port}/f");
        let error = fast()
            .to_file(&url, &dir.path().join("p"), &Silent)
            .await
            .unwrap_err();
        let text = error.to_string();
        assert!(text.contains("cannot download"), "{text}");
        assert!(text.contains("4 attempts"), "{text}");
    }

    #[tokio::test]
    async fn file_urls_are_copied_and_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        std::fs::write(&source, b"local bytes").unwrap();
        let url = Url::from_file_path(&source).unwrap().to_string();
        let partial = dir.path().join("p");
        let fetched = fast().to_file(&url, &partial, &Silent).await.unwrap();
        assert_eq!(fetched.digest, hash_bytes(b"local bytes"));
        assert_eq!(fast().text(&url).await.unwrap(), "local bytes");
    }

    #[tokio::test]
    async fn checksum_files_are_read_as_text_with_a_size_limit() {
        let server = TestServer::start(|path, _| match path {
            "/small" => Reply::ok("abc\n"),
            _ => Reply::ok(vec![b'a'; 100_000]),
        });
        let fetcher = fast();
        assert_eq!(fetcher.text(&server.url("/small")).await.unwrap(), "abc\n");
        let error = fetcher.text(&server.url("/big")).await.unwrap_err();
        assert!(matches!(error, FetchError::TooLarge { .. }), "{error}");
    }
}
