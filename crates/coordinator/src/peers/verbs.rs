//! The peer overlay behind the routed verbs (C1; D1–D7, C2, C4, C6, C7): what
//! the router hands it ([`ManagerVerbs`]) — a peer's watch (refused by a geo
//! block or a client rule, C3/C4, else a join, C6), a peer's LOGOFF or a lost
//! node's leave, a heartbeat's report (fed or not, shard loss D5, congested
//! links C2, a peer back from a cut taken back D7), a LinkDowngrade, and the
//! tick (retries, top and middle reviews D1/D5/D6, full recomputation C7).
//! The verbs' bodies are in [`super::coordinator`] and [`super::rejoin`].

use super::overlay::PeerOverlay;
use crate::coordinator::Coordinator;
use crate::service_manager::verbs::{LoadAsk, ManagerVerbs};
use tiercast_proto::{ChannelId, Heartbeat, NodeId, NodeRole, Timestamp};

impl ManagerVerbs for PeerOverlay {
    fn on_watch(
        co: &mut Coordinator,
        now: Timestamp,
        from: NodeId,
        channel_name: String,
        _region: String,
    ) {
        // The router asked the policy rules first (refusals, servers or peers).
        co.on_peer_watch(now, from, channel_name);
    }

    fn on_leave(co: &mut Coordinator, now: Timestamp, node: NodeId, channel: Option<ChannelId>) {
        // A LOGOFF is always answered (its sent log is forgotten); a node lost
        // matters only once some channel has an overlay.
        if channel.is_some() || co.has_peer_overlays() {
            co.peer_left(now, node, channel);
        }
    }

    fn on_report(co: &mut Coordinator, now: Timestamp, from: NodeId, hb: &Heartbeat) {
        // A restarted coordinator: the overlay its peers still report (D7).
        co.peers_restore(now, from, hb);
        if co.has_peer_overlays() {
            co.peer_heartbeat(now, hb);
            co.peers_reported(now, from, hb);
            co.tell_clusters(hb);
        }
    }

    fn on_link_downgrade(
        co: &mut Coordinator,
        now: Timestamp,
        from: NodeId,
        channel: ChannelId,
        parent: NodeId,
    ) -> bool {
        co.peer_link_bad(now, from, channel, parent)
    }

    fn on_tick(co: &mut Coordinator, now: Timestamp) {
        co.peers_tick(now);
    }

    /// Nothing: an overlay takes the tier-1 relays alive when the service
    /// manager creates it; a relay registered later is not added.
    fn on_registered(_co: &mut Coordinator, _now: Timestamp, _node: NodeId, _role: NodeRole) {}

    /// Peers send no load reports: the overlay books their uplinks itself.
    fn on_load(
        _co: &mut Coordinator,
        _now: Timestamp,
        _from: NodeId,
        _channel: ChannelId,
        _load: u32,
        _ask: LoadAsk,
    ) -> bool {
        false
    }
}
