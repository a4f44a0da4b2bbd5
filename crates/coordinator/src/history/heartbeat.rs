//! What two consecutive heartbeats of one node say about its history (issue 11
//! item 5): the uplink it achieved — the stream-rate share of each child link
//! whose last seq moved on, plus its local viewers — and, per parent link, whether
//! it stalled (the parent's seq stood still while the node's stream went on).
//! Pure functions of the two reports (the previous one as the registry keeps it,
//! [`LastReport`]); no state.

use crate::client_manager::last_report::{LastReport, ParentMark};
use tiercast_proto::{Heartbeat, NodeId};

/// Links scanned in place up to this many; beyond, sorted once and searched (a
/// relay may report thousands of parents: no quadratic scan per heartbeat).
const SCAN_LINKS: usize = 16;

/// The previous report's parent links, looked up by peer.
enum Parents<'a> {
    Few(&'a [ParentMark]),
    Sorted(Vec<(NodeId, Option<u64>)>),
}

impl<'a> Parents<'a> {
    fn new(links: &'a [ParentMark]) -> Self {
        if links.len() <= SCAN_LINKS {
            return Parents::Few(links);
        }
        let mut v: Vec<(NodeId, Option<u64>)> =
            links.iter().map(|l| (l.peer, l.last_seq())).collect();
        v.sort_by_key(|(p, _)| *p);
        Parents::Sorted(v)
    }

    /// `Some(last seq)` when the peer's link was reported (the first reported).
    fn get(&self, peer: NodeId) -> Option<Option<u64>> {
        match self {
            Parents::Few(l) => l.iter().find(|x| x.peer == peer).map(|x| x.last_seq()),
            Parents::Sorted(v) => {
                let i = v.partition_point(|(p, _)| *p < peer);
                v.get(i).filter(|(p, _)| *p == peer).map(|(_, s)| *s)
            }
        }
    }
}

/// A heartbeat read against the one before it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HeartbeatReading {
    /// Uplink achieved over the interval (kbit/s).
    pub achieved_kbps: f64,
    /// Per parent link present in both reports: stalled or not.
    pub parent_links: Vec<(NodeId, bool)>,
}

/// Reads `hb` against `prev` (the node's previous heartbeat), for a stream of
/// `stream_kbps`. `None` without a previous report to compare with.
pub fn read(
    prev: Option<&LastReport>,
    hb: &Heartbeat,
    stream_kbps: u32,
) -> Option<HeartbeatReading> {
    let mut parent_links = Vec::new();
    let achieved_kbps = read_into(prev, hb, stream_kbps, &mut parent_links)?;
    Some(HeartbeatReading {
        achieved_kbps,
        parent_links,
    })
}

/// [`read`] into a buffer the caller keeps between heartbeats: returns the
/// uplink achieved, and `parent_links` holds (cleared first) the parent links
/// present in both reports, stalled or not.
pub fn read_into(
    prev: Option<&LastReport>,
    hb: &Heartbeat,
    stream_kbps: u32,
    parent_links: &mut Vec<(NodeId, bool)>,
) -> Option<f64> {
    parent_links.clear();
    let prev = prev?;
    let rate = f64::from(stream_kbps);
    let mut achieved_kbps = 0.0;
    for c in &hb.channels {
        // Channels per node are few (at most 64).
        let Some(pc) = prev.channels.iter().find(|p| p.channel == c.channel) else {
            continue;
        };
        achieved_kbps += f64::from(c.local_viewers) * rate;
        for child in &c.children {
            let before = pc.child(child.peer).flatten();
            let moved = match (before, child.last_seq) {
                (Some(b), Some(a)) => a > b,
                _ => false,
            };
            if moved {
                achieved_kbps += child.feed.share() * rate;
            }
        }
        // The node's stream went on: its highest seq moved.
        let stream_moved = matches!((pc.last_seq, c.last_seq), (Some(b), Some(a)) if a > b);
        if !stream_moved {
            continue;
        }
        let before_parents = Parents::new(&pc.parents);
        for parent in &c.parents {
            let Some(before) = before_parents.get(parent.peer) else {
                continue;
            };
            if parent.feed.share() == 0.0 {
                continue; // lazy links push nothing: no stall to see
            }
            let stalled = match (before, parent.last_seq) {
                (Some(b), Some(a)) => a <= b,
                (_, None) => true,
                (None, Some(_)) => false,
            };
            parent_links.push((parent.peer, stalled));
        }
    }
    Some(achieved_kbps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tiercast_proto::{ChannelId, ChannelReport, Feed, LinkReport};

    fn link(peer: u32, last: u64) -> LinkReport {
        LinkReport {
            peer: NodeId(peer),
            last_seq: Some(last),
            feed: Feed::All,
            ..LinkReport::default()
        }
    }

    fn hb(last: u64, parents: Vec<LinkReport>, children: Vec<LinkReport>) -> Heartbeat {
        Heartbeat {
            node: NodeId(5),
            channels: vec![ChannelReport {
                channel: ChannelId(1),
                parents,
                children,
                last_seq: Some(last),
                ..ChannelReport::default()
            }],
            ..Heartbeat::default()
        }
    }

    #[test]
    fn many_children_are_looked_up_like_few() {
        let before: Vec<LinkReport> = (0..100).map(|i| link(1000 - i, 5)).collect();
        let after: Vec<LinkReport> = (0..100)
            .map(|i| link(1000 - i, 5 + (i % 2) as u64))
            .collect();
        let before = LastReport::of(&hb(1, vec![], before));
        let r = read(Some(&before), &hb(2, vec![], after), 10).unwrap();
        assert_eq!(r.achieved_kbps, 500.0, "50 of 100 children moved");
    }

    #[test]
    fn children_that_moved_count_as_uplink_and_a_still_parent_is_a_stall() {
        let a = hb(
            10,
            vec![link(1, 10), link(2, 10)],
            vec![link(7, 10), link(8, 10)],
        );
        let b = hb(
            20,
            vec![link(1, 20), link(2, 10)],
            vec![link(7, 20), link(8, 10)],
        );
        assert_eq!(read(None, &b, 2000), None);
        let r = read(Some(&LastReport::of(&a)), &b, 2000).unwrap();
        assert_eq!(r.achieved_kbps, 2000.0, "one child of two moved");
        assert_eq!(r.parent_links, vec![(NodeId(1), false), (NodeId(2), true)]);
        // The whole stream stood still: nobody's stall.
        let c = hb(20, vec![link(1, 20), link(2, 10)], vec![]);
        let b = LastReport::of(&b);
        assert!(read(Some(&b), &c, 2000).unwrap().parent_links.is_empty());
    }
}
