//! Every message of the overlay, between nodes (LOGIN / LOGOFF / Redirect / blocks,
//! V3, V9) and between nodes and the coordinator (registration, heartbeats D8,
//! DISTRIBUTE V4, CONSOLIDATE V5, watch redirection V2, and the one way a node
//! is told its parents, relays and peers alike: a versioned full [`Message::ParentSet`]
//! (V2, V9, V10, C1, C4, C6). Addresses never appear in decisions: a [`PeerInfo`]
//! carries them only so the driver can dial a node it was told about. The
//! origin's ingest health goes to the coordinator as [`Message::IngestHealth`] (X1);
//! the publish keys kept in the coordinator's store go to the origin as
//! [`Message::PublishKeys`] (X1, X3).

use crate::block::Block;
use crate::class::NodeClass;
use crate::feed::Feed;
use crate::heartbeat::Heartbeat;
use crate::ids::{ChannelId, ClusterId, NodeId, Tier};
use crate::ingest_health::IngestReport;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The coordinator's node id on every link.
pub const COORDINATOR_ID: NodeId = NodeId(0);

/// What a node is. Relays and peers run the same node logic with different capabilities.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeRole {
    Origin,
    Relay,
    /// A protocol viewer: receives only.
    Viewer,
    /// A viewer's agent that plays locally and uploads to other peers with its
    /// spare uplink (D2-D4, C6).
    Peer,
}

/// How to reach a node: its id, its QUIC link address, its HTTP (viewer) address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    pub id: NodeId,
    pub addr: String,
    pub http_addr: String,
}

/// One parent of a peer and what it sends on the link.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerFeed {
    pub peer: PeerInfo,
    pub feed: Feed,
}

/// Most parents one [`Message::ParentSet`] may list; a longer set is refused.
pub const MAX_SET_PARENTS: usize = 128;

/// What a [`Message::ParentSet`] makes of the node besides its parents (C1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Placement {
    /// A relay active for the channel in a tier of the VAN, carrying it for its
    /// children. `activate`: (re)activated — it starts a new expansion phase and
    /// accepts children (V2, V4, V7's regrouping); otherwise only its parents
    /// change (V9, V10).
    Tier { tier: Tier, activate: bool },
    /// A member of the peer overlay — a peer, or a relay on its top mesh (a
    /// waypoint, D1): it wants the stream itself, so its links stay logged in
    /// without children (C4, C6).
    Member,
}

/// A channel as the coordinator describes it to nodes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelDesc {
    pub id: ChannelId,
    pub name: String,
    /// The origin's Ed25519 public key: blocks must verify against it.
    pub public_key: [u8; 32],
}

/// A node's registration with the coordinator (its place in the static overlay, V1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Register {
    pub role: NodeRole,
    pub tier: Tier,
    pub region: String,
    /// Most children (child nodes + viewers) the machine takes, over all channels (V8).
    pub capacity: u32,
    pub addr: String,
    pub http_addr: String,
    /// Upload a peer offers the overlay, kbit/s (0 for other roles).
    pub uplink_kbps: u32,
    /// The node's class (C3's provider and client rules), one byte: premium
    /// (served before free ones where a `premium_first` policy says so) and its
    /// device class (relaying and watching rules). Declared by the node (which
    /// the cluster key admits); signed viewer tokens are not built.
    pub class: NodeClass,
    /// Drawn once per process start: a Register with the id of a live node but
    /// another incarnation is that node restarted (its old state is dropped); the
    /// same incarnation again is a retry (answered `Registered` again).
    pub incarnation: u64,
    /// The logical id of the coordinator manager this node belongs to (D7,
    /// X7): with several coordinator processes on etcd, the process holding
    /// this id serves the node, and any other answers `ServedElsewhere` with
    /// the holder's address. 0 by default; one process alone serves every id.
    pub manager_id: u16,
}

