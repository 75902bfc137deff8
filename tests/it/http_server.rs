//! A small HTTP/1.1 server on 127.0.0.1 for download tests: it answers from a handler,
//! honours Range requests when asked to, can cut a body short or send it slowly, and
//! records every request it saw. Shared by the unit tests in `src/artifacts` and the
//! integration tests.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub path: String,
    pub range: Option<String>,
}

/// What to answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Arc<Vec<u8>>,
    /// Answer `Range: bytes=N-` with 206.
    pub ranges: bool,
    /// Close the connection after this many body bytes (Content-Length still says all).
    pub cut_after: Option<usize>,
    /// Send the body in pieces of this size with this pause between them.
    pub pace: Option<(usize, Duration)>,
}

impl Reply {
    pub fn ok(body: impl Into<Vec<u8>>) -> Self {
        Self {
            status: 200,
            body: Arc::new(body.into()),
            ranges: false,
            cut_after: None,
            pace: None,
        }
    }

    pub fn status(status: u16) -> Self {
        Self {
            status,
            ..Self::ok(format!("status {status}\n"))
        }
    }

    pub fn with_ranges(mut self) -> Self {
        self.ranges = true;
        self
    }

    pub fn cut_after(mut self, bytes: usize) -> Self {
        self.cut_after = Some(bytes);
        self
    }

    pub fn paced(mut self, chunk: usize, pause: Duration) -> Self {
        self.pace = Some((chunk, pause));
        self
    }
}

type Handler = dyn Fn(&str, usize) -> Reply + Send + Sync;

pub struct TestServer {
    pub port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl TestServer {
    /// Start serving. The handler gets the request path and how many requests for that
    /// path came before this one.
    pub fn start(handler: impl Fn(&str, usize) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let log = Arc::clone(&seen);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let handler = Arc::clone(&handler);
                let log = Arc::clone(&log);
                std::thread::spawn(move || serve(stream, &*handler, &log));
            }
        });
        Self { port, seen }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// How many requests asked for `path`.
    pub fn count(&self, path: &str) -> usize {
        self.seen().iter().filter(|seen| seen.path == path).count()
    }
}

fn serve(stream: TcpStream, handler: &Handler, log: &Mutex<Vec<Seen>>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_owned();
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("range") {
                range = Some(value.trim().to_owned());
            }
        }
    }
    let before = {
        let mut log = log.lock().unwrap();
        let before = log.iter().filter(|seen| seen.path == path).count();
        log.push(Seen {
            path: path.clone(),
            range: range.clone(),
        });
        before
    };
    let reply = handler(&path, before);
    let mut stream = stream;
    let start = match (&range, reply.ranges, reply.status) {
        (Some(range), true, 200) => range
            .strip_prefix("bytes=")
            .and_then(|rest| rest.strip_suffix('-'))
            .and_then(|start| start.parse::<usize>().ok())
            .filter(|start| *start <= reply.body.len()),
        _ => None,
    };
    let total = reply.body.len();
    let (status_line, body) = match start {
        Some(start) => ("206 Partial Content".to_owned(), &reply.body[start..]),
        None => (format!("{} Status", reply.status), &reply.body[..]),
    };
    let mut head = format!(
        "HTTP/1.1 {status_line}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(start) = start {
        head.push_str(&format!(
            "Content-Range: bytes {start}-{}/{total}\r\n",
            total.saturating_sub(1)
        ));
    }
    if reply.ranges {
        head.push_str("Accept-Ranges: bytes\r\n");
    }
    head.push_str("\r\n");
    if stream.write_all(head.as_bytes()).is_err() {
        return;
    }
    let body = match reply.cut_after {
        Some(cut) => &body[..cut.min(body.len())],
        None => body,
    };
    match reply.pace {
        Some((chunk, pause)) => {
            for piece in body.chunks(chunk.max(1)) {
                if stream.write_all(piece).is_err() {
                    return;
                }
                let _ = stream.flush();
                std::thread::sleep(pause);
            }
        }
        None => {
            let _ = stream.write_all(body);
        }
    }
    let _ = stream.flush();
    let _ = stream.shutdown(std::net::Shutdown::Both);
}
