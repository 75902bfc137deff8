//! SHA-256 digests: parsing pins and checksum files, hashing files and streams.

use std::fmt;
use std::io::Read;
use std::path::Path;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// A SHA-256 digest, shown and parsed as 64 lower-case hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest([u8; 32]);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not a sha256: expected 64 hex digits")]
pub struct BadDigest(pub String);

impl FromStr for Digest {
    type Err = BadDigest;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let text = text.strip_prefix("sha256:").unwrap_or(text);
        let mut bytes = [0u8; 32];
        if text.len() != 64 || hex::decode_to_slice(text, &mut bytes).is_err() {
            return Err(BadDigest(text.to_owned()));
        }
        Ok(Self(bytes))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&hex::encode(self.0))
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// An incremental hasher that also counts bytes.
#[derive(Default, Clone)]
pub struct Hasher {
    inner: Sha256,
    len: u64,
}

impl Hasher {
    pub fn update(&mut self, bytes: &[u8]) {
        self.inner.update(bytes);
        self.len += bytes.len() as u64;
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn finish(self) -> Digest {
        Digest(self.inner.finalize().into())
    }

    /// Feed everything `reader` yields.
    pub fn read_all(&mut self, mut reader: impl Read) -> std::io::Result<()> {
        let mut buffer = vec![0u8; 256 * 1024];
        loop {
            match reader.read(&mut buffer) {
                Ok(0) => return Ok(()),
                Ok(read) => self.update(&buffer[..read]),
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
    }
}

/// Hash a whole file.
pub fn hash_file(path: &Path) -> std::io::Result<Digest> {
    let mut hasher = Hasher::default();
    hasher.read_all(std::fs::File::open(path)?)?;
    Ok(hasher.finish())
}

/// Hash bytes in memory (small things: configs, checksum files).
pub fn hash_bytes(bytes: &[u8]) -> Digest {
    let mut hasher = Hasher::default();
    hasher.update(bytes);
    hasher.finish()
}

/// Read the digest for `file_name` out of a checksum file: either a bare hash, or lines of
/// `sha256sum` output (`HASH  NAME` or `HASH *NAME`), where the line naming the file wins.
pub fn parse_checksum_file(text: &str, file_name: &str) -> Option<Digest> {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect();
    let mut only_hash = None;
    for line in &lines {
        let mut fields = line.split_whitespace();
        let Some(Ok(digest)) = fields.next().map(str::parse::<Digest>) else {
            continue;
        };
        match fields.next() {
            None => only_hash = Some(digest),
            Some(name) => {
                let name = name.trim_start_matches('*');
                let base = name.rsplit('/').next().unwrap_or(name);
                if base == file_name {
                    return Some(digest);
                }
            }
        }
    }
    if lines.len() == 1 {
        only_hash
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_and_prints_lower_case_hex() {
        let digest: Digest = EMPTY.to_uppercase().parse().unwrap();
        assert_eq!(digest.to_string(), EMPTY);
        assert_eq!(hash_bytes(b""), digest);
        assert_eq!(format!("sha256:{EMPTY}").parse::<Digest>().unwrap(), digest);
    }

    #[test]
    fn rejects_wrong_length_and_non_hex() {
        assert!("abc".parse::<Digest>().is_err());
        assert!(EMPTY.replace('e', "g").parse::<Digest>().is_err());
        assert!(format!("{EMPTY}00").parse::<Digest>().is_err());
    }

    #[test]
    fn checksum_file_forms() {
        let digest: Digest = EMPTY.parse().unwrap();
        assert_eq!(
            parse_checksum_file(&format!("{EMPTY}\n"), "x"),
            Some(digest)
        );
        assert_eq!(
            parse_checksum_file(&format!("{EMPTY}  crictl.tar.gz\n"), "crictl.tar.gz"),
            Some(digest)
        );
        let other = "1".repeat(64);
        let listing = format!("{other}  a.tgz\n{EMPTY} *dir/b.tgz\n");
        assert_eq!(parse_checksum_file(&listing, "b.tgz"), Some(digest));
        assert_eq!(parse_checksum_file(&listing, "c.tgz"), None);
        assert_eq!(parse_checksum_file("not a hash\n", "x"), None);
        assert_eq!(parse_checksum_file("", "x"), None);
    }

    #[test]
    fn hasher_counts_bytes() {
        let mut hasher = Hasher::default();
        hasher.read_all(&b"hello world"[..]).unwrap();
        assert_eq!(hasher.len(), 11);
        assert_eq!(hasher.finish(), hash_bytes(b"hello world"));
    }
}