/// Why a request was refused; every refusal carries one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DenyReason {
    /// The node is at its machine-wide capacity.
    Full,
    /// The node does not carry this channel (not activated for it).
    NotActive,
    /// No such channel is being broadcast.
    UnknownChannel,
    /// Every node of the entry tier is full and none can be activated.
    TierFull,
    /// The node id is already taken by another live node.
    DuplicateId,
    /// The channel is live from another origin that signs with another key
    /// (a second origin is refused while the first is alive).
    ChannelLive { origin: NodeId },
    /// The coordinator does not know this node (it restarted, or presumed the node
    /// crashed): register again.
    NotRegistered,
    /// The request is malformed or not allowed in this role.
    Invalid(String),
    /// The peers' uplinks cannot carry every peer and no relay has room: the peers
    /// with the least uplink are turned away (C6).
    Ejected,
    /// An operators' geo block refuses the channel in the viewer's region (C3,
    /// C4's reason; HTTP 451): `reason` is the policy's text for the viewer.
    GeoBlocked { reason: String },
    /// An operators' client rule refuses the channel to this device class or
    /// content category (C3; HTTP 403): `reason` says which.
    PolicyRefused { reason: String },
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DenyReason::Full => write!(f, "node is at capacity"),
            DenyReason::NotActive => write!(f, "node does not carry this channel"),
            DenyReason::UnknownChannel => write!(f, "unknown channel"),
            DenyReason::TierFull => write!(f, "every relay of the entry tier is full"),
            DenyReason::DuplicateId => write!(f, "node id already registered"),
            DenyReason::ChannelLive { origin } => write!(
                f,
                "the channel is live from origin {origin}, which signs with another key: \
                 stop it first, or start this origin with its key"
            ),
            DenyReason::NotRegistered => write!(f, "node not registered: register again"),
            DenyReason::Invalid(why) => write!(f, "invalid request: {why}"),
            DenyReason::Ejected => write!(
                f,
                "ejected: the peers' upload cannot carry every peer and no relay has room"
            ),
            DenyReason::GeoBlocked { reason } => write!(f, "not available here: {reason}"),
            DenyReason::PolicyRefused { reason } => write!(f, "refused by policy: {reason}"),
        }
    }
}

