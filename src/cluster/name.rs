//! The cluster name: a DNS-1123 label, because it becomes part of a container name, a
//! hostname inside the node and a certificate SAN.

use std::fmt;
use std::str::FromStr;

/// A validated cluster name (`kdind` by default).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClusterName(String);

/// The rule, worded once so that every error states it the same way.
pub const NAME_RULE: &str = "a cluster name uses lower-case letters, digits and '-', \
is at most 63 characters long, and starts and ends with a letter or digit";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid cluster name {name:?}: {NAME_RULE}")]
pub struct InvalidName {
    name: String,
}

impl FromStr for ClusterName {
    type Err = InvalidName;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let bytes = name.as_bytes();
        let allowed = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-';
        let alphanumeric =
            |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let valid = !bytes.is_empty()
            && bytes.len() <= 63
            && bytes.iter().all(allowed)
            && alphanumeric(bytes.first())
            && alphanumeric(bytes.last());
        if valid {
            Ok(Self(name.to_owned()))
        } else {
            Err(InvalidName {
                name: name.to_owned(),
            })
        }
    }
}

impl fmt::Display for ClusterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_dns_1123_labels() {
        for name in ["kdind", "a", "ci-42", "0abc", &"a".repeat(63)] {
            assert_eq!(name.parse::<ClusterName>().unwrap().to_string(), name);
        }
    }

    #[test]
    fn rejects_everything_else() {
        for name in [
            "",
            "Kdind",
            "a_b",
            "-a",
            "a-",
            "a.b",
            "é",
            &"a".repeat(64),
            "a b",
        ] {
            let error = name.parse::<ClusterName>().unwrap_err();
            assert!(error.to_string().contains(NAME_RULE), "{error}");
        }
    }
}
