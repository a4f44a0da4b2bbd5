//! The locality protocol's messages (L1–L5), serde and postcard-encodable, and
//! their decoder for outside input (a malformed message is an error, never a
//! panic).

use serde::{Deserialize, Serialize};
use thiserror::Error;
use tiercast_proto::NodeId;

/// A peer group's id: drawn at random by its founder (L4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GroupId(pub u64);

/// A group as others see it: its id, its leader, and the RTT to it as measured
/// by whoever sends this entry (µs; its own measurement, never a relayed one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRef {
    pub group: GroupId,
    pub leader: NodeId,
    pub rtt_us: u32,
}

/// Everything the locality machines say to each other.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LocalityMsg {
    /// L1: a joiner asks the rendezvous for a boot list of groups.
    GetBootGroups,
    /// L1: the rendezvous's answer (`rtt_us` is 0: it measures nothing).
    BootGroups { groups: Vec<GroupRef> },
    /// L1: a leader tells the rendezvous its group (periodically).
    Announce { group: GroupId },
    /// L2: a probe; the answer echoes the nonce.
    Measure { nonce: u32 },
    /// L2: the answer to a probe.
    MeasureReply { nonce: u32 },
    /// L3: Get Neighbouring Peer Groups (and their distances), to a leader.
    GetNeighbours,
    /// L3: a leader's neighbour groups with the distances it measured.
    Neighbours {
        group: GroupId,
        neighbours: Vec<GroupRef>,
    },
    /// The receiver leads no group (or not that one): try `leader` if known.
    NotLeader {
        group: Option<GroupId>,
        leader: Option<NodeId>,
    },
    /// L3: join the receiver's group (also a member re-attaching after a
    /// succession).
    Join { group: GroupId },
    /// L3/L5: accepted; the group's leadership list and members.
    JoinAccepted {
        group: GroupId,
        term: u32,
        leadership: Vec<NodeId>,
        members: Vec<NodeId>,
        neighbours: Vec<GroupRef>,
    },
    /// L5: Get Peer Group Members (the leadership list).
    GetMembers { group: GroupId },
    /// L5: answer to [`LocalityMsg::GetMembers`].
    Members {
        group: GroupId,
        leader: NodeId,
        leadership: Vec<NodeId>,
    },
    /// L4: a group's leader asks another group's leader for an inter-group link
    /// (also sent by a new leader to restore its group's links).
    Link { group: GroupId },
    /// L4: the answer, with the answering group's neighbours (new candidates).
    LinkReply {
        group: GroupId,
        accepted: bool,
        neighbours: Vec<GroupRef>,
    },
    /// L5: the leader's periodic Alive: its term, leadership list, members and
    /// neighbour groups (the members' copies of the caches, L6).
    Alive {
        group: GroupId,
        term: u32,
        /// When the leader claimed leadership (earliest wins between equals).
        claim_us: u64,
        leadership: Vec<NodeId>,
        members: Vec<NodeId>,
        neighbours: Vec<GroupRef>,
    },
    /// L5: a member's answer to Alive (the leader keeps its member list by it).
    Here { group: GroupId },
    /// Merge (beyond seed 004): the leader tells its members the group merges
    /// into `group` led by `leader` (two groups founded at once in one place).
    MergeInto { group: GroupId, leader: NodeId },
    /// Merge: the sender's group is gone (merged into `into`); drop the link.
    Dissolved { group: GroupId, into: GroupRef },
    /// L5: a leaderless group's election claim; earliest `claim_us` wins.
    NewLeader {
        group: GroupId,
        round: u32,
        claim_us: u64,
    },
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("malformed locality message: {0}")]
    Malformed(String),
}

impl LocalityMsg {
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("a locality message always serializes")
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        postcard::from_bytes(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))
    }

    /// Encoded size in bytes (the simulator's cost of sending it).
    pub fn encoded_len(&self) -> usize {
        postcard::experimental::serialized_size(self).unwrap_or(0)
    }

    /// A short name for counters and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            LocalityMsg::GetBootGroups => "get_boot_groups",
            LocalityMsg::BootGroups { .. } => "boot_groups",
            LocalityMsg::Announce { .. } => "announce",
            LocalityMsg::Measure { .. } => "measure",
            LocalityMsg::MeasureReply { .. } => "measure_reply",
            LocalityMsg::GetNeighbours => "get_neighbours",
            LocalityMsg::Neighbours { .. } => "neighbours",
            LocalityMsg::NotLeader { .. } => "not_leader",
            LocalityMsg::Join { .. } => "join",
            LocalityMsg::JoinAccepted { .. } => "join_accepted",
            LocalityMsg::GetMembers { .. } => "get_members",
            LocalityMsg::Members { .. } => "members",
            LocalityMsg::Link { .. } => "link",
            LocalityMsg::LinkReply { .. } => "link_reply",
            LocalityMsg::Alive { .. } => "alive",
            LocalityMsg::Here { .. } => "here",
            LocalityMsg::NewLeader { .. } => "new_leader",
            LocalityMsg::MergeInto { .. } => "merge_into",
            LocalityMsg::Dissolved { .. } => "dissolved",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_garbage_is_an_error() {
        let m = LocalityMsg::Alive {
            group: GroupId(7),
            term: 3,
            claim_us: 12,
            leadership: vec![NodeId(1), NodeId(2)],
            members: vec![NodeId(3)],
            neighbours: vec![GroupRef {
                group: GroupId(9),
                leader: NodeId(4),
                rtt_us: 30_000,
            }],
        };
        let b = m.encode();
        assert_eq!(b.len(), m.encoded_len());
        assert_eq!(LocalityMsg::decode(&b), Ok(m));
        assert!(LocalityMsg::decode(&[0xff, 0xff, 0xff]).is_err());
        assert!(LocalityMsg::decode(&[]).is_err());
    }
}