/// Most coordinator addresses a `Coordinators` message carries (and a node reads).
pub const MAX_COORDINATORS: usize = 16;
/// Most publish keys the coordinator keeps and sends for one channel (X3).
pub const MAX_PUBLISH_KEYS: usize = 64;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    // ---- node -> coordinator ----
    Register(Register),
    /// The origin starts a channel, or announces it again after a restart of its
    /// own or of the coordinator's (`channel`: the id it already holds, kept by a
    /// coordinator that does not know the channel).
    ///
    /// `backup`: the origin asks to be the channel's hot standby (D7, issue 12):
    /// it signs with the channel's key and takes the channel over when the
    /// coordinator promotes it (`Announced`); until then it is answered
    /// `StandbyAccepted` and feeds nobody.
    Announce {
        channel_name: String,
        public_key: [u8; 32],
        channel: Option<ChannelId>,
        backup: bool,
    },
    Heartbeat(Heartbeat),
    /// Load reached the max threshold (V4).
    Distribute {
        channel: ChannelId,
        load: u32,
    },
    /// Load fell below the min threshold while contracting (V5).
    Consolidate {
        channel: ChannelId,
        load: u32,
    },
    /// A parent link went bad (silent, or its connection died) (V10).
    LinkDowngrade {
        channel: ChannelId,
        parent: NodeId,
    },
    /// A protocol viewer asks where to watch a channel (V2).
    Watch {
        channel_name: String,
        region: String,
    },

    // ---- coordinator -> node ----
    Registered {
        heartbeat_interval_ms: u32,
    },
    RegisterDenied {
        reason: DenyReason,
    },
    /// The channel is the origin's: cut from `next_seq` on (the highest seq the
    /// coordinator heard of for it, plus one), so a restarted origin never reuses
    /// a seq the overlay still holds.
    Announced {
        channel: ChannelDesc,
        next_seq: u64,
    },
    AnnounceDenied {
        channel_name: String,
        reason: DenyReason,
    },
    /// The channel's description changed (a new origin key): verify blocks against it.
    ChannelUpdate {
        channel: ChannelDesc,
    },
    /// Every parent of the node for the channel, with what each pushes on its
    /// link (C1: the one way to tell a relay or a peer its parents; V2, V9, V10,
    /// C4, C6). Parents not listed are dropped once the listed ones that take
    /// over from them are connected (connect before disconnect). `version` grows
    /// with each set sent to this node for this channel since it registered: a
    /// node ignores a set not newer than the last it applied (and counts it as
    /// invalid). At most [`MAX_SET_PARENTS`] parents.
    ParentSet {
        channel: ChannelDesc,
        version: u64,
        placement: Placement,
        parents: Vec<PeerFeed>,
    },
    /// The coordinator accepted a CONSOLIDATE: move your viewers to `move_to` (V5).
    ConsolidateOrder {
        channel: ChannelId,
        move_to: PeerInfo,
    },
    WatchAt {
        channel: ChannelDesc,
        relay: PeerInfo,
    },
    WatchDenied {
        channel_name: String,
        reason: DenyReason,
        retry_after_ms: u32,
    },
    /// The service manager retired the channel (C1: no origin and no viewer for
    /// the coordinator's `channel_retire_after_ms`): log off its parents and
    /// forget it; a later announce of its name is a new channel.
    ChannelRetired {
        channel: ChannelId,
    },
    /// In answer to a heartbeat that names another cluster for the channel (C8,
    /// seed 002: "the clients can be informed in heartbeat message responses
    /// which DCMs to join"): the node's bottom cluster manager is now `cluster`
    /// (after a split or a merge, or its first placement); it reports it from
    /// its next heartbeat on. Its parents do not change with it.
    ClusterAssigned {
        channel: ChannelId,
        cluster: ClusterId,
    },

    // ---- node <-> node ----
    /// LOGIN (V3): send me this channel, starting at `from_seq` when you still have it.
    /// `feed` says which blocks are pushed on the link (D3, D4); a LOGIN from a
    /// child already logged in changes its feed.
    Login {
        channel: ChannelId,
        from_seq: Option<u64>,
        feed: Feed,
    },
    /// Parent to lazy child: the highest seq held (D3).
    Have {
        channel: ChannelId,
        highest: u64,
    },
    /// Child to parent: send these blocks from your buffer (at most [`crate::feed::MAX_WANT_SEQS`]).
    Want {
        channel: ChannelId,
        seqs: Vec<u64>,
    },
    LoginAccepted {
        channel: ChannelId,
    },
    LoginDenied {
        channel: ChannelId,
        reason: DenyReason,
    },
    /// LOGOFF (V3).
    Logoff {
        channel: ChannelId,
    },
    /// Parent to child: log in at `to` instead (consolidation, V5).
    Redirect {
        channel: ChannelDesc,
        to: PeerInfo,
    },
    /// Parent to child on a coded link (D5): recovery shard `index` (0..n) of
    /// group `group` (the blocks `group·k .. group·k+k−1`), Reed–Solomon over the
    /// blocks' coded form; any k of a group's k+n shards rebuild it.
    Shard {
        channel: ChannelId,
        group: u64,
        k: u8,
        n: u8,
        index: u8,
        data: Vec<u8>,
    },
    /// Parent to child, the answer to a `Want` it could not meet in full: these
    /// seqs were not sent — not held, or over the repair budget — so the child asks
    /// the next holder at its next round instead of waiting out its pull delay (D3).
    WantUnmet {
        channel: ChannelId,
        seqs: Vec<u64>,
    },
    /// Coordinator to node, from a coordinator process that does not serve this
    /// node's managers — a standby, or a leader whose lease ended — in answer to
    /// anything a node sends it (D7, X7): register at `leader` (its `host:port`)
    /// instead; `None`: no leader is known now, try the next coordinator
    /// address. Not an order: it carries no epoch and a node takes it whatever
    /// epoch it follows, since it changes nothing but where the node registers.
    ServedElsewhere {
        leader: Option<String>,
    },
    /// Coordinator to node, after `Registered` (X7): every coordinator process
    /// of the cluster (`host:port`, at most [`MAX_COORDINATORS`]), so a node
    /// given one address learns the others and can move on when its own stops
    /// answering. Not an order: it carries no epoch.
    Coordinators {
        addrs: Vec<String>,
    },
    /// Coordinator to a backup origin (D7, issue 12): you are the channel's
    /// standby; keep your ingest ready, feed nobody. An `Announced` later makes
    /// you its origin (the primary was lost); another `StandbyAccepted` while
    /// you are its origin hands the channel back to a returning primary.
    StandbyAccepted {
        channel: ChannelDesc,
    },
    /// Coordinator to a channel's origin (D7, issue 12): a tier-1 relay reported
    /// you silent; answer at once (a `Heartbeat`). Unanswered within the
    /// coordinator's `origin_probe_ms`, the origin is lost and the channel's
    /// standby promoted.
    Probe,
    /// Origin to coordinator (X1, issue 17): its channel's ingest health, every
    /// few seconds and at once when the encoder stalls or resumes. The last
    /// postcard-encoded variant, so every older one keeps its tag; it must stay
    /// before the `#[serde(skip)]` variants: serde numbers a variant by its
    /// place in the enum when it writes, but among the unskipped ones when it
    /// reads (after them it would be written 33 and read as 31).
    IngestHealth(IngestReport),
    /// Coordinator to a channel's origin and its standby (X1, X3, issue 17):
    /// the publish keys the operator keeps in the coordinator's store for
    /// `channel_name`, as SHA-256 digests of the keys (the store and the wire
    /// never hold a key itself), at most [`MAX_PUBLISH_KEYS`]; sent when the
    /// origin announces and whenever an operator sets them. An empty list
    /// takes the coordinator's keys away (the origin's own flags and file stay).
    /// Placed after `IngestHealth` and before the `#[serde(skip)]` variants, for
    /// the reason given there.
    PublishKeys {
        channel_name: String,
        digests: Vec<[u8; 32]>,
    },
    /// A media block; framed without postcard so the payload is never copied.
    #[serde(skip)]
    Block(Block),
    /// Coordinator to node: `order` (any coordinator → node message above) as
    /// the coordinator of `epoch` decided it (D7, X7: the fencing token of the
    /// process serving the managers — it grows with every restart or takeover).
    /// A node follows the highest epoch it has heard and ignores an order from
    /// an older one, so a coordinator that lost its place cannot fight its
    /// successor. Framed by the codec as a kind of its own (never nested: the
    /// inner message is plain postcard, in which neither an order nor a block
    /// can be written).
    #[serde(skip)]
    Order {
        epoch: u64,
        order: Box<Message>,
    },
}

