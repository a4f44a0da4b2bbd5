//! tiercast wire protocol, shared by every role and by the simulator.
//!
//! Modules:
//! - [`ids`] — `NodeId`, `ChannelId`, `ViewerId`, `Tier`, `Region`.
//! - [`time`] — `Timestamp` (µs since an arbitrary epoch; 0 at simulator start).
//! - [`block`] — `Block`: `(channel, seq, origin timestamp, payload)`, keyframe flag (X1, V9).
//! - [`auth`] — origin signatures over blocks, checked by every node (X3);
//!   [`verify_memo`] — blocks already found genuine, shared by the nodes of one
//!   process (the simulator's).
//! - [`class`] — a node's declared class: premium, device class (one byte, C3).
//! - [`message`] — every message between nodes and the coordinator (V2–V5, V9, D8).
//! - [`feed`] — what a link carries: all, some substreams (D4), Have/Want only (D3),
//!   or some of the k+n erasure-coded substreams (D5).
//! - [`redundancy`] — the recovery shards n a cluster needs for its measured loss (D5).
//! - [`viewer_feed`] — an HTTP viewer's `feed=` and `delay=` (C3: audio-only, delayed).
//! - [`heartbeat`] — the D8 heartbeat report.
//! - [`ingest_health`] — the origin's ingest health report to the coordinator (X1).
//! - [`machine`] — the driving contract of every sans-IO machine: `Machine`
//!   (`handle_message`, `handle_timeout`, `poll_output`, `poll_timeout`), the one
//!   `Transmit` type, the documented input/output loop.
//! - [`codec`] — length-prefixed, versioned framing with size limits.
//! - [`smoothing`] — double exponential smoothing of login/logoff rates (V7), shared by
//!   the coordinator and the relays.
//!
//! Nothing here does I/O.

pub mod auth;
pub mod block;
pub mod class;
pub mod codec;
pub mod feed;
pub mod heartbeat;
pub mod ids;
pub mod ingest_health;
pub mod machine;
pub mod message;
pub mod redundancy;
pub mod smoothing;
pub mod time;
pub mod verify_memo;
pub mod viewer_feed;

pub use auth::{OriginKey, OriginVerifier};
pub use block::Block;
pub use class::{DeviceClass, NodeClass};
pub use codec::{decode_frame, encode_frame, CodecError, FrameDecoder, MAX_FRAME_BYTES};
pub use feed::{CodedSet, Feed, SubstreamSet, MAX_FEED_SUBSTREAMS, MAX_WANT_SEQS};
pub use heartbeat::{ChannelReport, Heartbeat, LinkReport};
pub use ids::{ChannelId, ClusterId, NodeId, Region, Tier, ViewerId};
pub use ingest_health::IngestReport;
pub use machine::{Machine, Output, Transmit};
pub use message::{
    ChannelDesc, DenyReason, Message, NodeRole, PeerFeed, PeerInfo, Placement, Register,
    COORDINATOR_ID, MAX_COORDINATORS, MAX_PUBLISH_KEYS, MAX_SET_PARENTS,
};
pub use smoothing::{DoubleSmoother, RateSmoother};
pub use time::Timestamp;
pub use verify_memo::VerifyMemo;
