//! The content directory (C1, seed 002): the channels the coordinator knows —
//! names, ids, origins and their keys — and where a channel is managed.
//!
//! - [`announce`] — channel announcement, origin identity and takeover,
//!   re-registration (X1, X3, D7).
//!
//! One manager per channel today (a `van::manager::ChannelManager` for its relays,
//! a `peers::PeerOverlay` for its peers); (channel, region) → manager is the seam
//! for managers split per region (C8, issue 12).

pub mod announce;
