//! A node's last heartbeat as the registry keeps it (C1, C2; issue 12's < 2 GB
//! at 10⁶ nodes). A peer's is kept packed — its postcard bytes, ≈ 150 B for a
//! peer's eight links against ≈ 0.65 kB decoded — and decoded when read: once
//! per heartbeat (the history's reading of the next one against it, C4) and by
//! the rare readers (a returning peer's watch, a channel's retirement). Origins
//! and relays, few and read on every placement (their children count against
//! their load), keep theirs whole. Either way a reader gets the heartbeat as it
//! came (postcard is lossless), so no decision can change.

use std::borrow::Cow;
use tiercast_proto::{Heartbeat, NodeRole};

#[derive(Clone, Debug, PartialEq)]
pub enum LastReport {
    Whole(Heartbeat),
    /// The heartbeat's postcard bytes, and its `local_time_us` (read on every
    /// heartbeat for the interval since) unpacked.
    Packed {
        local_time_us: u64,
        bytes: Box<[u8]>,
    },
}

impl LastReport {
    /// `hb` as a node of `role`'s last heartbeat: packed for a peer.
    pub fn keep(role: NodeRole, hb: Heartbeat) -> Self {
        if role != NodeRole::Peer {
            return LastReport::Whole(hb);
        }
        match postcard::to_allocvec(&hb) {
            Ok(v) => LastReport::Packed {
                local_time_us: hb.local_time_us,
                bytes: v.into_boxed_slice(),
            },
            // Never for a heartbeat (plain fields): kept whole all the same.
            Err(_) => LastReport::Whole(hb),
        }
    }

    /// The heartbeat as it came.
    pub fn heartbeat(&self) -> Cow<'_, Heartbeat> {
        match self {
            LastReport::Whole(hb) => Cow::Borrowed(hb),
            LastReport::Packed { bytes, .. } => Cow::Owned(
                postcard::from_bytes(bytes).expect("bytes packed from a heartbeat decode"),
            ),
        }
    }

    pub fn local_time_us(&self) -> u64 {
        match self {
            LastReport::Whole(hb) => hb.local_time_us,
            LastReport::Packed { local_time_us, .. } => *local_time_us,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tiercast_proto::{
        ChannelId, ChannelReport, CodedSet, Feed, LinkReport, NodeId, SubstreamSet,
    };

    fn hb() -> Heartbeat {
        let feeds = [
            Feed::All,
            Feed::Lazy,
            Feed::Substreams(SubstreamSet::single(8, 3).expect("3 < 8")),
            Feed::Coded(CodedSet::empty(4, 2).expect("4 + 2 fit").with(5)),
        ];
        let link = |i: u32| LinkReport {
            peer: NodeId(i * 7919),
            last_seq: (i % 3 != 0).then_some(u64::from(i) << 40),
            last_block_time_us: (i % 2 == 0).then_some(u64::MAX - u64::from(i)),
            feed: feeds[i as usize % 4],
        };
        Heartbeat {
            node: NodeId(42),
            seq: 9,
            local_time_us: 123_456_789,
            load: 3,
            capacity: 40,
            channels: (0..3)
                .map(|c| ChannelReport {
                    channel: ChannelId(c),
                    parents: (0..4 + c).map(link).collect(),
                    children: (10..12 + 2 * c).map(link).collect(),
                    local_viewers: c,
                    buffered_blocks: 77,
                    first_seq: Some(1),
                    last_seq: (c > 0).then_some(u64::from(c) * 1000),
                    missing_blocks: 5,
                    shards_expected: 6,
                    shards_received: 4,
                    groups_rebuilt: 1,
                })
                .collect(),
        }
    }

    /// A peer's is packed and smaller, a relay's whole; both read back as the
    /// heartbeat that came, `local_time_us` included.
    #[test]
    fn a_kept_heartbeat_reads_back_as_it_came() {
        let h = hb();
        let peer = LastReport::keep(NodeRole::Peer, h.clone());
        let LastReport::Packed { bytes, .. } = &peer else {
            panic!("a peer's is packed");
        };
        assert!(bytes.len() < std::mem::size_of::<LinkReport>() * 10);
        assert_eq!(*peer.heartbeat(), h);
        assert_eq!(peer.local_time_us(), h.local_time_us);
        let relay = LastReport::keep(NodeRole::Relay, h.clone());
        assert!(matches!(relay, LastReport::Whole(_)));
        assert_eq!(*relay.heartbeat(), h);
        assert_eq!(relay.local_time_us(), h.local_time_us);
        let empty = Heartbeat::default();
        assert_eq!(
            *LastReport::keep(NodeRole::Peer, empty.clone()).heartbeat(),
            empty
        );
    }
}
