//! Parent links of one channel (V9, the ProxyParent table of V3): each parent is
//! assigned (known, not logged in), connecting (LOGIN sent), connected (LOGIN
//! accepted) or disconnecting. A switch adds the new parent with the list of
//! parents it replaces — only those whose substreams it takes over — and those are
//! dropped once every link taking over from them is connected (connect before
//! disconnect, V9, C7), or after [`REPLACE_TIMEOUT_MS`] if one never is.
//! A dropped parent's blocks still in flight are taken for [`RETIRED_GRACE_MS`]
//! (they left its uplink before our LOGOFF reached it).

use std::collections::BTreeMap;
use tiercast_proto::{Feed, NodeId, PeerInfo, Timestamp};

/// A replaced parent is dropped this long after the switch even if the new one
/// never connected (it refused or died: the coordinator re-homes).
pub const REPLACE_TIMEOUT_MS: u64 = 4_000;
/// Blocks from a parent dropped this recently are still taken.
pub const RETIRED_GRACE_MS: u64 = 3_000;
/// Dropped parents remembered for the grace (oldest forgotten first).
const RETIRED_MAX: usize = 16;

/// Whether two feeds push a common substream (seq mod k for k ≤ 64).
pub fn feeds_overlap(a: Feed, b: Feed) -> bool {
    (0..64u64).any(|s| a.pushes(s) && b.pushes(s))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParentState {
    Assigned,
    Connecting,
    Connected,
    Disconnecting,
}

#[derive(Clone, Debug)]
pub struct ParentLink {
    pub info: PeerInfo,
    pub state: ParentState,
    pub last_seq: Option<u64>,
    pub last_block_at: Option<Timestamp>,
    pub blocks: u64,
    /// Parents to drop once this one is connected (connect before disconnect).
    pub replaces: Vec<NodeId>,
    /// When `replaces` was set (dropped anyway after [`REPLACE_TIMEOUT_MS`]).
    pub replacing_since: Option<Timestamp>,
    /// Reported to the coordinator as downgraded (V10); cleared when it delivers again.
    pub downgraded: bool,
    /// When the parent accepted our LOGIN.
    pub connected_at: Option<Timestamp>,
    /// What the parent pushes on this link (D3, D4).
    pub feed: Feed,
    /// When its LOGIN was sent (connecting; cleared on every other change of
    /// state): a LOGIN lost in a partition is sent again rather than waited for
    /// forever ([`crate::monitor`]).
    pub connecting_seen: Option<Timestamp>,
    /// LOGINs refused in a row (reset when one is accepted), and when the next
    /// may go: a refused child backs off ([`LOGIN_BACKOFF_MAX`]).
    pub denied: u32,
    pub retry_at: Option<Timestamp>,
    /// Blocks from this parent that failed the origin signature check in a
    /// row (reset by a genuine one): at [`FORGED_RUN_REPORTED`] the parent is
    /// reported as bad (X3, V10).
    pub forged_run: u32,
}

/// Forged blocks in a row after which a parent is reported to the
/// coordinator (`LinkDowngrade`), whatever the other parents deliver: a liar
/// whose children have no honest parent would otherwise never be reported —
/// a stream that nobody delivers reads as stalled. A few old-key blocks in
/// flight after a key change stay under it.
pub const FORGED_RUN_REPORTED: u32 = 8;

/// A LOGIN refused because the parent is full is sent again after 1, 2, 4,
/// then every 8 heartbeat intervals (asked every interval, a tight
/// population's refused children asked hundreds of times a second in all; the
/// coordinator, told of the refusal, finds another parent). A parent that does
/// not carry the channel (yet) is asked again at the next interval: backing off
/// from those too, a healed region's peers came back later (partition under
/// peers, seed 40: 0.9971 → 0.9949 after the heal).
pub const LOGIN_BACKOFF_MAX: u32 = 8;

#[derive(Clone, Debug, Default)]
pub struct Parents {
    links: BTreeMap<NodeId, ParentLink>,
    /// Parents dropped lately, and when (their blocks in flight are still taken).
    retired: Vec<(NodeId, Timestamp)>,
}

impl Parents {
    pub fn assign(&mut self, info: PeerInfo) {
        self.links
            .entry(info.id)
            .and_modify(|l| l.info = info.clone())
            .or_insert(ParentLink {
                info,
                state: ParentState::Assigned,
                last_seq: None,
                last_block_at: None,
                blocks: 0,
                replaces: Vec::new(),
                replacing_since: None,
                downgraded: false,
                connected_at: None,
                feed: Feed::All,
                connecting_seen: None,
                denied: 0,
                retry_at: None,
                forged_run: 0,
            });
    }

    /// Assigns `info` with a feed; returns whether the feed changed on a known link.
    pub fn assign_feed(&mut self, info: PeerInfo, feed: Feed) -> bool {
        let id = info.id;
        let known = self.links.contains_key(&id);
        self.assign(info);
        let link = self.links.get_mut(&id).expect("just assigned");
        let changed = known && link.feed != feed;
        link.feed = feed;
        changed
    }

    pub fn get(&self, id: NodeId) -> Option<&ParentLink> {
        self.links.get(&id)
    }

    pub fn get_mut(&mut self, id: NodeId) -> Option<&mut ParentLink> {
        self.links.get_mut(&id)
    }

    pub fn remove(&mut self, id: NodeId) -> Option<ParentLink> {
        self.links.remove(&id)
    }

    pub fn contains(&self, id: NodeId) -> bool {
        self.links.contains_key(&id)
    }

    pub fn ids(&self) -> Vec<NodeId> {
        self.links.keys().copied().collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&NodeId, &ParentLink)> {
        self.links.iter()
    }

    pub fn len(&self) -> usize {
        self.links.len()
    }

    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// Parents in a given state.
    /// `id` refused our LOGIN at `now`: back to assigned; when it is `full`,
    /// asked again after the backoff (`interval_ms` doubled per refusal in a
    /// row, at most [`LOGIN_BACKOFF_MAX`] intervals).
    pub fn denied(&mut self, id: NodeId, now: Timestamp, interval_ms: u64, full: bool) {
        if let Some(l) = self.links.get_mut(&id) {
            l.state = ParentState::Assigned;
            if !full {
                l.retry_at = None;
                return;
            }
            l.denied = l.denied.saturating_add(1);
            let factor = 1u64 << (l.denied - 1).min(LOGIN_BACKOFF_MAX.ilog2());
            l.retry_at = Some(now.plus_millis(interval_ms.saturating_mul(factor)));
        }
    }

    /// Assigned parents whose LOGIN may go now (not backing off).
    pub fn to_log_in(&self, now: Timestamp) -> Vec<NodeId> {
        self.links
            .iter()
            .filter(|(_, l)| l.state == ParentState::Assigned)
            .filter(|(_, l)| l.retry_at.is_none_or(|t| now >= t))
            .map(|(id, _)| *id)
            .collect()
    }

    pub fn in_state(&self, state: ParentState) -> Vec<NodeId> {
        self.links
            .iter()
            .filter(|(_, l)| l.state == state)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Parents whose LOGIN has waited `after_us` or more for an answer (a link
    /// set connecting without a send time starts its clock now).
    pub fn logins_unanswered(&mut self, now: Timestamp, after_us: u64) -> Vec<NodeId> {
        let mut out = Vec::new();
        for (id, l) in self.links.iter_mut() {
            if l.state != ParentState::Connecting {
                continue;
            }
            let since = *l.connecting_seen.get_or_insert(now);
            if now.saturating_since(since) >= after_us {
                out.push(*id);
            }
        }
        out
    }

    pub fn set_state(&mut self, id: NodeId, state: ParentState) {
        if let Some(l) = self.links.get_mut(&id) {
            l.state = state;
            l.connecting_seen = None;
        }
    }

    /// A LOGIN is sent to `id` now: connecting, and when (unanswered for long, it is
    /// sent again, [`crate::monitor`]).
    pub fn logging_in(&mut self, id: NodeId, now: Timestamp) {
        if let Some(l) = self.links.get_mut(&id) {
            l.state = ParentState::Connecting;
            l.connecting_seen = Some(now);
        }
    }

    /// Marks `id` connected; returns the parents it replaces that no other new
    /// link still waits for, now to be dropped.
    pub fn connected(&mut self, id: NodeId, now: Timestamp) -> Vec<NodeId> {
        let Some(l) = self.links.get_mut(&id) else {
            return Vec::new();
        };
        l.state = ParentState::Connected;
        l.connecting_seen = None;
        l.denied = 0;
        l.retry_at = None;
        l.connected_at = Some(now);
        l.replacing_since = None;
        let replaced = std::mem::take(&mut l.replaces);
        replaced
            .into_iter()
            .filter(|r| *r != id && self.links.contains_key(r))
            .filter(|r| !self.links.values().any(|o| o.replaces.contains(r)))
            .collect()
    }

    /// `id` is to replace `old` (dropped once `id` is connected, or after the timeout).
    pub fn set_replaces(&mut self, id: NodeId, old: Vec<NodeId>, now: Timestamp) {
        if let Some(l) = self.links.get_mut(&id) {
            l.replacing_since = (!old.is_empty()).then_some(now);
            l.replaces = old;
        }
    }

    /// Replacements that have waited past the timeout: the parents they replace,
    /// now to be dropped — and any parent left disconnecting with no link taking
    /// over from it any more (its replacement was itself dropped): nothing would
    /// ever end it, and it would push to us unbooked for good. It goes when a
    /// connected parent pushes every substream it does; when it alone still
    /// brings one, it stays, connected again (the coordinator may not know us —
    /// it restarted — and would never give that substream to another).
    pub fn overdue(&mut self, now: Timestamp) -> Vec<NodeId> {
        let orphans: Vec<NodeId> = self
            .links
            .iter()
            .filter(|(id, l)| {
                l.state == ParentState::Disconnecting
                    && !self.links.values().any(|o| o.replaces.contains(id))
            })
            .map(|(id, _)| *id)
            .collect();
        let mut out = Vec::new();
        for r in orphans {
            let feed = self.links[&r].feed;
            let covered = (0..64u64).filter(|s| feed.pushes(*s)).all(|s| {
                self.links.iter().any(|(id, l)| {
                    *id != r
                        && l.state == ParentState::Connected
                        && l.feed != Feed::Lazy
                        && l.feed.pushes(s)
                })
            });
            if covered {
                out.push(r);
            } else if let Some(l) = self.links.get_mut(&r) {
                l.state = ParentState::Connected;
            }
        }
        for l in self.links.values_mut() {
            if l.replacing_since
                .is_some_and(|t| now.saturating_since(t) >= REPLACE_TIMEOUT_MS * 1000)
            {
                l.replacing_since = None;
                out.append(&mut l.replaces);
            }
        }
        out.sort();
        out.dedup();
        out.retain(|r| {
            self.links.contains_key(r) && !self.links.values().any(|o| o.replaces.contains(r))
        });
        out
    }

    /// `id` is a parent again (listed anew): no link waits to replace it any more.
    pub fn keep(&mut self, id: NodeId) {
        for l in self.links.values_mut() {
            l.replaces.retain(|r| *r != id);
            if l.replaces.is_empty() {
                l.replacing_since = None;
            }
        }
    }

    /// Removes `id`, remembering it for the grace of its blocks in flight.
    pub fn retire(&mut self, id: NodeId, now: Timestamp) -> Option<ParentLink> {
        let link = self.links.remove(&id)?;
        self.retired.retain(|(r, _)| *r != id);
        if self.retired.len() >= RETIRED_MAX {
            self.retired.remove(0);
        }
        self.retired.push((id, now));
        for l in self.links.values_mut() {
            l.replaces.retain(|r| *r != id);
        }
        Some(link)
    }

    /// Whether `id` was dropped within the grace (its blocks are still taken).
    pub fn lately_retired(&self, id: NodeId, now: Timestamp) -> bool {
        self.retired
            .iter()
            .any(|(r, t)| *r == id && now.saturating_since(*t) < RETIRED_GRACE_MS * 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: u32) -> PeerInfo {
        PeerInfo {
            id: NodeId(id),
            addr: String::new(),
            http_addr: String::new(),
        }
    }

    #[test]
    fn a_parent_left_disconnecting_when_its_replacement_is_dropped_goes_once_another_brings_its_substreams(
    ) {
        let mut p = Parents::default();
        let now = Timestamp(1_000_000);
        p.assign(info(5));
        p.set_state(NodeId(5), ParentState::Connected);
        // 6 takes over 5's substreams; 5 pushes until 6 is connected.
        p.assign(info(6));
        p.set_state(NodeId(6), ParentState::Connecting);
        p.set_state(NodeId(5), ParentState::Disconnecting);
        p.set_replaces(NodeId(6), vec![NodeId(5)], now);
        assert!(p.overdue(now).is_empty(), "6 is still on its way");
        // A later assignment drops 6 before it connected: nothing waits for 5 now,
        // and 5 alone brings its substreams — it stays, connected again.
        p.retire(NodeId(6), now);
        assert!(p.overdue(now).is_empty());
        assert_eq!(p.get(NodeId(5)).unwrap().state, ParentState::Connected);
        // Left disconnecting again by a replacement that is dropped, while 7
        // (connected) brings every substream 5 does: 5 goes.
        p.assign(info(7));
        p.set_state(NodeId(7), ParentState::Connected);
        p.assign(info(8));
        p.set_state(NodeId(5), ParentState::Disconnecting);
        p.set_replaces(NodeId(8), vec![NodeId(5)], now);
        p.retire(NodeId(8), now);
        assert_eq!(p.overdue(now), vec![NodeId(5)]);
    }
}
