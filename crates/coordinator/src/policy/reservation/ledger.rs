//! One capped link's soft state (C5): its cap, the reservations that cross it (one
//! per connection, with the manager that holds it, the bps reserved, the last
//! measurement and when it expires unless refreshed), the bps booked on it and its
//! partitions among managers.
//!
//! Booked = Σ counted bps, where a connection is counted at its reserved bps, or —
//! in measured mode, once a refresh carried a measurement — at its last measured
//! bps. The rule the ledger keeps: a grant never raises booked above the cap (a
//! change that does not raise booked is always allowed). Booked can exceed the cap
//! only when the cap is lowered below it, or in measured mode when measurements
//! rise; it is never pushed there by a grant.

use super::ids::{ConnId, ManagerId};
use super::partition::{GrantPath, Partitions};
use std::collections::BTreeMap;
use tiercast_proto::Timestamp;

/// One connection's reservation on a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reservation {
    /// The manager that holds it (only it may refresh or release it).
    pub mgr: ManagerId,
    /// The bps asked for.
    pub reserved_bps: u64,
    /// The bps the last refresh reported in use, if one did.
    pub measured_bps: Option<u64>,
    /// The bps booked for it: `reserved_bps`, or in measured mode the last
    /// `measured_bps` once there is one.
    pub counted_bps: u64,
    /// When it times out unless refreshed.
    pub expires: Timestamp,
}

/// One capped link.
#[derive(Clone, Debug)]
pub struct LinkLedger {
    cap_bps: u64,
    conns: BTreeMap<ConnId, Reservation>,
    /// Σ counted bps.
    booked: u128,
    partitions: Partitions,
}

impl LinkLedger {
    pub fn new(cap_bps: u64) -> Self {
        LinkLedger {
            cap_bps,
            conns: BTreeMap::new(),
            booked: 0,
            partitions: Partitions::default(),
        }
    }

    pub fn cap_bps(&self) -> u64 {
        self.cap_bps
    }

    /// Σ counted bps, saturated to `u64`.
    pub fn booked_bps(&self) -> u64 {
        u64::try_from(self.booked).unwrap_or(u64::MAX)
    }

    /// How far booked is above the cap (0 when within it).
    pub fn excess_bps(&self) -> u64 {
        u64::try_from(self.booked.saturating_sub(u128::from(self.cap_bps))).unwrap_or(u64::MAX)
    }

    /// Reservations on the link.
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    pub fn get(&self, conn: ConnId) -> Option<&Reservation> {
        self.conns.get(&conn)
    }

    pub fn partitions(&self) -> &Partitions {
        &self.partitions
    }

    /// `(connection, reservation)` in connection order.
    pub fn iter(&self) -> impl Iterator<Item = (ConnId, &Reservation)> + '_ {
        self.conns.iter().map(|(c, r)| (*c, r))
    }

    /// Whether `conn` (`None`: a new connection) may be counted at `counted` bps
    /// from now on, replacing what it is counted at now: yes if that does not raise
    /// booked, or if booked stays within the cap.
    pub fn fits(&self, conn: Option<ConnId>, counted: u64) -> bool {
        let old = conn
            .and_then(|c| self.conns.get(&c))
            .map_or(0, |r| u128::from(r.counted_bps));
        let new = u128::from(counted);
        new <= old || self.booked - old + new <= u128::from(self.cap_bps)
    }

    /// How a grant of `counted` bps to `mgr` for `conn` (`None`: a new connection)
    /// would be covered.
    pub fn path(&self, mgr: ManagerId, conn: Option<ConnId>, counted: u64) -> GrantPath {
        let freed = conn
            .and_then(|c| self.conns.get(&c))
            .filter(|r| r.mgr == mgr)
            .map_or(0, |r| r.counted_bps);
        self.partitions.path(mgr, self.cap_bps, freed, counted)
    }

    /// Books `res` for `conn`, replacing (and returning) any reservation it had; the
    /// holder's partition makes room for it. The caller checked [`LinkLedger::fits`].
    pub fn put(&mut self, conn: ConnId, res: Reservation) -> (GrantPath, Option<Reservation>) {
        let old = self.remove(conn);
        let path = self
            .partitions
            .make_room(res.mgr, self.cap_bps, res.counted_bps);
        self.partitions.add_conn(res.mgr, res.counted_bps);
        self.booked += u128::from(res.counted_bps);
        self.conns.insert(conn, res);
        (path, old)
    }

    /// Removes `conn`'s reservation; its bps are free at once (its budget stays in
    /// its manager's partition until a rebalance or a reclaim).
    pub fn remove(&mut self, conn: ConnId) -> Option<Reservation> {
        let res = self.conns.remove(&conn)?;
        self.booked -= u128::from(res.counted_bps);
        self.partitions.remove_conn(res.mgr, res.counted_bps);
        Some(res)
    }

    /// A refresh of `conn`: it now expires at `expires`; a measurement is recorded,
    /// and counted when `measured_mode`. Returns the previous expiry (`None` for an
    /// unknown connection).
    pub fn refresh(
        &mut self,
        conn: ConnId,
        expires: Timestamp,
        measured_bps: Option<u64>,
        measured_mode: bool,
    ) -> Option<Timestamp> {
        let res = self.conns.get_mut(&conn)?;
        let before = res.expires;
        res.expires = expires;
        if let Some(m) = measured_bps {
            res.measured_bps = Some(m);
            if measured_mode && m != res.counted_bps {
                self.booked = self.booked - u128::from(res.counted_bps) + u128::from(m);
                self.partitions.change(res.mgr, res.counted_bps, m);
                res.counted_bps = m;
            }
        }
        Some(before)
    }

    /// A new cap: the partitions are redistributed at once (reservations stay; a
    /// lowered cap is enforced on new requests).
    pub fn set_cap(&mut self, cap_bps: u64) {
        if cap_bps != self.cap_bps {
            self.cap_bps = cap_bps;
            self.partitions.redistribute(cap_bps);
        }
    }

    /// The periodic rebalance of the partitions by usage.
    pub fn rebalance(&mut self) {
        self.partitions.rebalance(self.cap_bps);
    }

    /// Panics when the bookkeeping disagrees with itself (tests only).
    #[cfg(test)]
    pub fn assert_consistent(&self) {
        let booked: u128 = self.conns.values().map(|r| u128::from(r.counted_bps)).sum();
        assert_eq!(booked, self.booked, "booked is Σ counted");
        self.partitions.assert_consistent();
        let mut used: BTreeMap<ManagerId, u128> = BTreeMap::new();
        for r in self.conns.values() {
            *used.entry(r.mgr).or_default() += u128::from(r.counted_bps);
        }
        for (m, _, u) in self.partitions.iter() {
            assert_eq!(used.get(&m).copied().unwrap_or(0), u, "{m:?}: usage");
        }
        for (m, u) in used {
            assert_eq!(self.partitions.used(m), u, "{m:?}: usage");
        }
    }
}
