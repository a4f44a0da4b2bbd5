//! The names of reservations (C5): a capped link ([`LinkKey`], between two regions
//! or two nodes, stored in sorted order), the manager that books it ([`ManagerId`],
//! a DCM: one per (channel, region)) and the connection a reservation is for
//! ([`ConnId`]).

use crate::registry::RegionId;
use tiercast_proto::NodeId;

/// A link a policy may cap: between two regions or between two nodes. The two ends
/// are kept in sorted order, so `(a, b)` and `(b, a)` name the same link; build keys
/// with [`LinkKey::regions`] / [`LinkKey::nodes`]. A key built by hand is
/// normalized by every method of `Reservations`, and one with the same end twice is
/// never capped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LinkKey {
    Regions(RegionId, RegionId),
    Nodes(NodeId, NodeId),
}

impl LinkKey {
    /// The link between two regions; `None` when `a == b` (no link to cap).
    pub fn regions(a: RegionId, b: RegionId) -> Option<LinkKey> {
        match a.cmp(&b) {
            std::cmp::Ordering::Less => Some(LinkKey::Regions(a, b)),
            std::cmp::Ordering::Greater => Some(LinkKey::Regions(b, a)),
            std::cmp::Ordering::Equal => None,
        }
    }

    /// The link between two nodes; `None` when `a == b`.
    pub fn nodes(a: NodeId, b: NodeId) -> Option<LinkKey> {
        match a.cmp(&b) {
            std::cmp::Ordering::Less => Some(LinkKey::Nodes(a, b)),
            std::cmp::Ordering::Greater => Some(LinkKey::Nodes(b, a)),
            std::cmp::Ordering::Equal => None,
        }
    }

    /// The two regions of a link between regions.
    pub fn region_ends(self) -> Option<(RegionId, RegionId)> {
        match self {
            LinkKey::Regions(a, b) => Some((a, b)),
            LinkKey::Nodes(..) => None,
        }
    }

    /// The same link with its ends sorted; `None` for a link from an end to itself.
    pub fn normalized(self) -> Option<LinkKey> {
        match self {
            LinkKey::Regions(a, b) => LinkKey::regions(a, b),
            LinkKey::Nodes(a, b) => LinkKey::nodes(a, b),
        }
    }
}

/// A manager that books bandwidth (the seed's DCM): one per (channel, region).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ManagerId(pub u32);

/// One connection that crosses the link: `child` fed by `parent` on substream tree
/// `tree` ([`ConnId::WHOLE_STREAM`] = the whole stream).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId {
    pub child: NodeId,
    pub parent: NodeId,
    pub tree: u8,
}

impl ConnId {
    /// The `tree` of a connection that carries the whole stream.
    pub const WHOLE_STREAM: u8 = 255;
}
