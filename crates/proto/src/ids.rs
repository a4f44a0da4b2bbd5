//! Compact identifiers used everywhere (`NodeId(u32)`, `ChannelId(u32)`), plus the
//! tier number and region name of the static overlay (V1, V11).

use serde::{Deserialize, Serialize};
use std::fmt;

/// A node of the overlay (origin, relay, peer, protocol viewer, or the coordinator).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeId(pub u32);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// A channel (one live stream); the coordinator maps channel names to ids.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct ChannelId(pub u32);

impl fmt::Display for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.0)
    }
}

/// A bottom cluster's manager (C1, C8: seed 002's DCM of one cluster of the
/// bottom level): a logical id, unique within a channel's overlay, that a node
/// reports in its heartbeats and is told in their answers. 0: none told yet.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct ClusterId(pub u32);

impl fmt::Display for ClusterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m{}", self.0)
    }
}

/// A viewer local to one node (an HTTP player connection), counted as a child.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ViewerId(pub u64);

/// Distance class from the origin: tier 0 is the origin, tier 1 is nearest to it.
pub type Tier = u8;

/// A region name (V11); the empty string is the default region.
pub type Region = String;

/// Checks a channel name is URL-safe: 1..=64 chars of `[A-Za-z0-9_-]`.
pub fn valid_channel_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names() {
        assert!(valid_channel_name("match-1_hd"));
        assert!(!valid_channel_name(""));
        assert!(!valid_channel_name("a/b"));
        assert!(!valid_channel_name("../x"));
        assert!(!valid_channel_name(&"x".repeat(65)));
    }
}