impl Message {
    /// A short name for logs and counters.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Register(_) => "register",
            Message::Announce { .. } => "announce",
            Message::Heartbeat(_) => "heartbeat",
            Message::Distribute { .. } => "distribute",
            Message::Consolidate { .. } => "consolidate",
            Message::LinkDowngrade { .. } => "link_downgrade",
            Message::Watch { .. } => "watch",
            Message::Registered { .. } => "registered",
            Message::Coordinators { .. } => "coordinators",
            Message::RegisterDenied { .. } => "register_denied",
            Message::Announced { .. } => "announced",
            Message::AnnounceDenied { .. } => "announce_denied",
            Message::StandbyAccepted { .. } => "standby_accepted",
            Message::Probe => "probe",
            Message::ChannelUpdate { .. } => "channel_update",
            Message::ParentSet { .. } => "parent_set",
            Message::ConsolidateOrder { .. } => "consolidate_order",
            Message::WatchAt { .. } => "watch_at",
            Message::WatchDenied { .. } => "watch_denied",
            Message::ChannelRetired { .. } => "channel_retired",
            Message::ClusterAssigned { .. } => "cluster_assigned",
            Message::Login { .. } => "login",
            Message::LoginAccepted { .. } => "login_accepted",
            Message::LoginDenied { .. } => "login_denied",
            Message::Logoff { .. } => "logoff",
            Message::Redirect { .. } => "redirect",
            Message::Have { .. } => "have",
            Message::Want { .. } => "want",
            Message::WantUnmet { .. } => "want_unmet",
            Message::Shard { .. } => "shard",
            Message::ServedElsewhere { .. } => "served_elsewhere",
            Message::Block(_) => "block",
            Message::Order { .. } => "order",
            Message::IngestHealth(_) => "ingest_health",
            Message::PublishKeys { .. } => "publish_keys",
        }
    }

    /// Every peer address this message tells about, for the driver's address book.
    pub fn peer_infos(&self) -> Vec<&PeerInfo> {
        match self {
            Message::ParentSet { parents, .. } => parents.iter().map(|p| &p.peer).collect(),
            Message::ConsolidateOrder { move_to, .. } => vec![move_to],
            Message::WatchAt { relay, .. } => vec![relay],
            Message::Redirect { to, .. } => vec![to],
            Message::Order { order, .. } => order.peer_infos(),
            _ => Vec::new(),
        }
    }

    pub fn is_block(&self) -> bool {
        matches!(self, Message::Block(_))
    }

    /// Media (a block or a recovery shard): may be dropped for a full queue, counts
    /// as media bytes.
    pub fn is_media(&self) -> bool {
        matches!(self, Message::Block(_) | Message::Shard { .. })
    }
}
