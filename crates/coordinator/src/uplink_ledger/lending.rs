//! Lending between the channels of one node (C9; V8's "bandwidth enforced
//! machine-wide"): the rule that turns each channel's static share of a node's
//! uplink (its *base*, ⌊U·rᶜ/Σr⌋) into the share it may book now (its
//! *effective* share), from what each channel uses there.
//!
//! - A channel whose use plus a reserve stays under its base is a **lender**:
//!   it keeps its use plus the reserve, and lends the rest. Its share moves only
//!   when its want leaves a band — up at once when it needs more (it *takes
//!   back*, never beyond its base), down when it holds more than two reserves
//!   above its use — so a borrower is not shrunk and grown at every check.
//! - Every other channel (near or past its base, short of uplink — its
//!   manager turning viewers away —, or not measured yet: a channel that just
//!   joined claims its whole base) is a **borrower**: it gets
//!   its base plus the lenders' spare, split by weight (floored).
//! - With no borrower nothing is lent (every share is its base): a channel
//!   gives up uplink only when another one can use it.
//!
//! Booked once: a lender's share is at most its base and the borrowers split at
//! most the lenders' spare, so the shares never add up to more than the bases,
//! hence never more than the declared uplink. A channel always gets at least
//! `min(base, use + reserve)`: what it needs is never lent away.
//!
//! The reserve: `max(one stream at the channel's rate, base / 4)` — room for
//! the children that arrive between two checks (a quarter of the heartbeat
//! interval), so a lender rarely has to turn one away before it takes back.

use std::collections::BTreeMap;
use tiercast_proto::ChannelId;

/// A lender keeps `base / RESERVE_DIVISOR` (at least one stream) above its use.
pub const RESERVE_DIVISOR: u64 = 4;

/// One channel's state in the rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Claim {
    /// Its weight in the split (its stream rate, bps; at least 1).
    pub weight: u64,
    /// Its static share.
    pub base_bps: u64,
    /// What it used at the last check (bps; `u64::MAX`: it wants all it can
    /// get, e.g. its manager turns viewers away); `None` until measured.
    pub need_bps: Option<u64>,
    /// Its share until now.
    pub effective_bps: u64,
}

/// The uplink a lender keeps free above its use.
pub(super) fn reserve(c: &Claim) -> u64 {
    c.weight.max(c.base_bps / RESERVE_DIVISOR)
}

/// What a lender keeps: `Some(share)` when `c` lends (its use plus the reserve
/// is under its base), the share kept within the band `[want, want + reserve]`.
fn lender_share(c: &Claim) -> Option<u64> {
    let need = c.need_bps?;
    let r = reserve(c);
    let want = need.saturating_add(r);
    if want >= c.base_bps {
        return None;
    }
    let before = c.effective_bps.min(c.base_bps);
    let moves = want > before || before > want.saturating_add(r);
    Some(if moves { want } else { before })
}

/// Every claim's effective share under the rule (`lending` off: the bases).
pub(super) fn lend_out(claims: &mut super::claims::Claims, lending: bool) {
    let kept: BTreeMap<ChannelId, u64> = if lending && claims.len() > 1 {
        claims
            .iter()
            .filter_map(|(ch, c)| Some((*ch, lender_share(c)?)))
            .collect()
    } else {
        BTreeMap::new()
    };
    let borrowers: u128 = claims
        .iter()
        .filter(|(ch, _)| !kept.contains_key(ch))
        .map(|(_, c)| u128::from(c.weight))
        .sum();
    if kept.is_empty() || borrowers == 0 {
        for c in claims.values_mut() {
            c.effective_bps = c.base_bps;
        }
        return;
    }
    let spare: u128 = kept
        .iter()
        .map(|(ch, share)| u128::from(claims[ch].base_bps - share))
        .sum();
    for (ch, c) in claims.iter_mut() {
        c.effective_bps = match kept.get(ch) {
            Some(share) => *share,
            None => {
                let loan = spare * u128::from(c.weight) / borrowers;
                let loan = u64::try_from(loan).expect("a loan is at most the spare");
                c.base_bps + loan
            }
        };
    }
}
