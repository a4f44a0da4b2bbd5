//! The routed verbs (C1; issue 11): the one interface through which the router
//! (`coordinator.rs`, and the client manager for a node it lost or a heartbeat
//! it let in) hands a message or a tick to the managers, whatever their strategy.
//! Both managers implement it — the relays' VAN manager (`van/verbs.rs`) and the
//! peer overlay (`peers/verbs.rs`) — and only these verbs reach into the manager
//! maps from outside a strategy's own folder.
//!
//! A verb takes the coordinator rather than `&mut self`: a strategy's decisions
//! still read the client manager's books, ask the policy store and the uplink
//! ledger, and send through the coordinator's outbox — by those parts' methods,
//! never by writing their fields. Managers are still one per channel and
//! strategy (not per (channel, region)), so a verb finds its channel's manager
//! by channel id.

use crate::coordinator::Coordinator;
use crate::manager::ChannelManager;
use crate::peers::PeerOverlay;
use tiercast_proto::{ChannelId, Heartbeat, NodeId, NodeRole, Timestamp};

/// The relays' managers, as the router names them.
pub(crate) type Van = ChannelManager;
/// The peer overlays, as the router names them.
pub(crate) type Peers = PeerOverlay;

/// What a relay's load report asks for (DISTRIBUTE V4, CONSOLIDATE V5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LoadAsk {
    Distribute,
    Consolidate,
}

/// The verbs every manager takes, whatever its strategy (see the module docs).
pub(crate) trait ManagerVerbs: super::ManagerView + Sized {
    /// `from` asks to watch `channel_name` (from `region`, for a viewer that
    /// names one).
    fn on_watch(
        co: &mut Coordinator,
        now: Timestamp,
        from: NodeId,
        channel_name: String,
        region: String,
    );

    /// `node` left `channel` (its LOGOFF), or every channel (`None`: it was
    /// presumed crashed or restarted; called after the client manager marked it).
    fn on_leave(co: &mut Coordinator, now: Timestamp, node: NodeId, channel: Option<ChannelId>);

    /// A heartbeat the client manager's gate let in (`heartbeat_gate.rs`).
    fn on_report(co: &mut Coordinator, now: Timestamp, from: NodeId, hb: &Heartbeat);

    /// `from` reports its link from `parent` in `channel` bad (V10, C2); false
    /// when the link is not this strategy's.
    fn on_link_downgrade(
        co: &mut Coordinator,
        now: Timestamp,
        from: NodeId,
        channel: ChannelId,
        parent: NodeId,
    ) -> bool;

    /// The periodic check (four times per heartbeat interval).
    fn on_tick(co: &mut Coordinator, now: Timestamp);

    /// `node` was registered (afresh or as a new incarnation) with `role`.
    fn on_registered(co: &mut Coordinator, now: Timestamp, node: NodeId, role: NodeRole);

    /// A load report of `from` in `channel`; false when this strategy takes none.
    fn on_load(
        co: &mut Coordinator,
        now: Timestamp,
        from: NodeId,
        channel: ChannelId,
        load: u32,
        ask: LoadAsk,
    ) -> bool;
}
