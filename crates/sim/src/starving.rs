//! "Starving" means not fed (X5, X6; issue 10). In blocks mode a watching viewer (or
//! peer) is *served* when it stored a new block within the last
//! [`STARVING_AFTER_MS`] while the stream is live (the origin cut a block within
//! that time) — whoever sent it, over whatever link, pulled or rebuilt; *joining*
//! while it has not started and is within its startup grace; *starving* otherwise.
//! While the stream is not live (no block cut lately: the origin is gone) nobody can
//! be fed, and the path walk decides as in rate mode. In rate mode the walk's share
//! *is* what a viewer receives: served when it is above zero.

use crate::viewer::{ViewerStats, NONE};

/// A viewer that stored no new block for longer than this is not fed.
pub const STARVING_AFTER_MS: u64 = 2000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fed {
    Served,
    Joining,
    Starving,
}

/// Classifies one watching viewer at `now`. `live_blocks`: blocks mode and the
/// stream is live; `share`: what the path walk found.
pub(crate) fn classify(
    v: &ViewerStats,
    now: u64,
    grace_us: u64,
    live_blocks: bool,
    share: f64,
) -> Fed {
    let fed = if live_blocks {
        v.last_new_at != NONE && now.saturating_sub(v.last_new_at) <= STARVING_AFTER_MS * 1000
    } else {
        share > 0.0
    };
    if fed {
        Fed::Served
    } else if v.first_at == NONE && now < v.watch_at + grace_us {
        Fed::Joining
    } else {
        Fed::Starving
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fed_is_a_new_block_lately_not_a_path() {
        let mut v = ViewerStats::new(0, 0);
        assert_eq!(classify(&v, 1_000_000, 5_000_000, true, 1.0), Fed::Joining);
        assert_eq!(classify(&v, 6_000_000, 5_000_000, true, 1.0), Fed::Starving);
        v.first_at = 500_000;
        v.last_new_at = 5_000_000;
        // Fed although the walk finds no path (pulled, rebuilt, a lazy link).
        assert_eq!(classify(&v, 6_000_000, 5_000_000, true, 0.0), Fed::Served);
        // A path but nothing new for 3 s: starving.
        assert_eq!(classify(&v, 8_000_000, 5_000_000, true, 1.0), Fed::Starving);
        // Rate mode, or no live stream: the walk decides.
        assert_eq!(classify(&v, 8_000_000, 5_000_000, false, 0.5), Fed::Served);
        assert_eq!(
            classify(&v, 8_000_000, 5_000_000, false, 0.0),
            Fed::Starving
        );
    }
}
