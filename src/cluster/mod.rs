//! Everything that describes a cluster independently of how it is run: its validated name,
//! the labels that mark what kdind owns, and the names derived from them.

pub mod labels;
mod name;

pub use labels::{Labels, Role};
pub use name::ClusterName;
