//! Forwarding strategies of the three-level hierarchy: pure, sans-IO building
//! blocks the forwarding engine uses.
//!
//! - [`erasure`] — Reed–Solomon `k+n` groups, any k rebuild a group; n from loss (D5, middle
//!   level), wired into forwarding by [`crate::middle`].
//!
//! Flooding on the top level's mesh (D3) is done by lazy links ([`crate::pull`]) and
//! substreams `seq mod k` (D4) by [`tiercast_proto::feed`]'s `Feed::Substreams`, so
//! no other strategy lives here.

pub mod erasure;
