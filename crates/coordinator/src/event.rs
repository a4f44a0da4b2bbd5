//! Everything the coordinator decides is an event it can log and a dashboard can show.

use tiercast_proto::{ChannelId, DenyReason, NodeId, NodeRole, Tier};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CoordEvent {
    NodeRegistered {
        node: NodeId,
        role: NodeRole,
        tier: Tier,
    },
    ChannelStarted {
        channel: ChannelId,
        name: String,
        origin: NodeId,
    },
    /// The service manager retired the channel's managers (C1): it had no
    /// origin and no viewer for `channel_retire_after_ms`. Its name is free; an
    /// announce of it starts a new channel. `relays` were active in its VAN,
    /// `members` in its peer overlay (origin and waypoints included).
    /// C8: the service manager split a bottom cluster of the channel's peer
    /// overlay or merged two; `members_moved` were re-labelled (their links stay).
    ClustersChanged {
        channel: ChannelId,
        change: crate::content_directory::clusters::ClusterChange,
        members_moved: u64,
    },
    ChannelRetired {
        channel: ChannelId,
        name: String,
        relays: usize,
        members: usize,
    },
    /// Another origin took the channel over (the old one restarted or is gone);
    /// `key_changed`: the nodes carrying it were sent the new key.
    OriginReplaced {
        channel: ChannelId,
        old: NodeId,
        new: NodeId,
        key_changed: bool,
    },
    /// The channel's origin reported its encoder stalled: no input for the
    /// origin's stall threshold while a publisher is connected (X1, issue 17).
    EncoderStalled {
        channel: ChannelId,
        origin: NodeId,
    },
    /// The channel's origin reported input again after a stall (X1, issue 17).
    EncoderResumed {
        channel: ChannelId,
        origin: NodeId,
    },
    /// The stalled encoder's connection ended (no publisher now) (X1, issue 17).
    EncoderLeft {
        channel: ChannelId,
        origin: NodeId,
    },
    /// An operator set a channel's publish keys (`keys` in force; 0: taken
    /// away) (X1, X3, issue 17).
    PublishKeysSet {
        channel_name: String,
        keys: usize,
    },
    /// A second origin for a live channel was refused.
    AnnounceDenied {
        channel_name: String,
        from: NodeId,
        reason: DenyReason,
    },
    Activated {
        channel: ChannelId,
        node: NodeId,
        tier: Tier,
        parents: Vec<NodeId>,
    },
    DistributeRequested {
        channel: ChannelId,
        node: NodeId,
        load: u32,
    },
    /// DISTRIBUTE found no idle relay to activate in the tier.
    DistributeUnmet {
        channel: ChannelId,
        tier: Tier,
    },
    Consolidated {
        channel: ChannelId,
        node: NodeId,
        moved_to: NodeId,
    },
    ConsolidateIgnored {
        channel: ChannelId,
        node: NodeId,
        why: &'static str,
    },
    /// V6: relays activated together by one DISTRIBUTE form a server farm; viewers
    /// go to its members round-robin.
    FarmActivated {
        channel: ChannelId,
        tier: Tier,
        nodes: Vec<NodeId>,
    },
    /// V6: a member's DISTRIBUTE counted for its whole farm: every member contracts.
    FarmContracting {
        channel: ChannelId,
        tier: Tier,
        nodes: Vec<NodeId>,
    },
    /// V6: a DISTRIBUTE from a member of a farm that already asked (nothing to do).
    DistributeAbsorbed {
        channel: ChannelId,
        node: NodeId,
    },
    /// V7: the load predicted for the next `sp` exceeds the tier's room: `add`
    /// relays are activated.
    PredictedDistribute {
        channel: ChannelId,
        tier: Tier,
        predicted: u32,
        room: u32,
        add: usize,
    },
    /// V7: the tier's room covers `sp`: these existing relays (MIN_s ≤ l) became the
    /// entry group instead of activating one.
    Regrouped {
        channel: ChannelId,
        tier: Tier,
        nodes: Vec<NodeId>,
    },
    Reassigned {
        channel: ChannelId,
        node: NodeId,
        added: Vec<NodeId>,
        removed: Vec<NodeId>,
    },
    Redirected {
        channel: ChannelId,
        to: NodeId,
    },
    /// No relay had room for a full-feed viewer; an `audio_fallback` rule sent it
    /// to `to`'s audio-only feed (C3).
    AudioFallback {
        channel: ChannelId,
        to: NodeId,
    },
    Denied {
        channel_name: String,
        reason: DenyReason,
    },
    NodeTimedOut {
        node: NodeId,
    },
    /// An active relay that fed nobody for a while was made idle (V5).
    Idled {
        channel: ChannelId,
        node: NodeId,
    },
    /// A relay reported a bad link to a parent (V10).
    LinkDowngraded {
        channel: ChannelId,
        node: NodeId,
        parent: NodeId,
    },
    /// A relay's children were moved to a sibling and it left the VAN (V10).
    Migrated {
        channel: ChannelId,
        node: NodeId,
        to: NodeId,
    },
    /// A peer the coordinator had lost was taken back with the links it reports.
    PeerAdopted {
        channel: ChannelId,
        peer: NodeId,
    },
    /// A peer joined a channel's overlay (D2).
    PeerJoined {
        channel: ChannelId,
        peer: NodeId,
    },
    /// A member left a channel's overlay (LOGOFF or crash) (C6).
    PeerLeft {
        channel: ChannelId,
        peer: NodeId,
    },
    /// The overlay cannot carry this peer (C6): it left the overlay.
    PeerEjected {
        channel: ChannelId,
        peer: NodeId,
    },
    /// An ejected peer asked again and still cannot be carried: told to retry
    /// after `retry_after_ms`, which doubles with every refusal (C6).
    PeerTurnedAway {
        channel: ChannelId,
        peer: NodeId,
        retry_after_ms: u32,
    },
    /// A peer that asked to watch was sent to a relay, not into the peer
    /// overlay, because the policies in force prefer servers (C3's
    /// `prefer_source` or a `traffic_budget`; `rule` names the one that decided).
    PlacedOnServers {
        channel: ChannelId,
        peer: NodeId,
        relay: NodeId,
        rule: String,
    },
    /// The servers-or-peers rule in force for `class` of `channel` changed (a
    /// policy install, a traffic budget crossing its threshold): `affected`
    /// peers placed before it no longer match and are moved, a few per
    /// heartbeat interval (`policy/source_switch.rs`). `rule` is "" when no
    /// rule is left (the peers).
    SourceSwitched {
        channel: ChannelId,
        class: crate::policy::ViewerClass,
        source: crate::policy::Source,
        rule: String,
        affected: u32,
    },
    /// A peer already placed was moved by such a switch: `to` servers, from the
    /// overlay to `relay`; `to` peers, from `relay` into the overlay.
    SourceMoved {
        channel: ChannelId,
        peer: NodeId,
        relay: NodeId,
        to: crate::policy::Source,
        rule: String,
    },
    /// Full recomputation of a channel's overlay (C7).
    PeersRecomputed {
        channel: ChannelId,
        ejected: u32,
    },
    /// A viewer was refused by a geo block (C3, C4's reason): the rule and what
    /// it was told.
    GeoBlocked {
        channel_name: String,
        region: String,
        rule: String,
        reason: String,
    },
    /// A viewer was refused by a client rule (C3: its device class, or a
    /// content category refused to its class or region): the rule and the reason.
    WatchRefused {
        channel_name: String,
        region: String,
        device_class: String,
        rule: String,
        reason: String,
    },
    /// An operators' policy file was installed (C3): `rules` are in force.
    PoliciesInstalled {
        rules: usize,
    },
    /// A policy file was refused (C3): the running policies stay.
    PoliciesRefused {
        line: usize,
        reason: String,
    },
    Invalid {
        from: NodeId,
        kind: &'static str,
        why: &'static str,
    },
    /// A node reported following `epoch`, newer than this coordinator's: a
    /// successor holds the managers (D7, X7). Sent once per newer epoch; from
    /// then on this coordinator orders nothing (`Coordinator::superseded_by`).
    Superseded {
        epoch: u64,
        reported_by: NodeId,
    },
}
