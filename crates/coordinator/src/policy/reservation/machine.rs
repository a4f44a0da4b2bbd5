//! The reservation book (C5): every capped link's ledger, the expiry index, the
//! rebalance timer and the verbs — caps from the policy store, managers' requests
//! (reserve, refresh, release), time (`handle_timeout` / `poll_timeout`) and
//! read-only views. Sans-IO: it never reads a clock; `now` is handed in.

use super::ids::{ConnId, LinkKey, ManagerId};
use super::ledger::{LinkLedger, Reservation};
use super::partition::GrantPath;
use std::collections::{BTreeMap, BTreeSet};
use tiercast_proto::Timestamp;

/// Capped links kept at most; caps beyond it (in the order given) are ignored and
/// counted ([`Reservations::caps_ignored`]).
pub const MAX_CAPS: usize = 1 << 16;
/// Links holding reservations at once, at most: a first reservation on one more
/// link is refused (`Full`).
pub const MAX_LINKS: usize = 4096;
/// Reservations per link, at most: one more is refused (`Full`).
pub const MAX_RESERVATIONS: usize = 1 << 20;
/// Reservations on all links together, at most: one more is refused (`Full`).
pub const MAX_RESERVATIONS_TOTAL: usize = 1 << 21;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Limits {
    pub caps: usize,
    pub links: usize,
    pub per_link: usize,
    pub total: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            caps: MAX_CAPS,
            links: MAX_LINKS,
            per_link: MAX_RESERVATIONS,
            total: MAX_RESERVATIONS_TOTAL,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReservationConfig {
    /// A reservation not refreshed for this long times out (default: three
    /// heartbeat intervals, 3000).
    pub ttl_ms: u64,
    /// Partitions are rebalanced by usage this often (default 10 000; 0: never).
    pub rebalance_ms: u64,
    /// Measurement-based admission: a refresh's measured bps is what is counted.
    pub measured: bool,
}

impl Default for ReservationConfig {
    fn default() -> Self {
        ReservationConfig {
            ttl_ms: 3000,
            rebalance_ms: 10_000,
            measured: false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReservationConfigError {
    #[error("reservation ttl_ms is 0: every reservation would time out at once")]
    ZeroTtl,
    #[error("reservation rebalance_ms is 0: partitions would never be rebalanced")]
    ZeroRebalance,
}

impl ReservationConfig {
    /// Checked once at start; [`Reservations::new`] never panics on a bad config
    /// (ttl 0: reservations expire at the next `handle_timeout`; rebalance 0: none).
    pub fn validate(&self) -> Result<(), ReservationConfigError> {
        if self.ttl_ms == 0 {
            return Err(ReservationConfigError::ZeroTtl);
        }
        if self.rebalance_ms == 0 {
            return Err(ReservationConfigError::ZeroRebalance);
        }
        Ok(())
    }
}

/// Why a reservation was not granted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Not a capped link: callers need no reservation.
    #[error("not a capped link")]
    NoCap,
    /// The link has no room for it (or a bound on reservations was reached).
    #[error("{link:?} full: {booked_bps} of {cap_bps} bps booked, {asked_bps} asked")]
    Full {
        link: LinkKey,
        cap_bps: u64,
        booked_bps: u64,
        asked_bps: u64,
    },
}

/// Grants by the way they were covered, and refusals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GrantCounts {
    /// From the manager's own partition.
    pub local: u64,
    /// The partition grew from the link's pool.
    pub pool: u64,
    /// Idle budget was taken back from other managers.
    pub reclaimed: u64,
    /// `Refused::Full`.
    pub refused: u64,
}

/// Bandwidth reservations on capped links (C5). See the module doc.
#[derive(Clone, Debug)]
pub struct Reservations {
    cfg: ReservationConfig,
    limits: Limits,
    links: BTreeMap<LinkKey, LinkLedger>,
    /// Every reservation once, by expiry.
    expiry: BTreeSet<(Timestamp, LinkKey, ConnId)>,
    /// Links holding at least one reservation.
    active_links: usize,
    next_rebalance: Option<Timestamp>,
    expired_total: u64,
    dropped_total: u64,
    caps_ignored: u64,
    grants: GrantCounts,
}

impl Reservations {
    pub fn new(cfg: ReservationConfig) -> Self {
        Reservations::with_limits(cfg, Limits::default())
    }

    pub(super) fn with_limits(cfg: ReservationConfig, limits: Limits) -> Self {
        Reservations {
            cfg,
            limits,
            links: BTreeMap::new(),
            expiry: BTreeSet::new(),
            active_links: 0,
            next_rebalance: None,
            expired_total: 0,
            dropped_total: 0,
            caps_ignored: 0,
            grants: GrantCounts::default(),
        }
    }

    pub fn config(&self) -> &ReservationConfig {
        &self.cfg
    }

    // --- caps (from the policy store) ---

    /// Sets the caps whole (bps per link; a later duplicate wins). Links no longer
    /// capped drop their reservations ([`Reservations::dropped_total`]); a changed
    /// cap redistributes that link's partitions at once; reservations above a
    /// lowered cap stay until released or expired ([`Reservations::excess`] says how
    /// much to shed) and new requests are refused while there is no room. A link
    /// from an end to itself, or beyond [`MAX_CAPS`], is ignored and counted.
    pub fn set_caps(&mut self, _now: Timestamp, caps: impl IntoIterator<Item = (LinkKey, u64)>) {
        let mut wanted: BTreeMap<LinkKey, u64> = BTreeMap::new();
        for (link, cap) in caps {
            match link.normalized() {
                Some(link) if wanted.len() < self.limits.caps || wanted.contains_key(&link) => {
                    wanted.insert(link, cap);
                }
                _ => self.caps_ignored += 1,
            }
        }
        let gone: Vec<LinkKey> = self
            .links
            .keys()
            .filter(|l| !wanted.contains_key(l))
            .copied()
            .collect();
        for link in gone {
            let Some(ledger) = self.links.remove(&link) else {
                continue;
            };
            if !ledger.is_empty() {
                self.active_links -= 1;
            }
            for (conn, res) in ledger.iter() {
                self.expiry.remove(&(res.expires, link, conn));
                self.dropped_total += 1;
            }
        }
        for (link, cap) in wanted {
            self.links
                .entry(link)
                .and_modify(|l| l.set_cap(cap))
                .or_insert_with(|| LinkLedger::new(cap));
        }
    }

    /// The link's cap in bps (`None`: not capped).
    pub fn cap(&self, link: LinkKey) -> Option<u64> {
        self.ledger(link).map(LinkLedger::cap_bps)
    }

    pub fn is_capped(&self, link: LinkKey) -> bool {
        self.ledger(link).is_some()
    }

    // --- a manager's requests ---

    /// Reserves `bps` on `link` for `conn`, held by `mgr`, until `now + ttl_ms`
    /// unless refreshed. Re-reserving a connection replaces its bps (never counted
    /// twice; the same bps again keeps its last measurement, other bps start over
    /// from the reservation); a connection held by another manager moves to `mgr`.
    /// A refusal leaves any earlier reservation of `conn` as it was. `bps == 0`
    /// releases `conn` (if `mgr` holds it) and is `Ok`.
    pub fn reserve(
        &mut self,
        now: Timestamp,
        mgr: ManagerId,
        link: LinkKey,
        conn: ConnId,
        bps: u64,
    ) -> Result<(), Refused> {
        let link = link.normalized().ok_or(Refused::NoCap)?;
        if bps == 0 {
            if !self.links.contains_key(&link) {
                return Err(Refused::NoCap);
            }
            self.release(mgr, link, conn);
            return Ok(());
        }
        let Some(ledger) = self.links.get_mut(&link) else {
            return Err(Refused::NoCap);
        };
        let old = ledger.get(conn).copied();
        let (measured_bps, counted_bps) = match old {
            Some(o) if o.mgr == mgr && o.reserved_bps == bps => (o.measured_bps, o.counted_bps),
            _ => (None, bps),
        };
        let over_bounds = old.is_none()
            && (ledger.len() >= self.limits.per_link
                || self.expiry.len() >= self.limits.total
                || (ledger.is_empty() && self.active_links >= self.limits.links));
        if over_bounds || !ledger.fits(Some(conn), counted_bps) {
            self.grants.refused += 1;
            return Err(Refused::Full {
                link,
                cap_bps: ledger.cap_bps(),
                booked_bps: ledger.booked_bps(),
                asked_bps: bps,
            });
        }
        let was_empty = ledger.is_empty();
        let expires = now.plus_millis(self.cfg.ttl_ms);
        let res = Reservation {
            mgr,
            reserved_bps: bps,
            measured_bps,
            counted_bps,
            expires,
        };
        let (path, replaced) = ledger.put(conn, res);
        if let Some(r) = replaced {
            self.expiry.remove(&(r.expires, link, conn));
        }
        self.expiry.insert((expires, link, conn));
        if was_empty {
            self.active_links += 1;
        }
        match path {
            GrantPath::Local => self.grants.local += 1,
            GrantPath::Pool => self.grants.pool += 1,
            GrantPath::Reclaimed => self.grants.reclaimed += 1,
        }
        if self.next_rebalance.is_none() && self.cfg.rebalance_ms > 0 {
            self.next_rebalance = Some(now.plus_millis(self.cfg.rebalance_ms));
        }
        Ok(())
    }

    /// Whether a new connection of `bps` on `link` would be granted to `mgr` now (or
    /// needs no reservation: an uncapped link, 0 bps). Read-only.
    pub fn would_fit(&self, mgr: ManagerId, link: LinkKey, bps: u64) -> bool {
        match self.ledger(link) {
            None => true,
            Some(_) if bps == 0 => true,
            Some(_) => self.grant_path(mgr, link, bps).is_some(),
        }
    }

    /// How a new connection of `bps` on `link` would be covered for `mgr` (`None`:
    /// refused, or no reservation needed). Read-only.
    pub fn grant_path(&self, mgr: ManagerId, link: LinkKey, bps: u64) -> Option<GrantPath> {
        let ledger = self.ledger(link)?;
        let over_bounds = ledger.len() >= self.limits.per_link
            || self.expiry.len() >= self.limits.total
            || (ledger.is_empty() && self.active_links >= self.limits.links);
        if bps == 0 || over_bounds || !ledger.fits(None, bps) {
            return None;
        }
        Some(ledger.path(mgr, None, bps))
    }

    /// `mgr` still uses `conn`: it lives another `ttl_ms`. A measurement is recorded
    /// (and counted in measured mode). `false`: no such reservation held by `mgr`
    /// (it expired, was released, or the link is no longer capped) — reserve again.
    pub fn refresh(
        &mut self,
        now: Timestamp,
        mgr: ManagerId,
        link: LinkKey,
        conn: ConnId,
        measured_bps: Option<u64>,
    ) -> bool {
        let Some(link) = link.normalized() else {
            return false;
        };
        let Some(ledger) = self.links.get_mut(&link) else {
            return false;
        };
        if ledger.get(conn).map(|r| r.mgr) != Some(mgr) {
            return false;
        }
        let expires = now.plus_millis(self.cfg.ttl_ms);
        let Some(before) = ledger.refresh(conn, expires, measured_bps, self.cfg.measured) else {
            return false;
        };
        self.expiry.remove(&(before, link, conn));
        self.expiry.insert((expires, link, conn));
        true
    }

    /// `mgr` tore `conn` down: its bandwidth is free at once. No-op unless `mgr`
    /// holds that reservation.
    pub fn release(&mut self, mgr: ManagerId, link: LinkKey, conn: ConnId) {
        let Some(link) = link.normalized() else {
            return;
        };
        let Some(ledger) = self.links.get_mut(&link) else {
            return;
        };
        if ledger.get(conn).map(|r| r.mgr) != Some(mgr) {
            return;
        }
        if let Some(res) = ledger.remove(conn) {
            self.expiry.remove(&(res.expires, link, conn));
            if ledger.is_empty() {
                self.active_links -= 1;
            }
        }
    }

    // --- time ---

    /// Expires every reservation not refreshed within `ttl_ms` (cost proportional to
    /// what expires), then rebalances all partitions if the rebalance is due.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        while let Some(&(at, link, conn)) = self.expiry.first() {
            if at > now {
                break;
            }
            self.expiry.pop_first();
            let Some(ledger) = self.links.get_mut(&link) else {
                continue;
            };
            if let Some(res) = ledger.remove(conn) {
                debug_assert_eq!(res.expires, at, "the index holds each reservation's expiry");
                self.expired_total += 1;
                if ledger.is_empty() {
                    self.active_links -= 1;
                }
            }
        }
        if self.next_rebalance.is_some_and(|at| at <= now) {
            for ledger in self.links.values_mut() {
                ledger.rebalance();
            }
            let any_partition = self.links.values().any(|l| !l.partitions().is_empty());
            self.next_rebalance = (any_partition && self.cfg.rebalance_ms > 0)
                .then(|| now.plus_millis(self.cfg.rebalance_ms));
        }
    }

    /// When `handle_timeout` is due next: the earliest expiry or the rebalance.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let expiry = self.expiry.first().map(|e| e.0);
        match (expiry, self.next_rebalance) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    // --- read-only views ---

    /// Σ counted bps on `link` (reserved; in measured mode the last measured,
    /// falling back to reserved until the first refresh). 0 when not capped.
    pub fn booked(&self, link: LinkKey) -> u64 {
        self.ledger(link).map_or(0, LinkLedger::booked_bps)
    }

    /// How many bps booked on `link` are above its cap (after a lowered cap, or
    /// measurements that rose): what its managers should shed. 0 when within it.
    pub fn excess(&self, link: LinkKey) -> u64 {
        self.ledger(link).map_or(0, LinkLedger::excess_bps)
    }

    /// `mgr`'s partition of `link` in bps (0: none).
    pub fn partition(&self, mgr: ManagerId, link: LinkKey) -> u64 {
        self.ledger(link).map_or(0, |l| {
            u64::try_from(l.partitions().budget(mgr)).unwrap_or(u64::MAX)
        })
    }

    /// `conn`'s reservation on `link`, if any.
    pub fn reservation(&self, link: LinkKey, conn: ConnId) -> Option<&Reservation> {
        self.ledger(link)?.get(conn)
    }

    /// Reservations on all links.
    pub fn len(&self) -> usize {
        self.expiry.len()
    }

    pub fn is_empty(&self) -> bool {
        self.expiry.is_empty()
    }

    /// Reservations that timed out, ever.
    pub fn expired_total(&self) -> u64 {
        self.expired_total
    }

    /// Reservations dropped because their link was no longer capped, ever.
    pub fn dropped_total(&self) -> u64 {
        self.dropped_total
    }

    /// Caps `set_caps` ignored (a link from an end to itself, beyond [`MAX_CAPS`]), ever.
    pub fn caps_ignored(&self) -> u64 {
        self.caps_ignored
    }

    pub fn grants(&self) -> GrantCounts {
        self.grants
    }

    /// `(link, cap bps, booked bps)` for every capped link, in link order.
    pub fn links(&self) -> impl Iterator<Item = (LinkKey, u64, u64)> + '_ {
        self.links
            .iter()
            .map(|(k, l)| (*k, l.cap_bps(), l.booked_bps()))
    }

    fn ledger(&self, link: LinkKey) -> Option<&LinkLedger> {
        self.links.get(&link.normalized()?)
    }

    /// Panics when the index, the ledgers and the counters disagree (tests only).
    #[cfg(test)]
    pub(super) fn assert_consistent(&self) {
        let mut indexed = 0;
        let mut active = 0;
        for (link, ledger) in &self.links {
            ledger.assert_consistent();
            active += usize::from(!ledger.is_empty());
            for (conn, res) in ledger.iter() {
                assert!(
                    self.expiry.contains(&(res.expires, *link, conn)),
                    "{conn:?} indexed"
                );
                indexed += 1;
            }
        }
        assert_eq!(
            indexed,
            self.expiry.len(),
            "the index holds only live reservations"
        );
        assert_eq!(active, self.active_links, "active links");
    }
}
