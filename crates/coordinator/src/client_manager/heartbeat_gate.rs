//! The client manager's gate for heartbeats (C1, C2, D8; issue 11): a heartbeat is
//! checked before any of its fields is used, and a refused one changes nothing
//! (it is only counted in `invalid_messages` and logged as `CoordEvent::Invalid`).
//!
//! Refused, from the coordinator's own books:
//! - it names another node than the link it came on, or its sender is not
//!   registered and alive;
//! - it reports a channel twice;
//! - a parent or child link names the sender itself, or a node this coordinator
//!   has no record of (never registered here: an invented id) — except while the
//!   coordinator is new (its first `heartbeat_timeout_ms`): a restarted
//!   coordinator learns the nodes from their registrations, which arrive in any
//!   order (D7), so during that window unknown ids are let through as before;
//! - a parent that cannot feed (a protocol viewer only receives) or a child that
//!   cannot be fed (an origin makes the blocks; it takes them from no one).
//!
//! Links to nodes the coordinator knows but did not assign there (a switch in
//! progress, a viewer redirected by a relay) are legitimate for a heartbeat or
//! two and are not refused; what each consumer keeps from them is bounded by the
//! overlay's own links (see `network_monitor::congestion`), by
//! `network_monitor::MAX_LINKS` or by `max_nodes`.

use crate::coordinator::Coordinator;
use tiercast_proto::{Heartbeat, NodeId, NodeRole, Timestamp};

/// Why a heartbeat was refused (the `why` of `CoordEvent::Invalid`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeartbeatFault {
    OtherNode,
    NotRegistered,
    ChannelTwice,
    NamesItself,
    UnknownNode,
    ParentCannotFeed,
    ChildCannotBeFed,
}

impl HeartbeatFault {
    pub fn why(self) -> &'static str {
        match self {
            HeartbeatFault::OtherNode => "node id does not match the link",
            HeartbeatFault::NotRegistered => "node not registered",
            HeartbeatFault::ChannelTwice => "a channel reported twice",
            HeartbeatFault::NamesItself => "a link names the sender itself",
            HeartbeatFault::UnknownNode => "a link names a node the coordinator does not know",
            HeartbeatFault::ParentCannotFeed => "a parent that is a viewer",
            HeartbeatFault::ChildCannotBeFed => "a child that is an origin",
        }
    }
}

impl Coordinator {
    /// `None` when `hb` may be used; reads only the coordinator's books.
    pub(crate) fn heartbeat_fault(
        &self,
        now: Timestamp,
        from: NodeId,
        hb: &Heartbeat,
    ) -> Option<HeartbeatFault> {
        if hb.node != from {
            return Some(HeartbeatFault::OtherNode);
        }
        if !self.registry.is_alive(from) {
            return Some(HeartbeatFault::NotRegistered);
        }
        let learning = now.saturating_since(self.started) < self.cfg.heartbeat_timeout_ms * 1000;
        if channel_twice(hb) {
            return Some(HeartbeatFault::ChannelTwice);
        }
        for c in &hb.channels {
            for (link, parent) in c
                .parents
                .iter()
                .map(|l| (l, true))
                .chain(c.children.iter().map(|l| (l, false)))
            {
                if link.peer == from {
                    return Some(HeartbeatFault::NamesItself);
                }
                let role = match self.registry.get(link.peer) {
                    Some(r) => r.role,
                    None if learning => continue,
                    None => return Some(HeartbeatFault::UnknownNode),
                };
                if parent && role == NodeRole::Viewer {
                    return Some(HeartbeatFault::ParentCannotFeed);
                }
                if !parent && role == NodeRole::Origin {
                    return Some(HeartbeatFault::ChildCannotBeFed);
                }
            }
        }
        None
    }
}

/// Channels compared in place up to this many (a peer reports one or two); beyond,
/// their ids are sorted once.
const SCAN_CHANNELS: usize = 8;

/// Whether `hb` reports a channel twice, without allocating for the usual few.
fn channel_twice(hb: &Heartbeat) -> bool {
    let cs = &hb.channels;
    if cs.len() <= SCAN_CHANNELS {
        return cs
            .iter()
            .enumerate()
            .any(|(i, c)| cs[..i].iter().any(|b| b.channel == c.channel));
    }
    let mut ids: Vec<_> = cs.iter().map(|c| c.channel).collect();
    ids.sort_unstable();
    ids.windows(2).any(|w| w[0] == w[1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use tiercast_proto::{ChannelId, ChannelReport};

    fn hb(channels: &[u32]) -> Heartbeat {
        Heartbeat {
            channels: channels
                .iter()
                .map(|c| ChannelReport {
                    channel: ChannelId(*c),
                    ..ChannelReport::default()
                })
                .collect(),
            ..Heartbeat::default()
        }
    }

    #[test]
    fn a_channel_twice_is_found_among_few_and_many() {
        assert!(!channel_twice(&hb(&[])));
        assert!(!channel_twice(&hb(&[1, 2, 3])));
        assert!(channel_twice(&hb(&[1, 2, 1])));
        let many: Vec<u32> = (0..40).collect();
        assert!(!channel_twice(&hb(&many)));
        let mut twice = many.clone();
        twice.push(17);
        assert!(channel_twice(&hb(&twice)));
    }
}
