//! Forwarding strategies of the three-level hierarchy (D3, D4, D5): pure,
//! sans-IO building blocks the forwarding engine picks per level.
//!
//! - [`flood`] — flooding with duplicate elimination on a c-connected mesh (D3, top level).
//! - [`substream`] — substream `seq mod k` of the multi-tree, split and merge (D4, bottom level).
//! - [`erasure`] — Reed–Solomon `k+n` groups, any k rebuild a group; n from loss (D5, middle
//!   level), wired into forwarding by [`crate::middle`].

pub mod erasure;
pub mod flood;
pub mod substream;
