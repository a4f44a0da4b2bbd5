//! A link's cap partitioned among the managers that use it (C5), so a manager (a
//! DCM) grants most requests locally without asking the policy manager.
//!
//! Each manager has a budget on the link and uses part of it (the bps counted for
//! its connections). A request is granted from the manager's own idle budget
//! ([`GrantPath::Local`]); if that is short, the budget grows from the link's
//! unallocated remainder, the pool ([`GrantPath::Pool`]); if that is short too, the
//! policy manager takes back idle budget from the other managers, the largest idle
//! budget first ([`GrantPath::Reclaimed`]). So a refusal always means the link is
//! full, never that its bandwidth sits idle in another manager's partition.
//!
//! [`Partitions::rebalance`] (periodic): every budget becomes its manager's usage
//! plus a share of the remainder `cap − Σ usage` proportional to usage (equal
//! shares when nobody uses the link), never below the usage; rounding leftovers
//! stay in the pool, so Σ budgets ≤ cap whenever Σ usage ≤ cap. A manager without
//! connections at two rebalances in a row loses its partition.
//!
//! Sums are `u128`, so no input overflows them.

use super::ids::ManagerId;
use std::cmp::Reverse;
use std::collections::BTreeMap;

/// How a grant was covered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GrantPath {
    /// From the manager's own idle budget: no policy manager involved.
    Local,
    /// The manager's budget grew from the link's unallocated pool.
    Pool,
    /// Idle budget was taken back from other managers.
    Reclaimed,
}

#[derive(Clone, Debug, Default)]
struct Share {
    budget: u128,
    used: u128,
    conns: usize,
    /// No connections at the last rebalance: dropped at the next one if still none.
    stale: bool,
}

impl Share {
    fn idle(&self) -> u128 {
        self.budget.saturating_sub(self.used)
    }
    fn is_empty(&self) -> bool {
        self.budget == 0 && self.conns == 0
    }
}

/// One link's budgets, by manager.
#[derive(Clone, Debug, Default)]
pub struct Partitions {
    shares: BTreeMap<ManagerId, Share>,
    /// Σ budgets.
    allocated: u128,
}

impl Partitions {
    /// `mgr`'s budget on the link (0 when it has none).
    pub fn budget(&self, mgr: ManagerId) -> u128 {
        self.shares.get(&mgr).map_or(0, |s| s.budget)
    }

    /// The bps counted for `mgr`'s connections on the link.
    pub fn used(&self, mgr: ManagerId) -> u128 {
        self.shares.get(&mgr).map_or(0, |s| s.used)
    }

    /// Σ budgets.
    pub fn allocated(&self) -> u128 {
        self.allocated
    }

    /// The unallocated remainder of `cap`.
    pub fn pool(&self, cap_bps: u64) -> u128 {
        u128::from(cap_bps).saturating_sub(self.allocated)
    }

    /// Managers with a partition.
    pub fn len(&self) -> usize {
        self.shares.len()
    }

    pub fn is_empty(&self) -> bool {
        self.shares.is_empty()
    }

    /// `(manager, budget, used)` in manager order.
    pub fn iter(&self) -> impl Iterator<Item = (ManagerId, u128, u128)> + '_ {
        self.shares.iter().map(|(m, s)| (*m, s.budget, s.used))
    }

    /// How `need` more bps for `mgr` would be covered once `freed` bps of its usage
    /// are released (read-only; whether the link has room at all is the ledger's
    /// question).
    pub fn path(&self, mgr: ManagerId, cap_bps: u64, freed: u64, need: u64) -> GrantPath {
        let (budget, used) = self.shares.get(&mgr).map_or((0, 0), |s| (s.budget, s.used));
        let short =
            (used.saturating_sub(u128::from(freed)) + u128::from(need)).saturating_sub(budget);
        if short == 0 {
            GrantPath::Local
        } else if short <= self.pool(cap_bps) {
            GrantPath::Pool
        } else {
            GrantPath::Reclaimed
        }
    }

    fn short(&self, mgr: ManagerId, need: u64) -> u128 {
        let (budget, used) = self.shares.get(&mgr).map_or((0, 0), |s| (s.budget, s.used));
        (used + u128::from(need)).saturating_sub(budget)
    }

    /// Grows `mgr`'s budget so that `need` more bps fit in it: from the pool first,
    /// then from the other managers' idle budgets (largest first, then by id). The
    /// caller checked that the link has room; when a manager's usage was measured
    /// above its budget, the budget may stay short (the link's cap still holds).
    pub fn make_room(&mut self, mgr: ManagerId, cap_bps: u64, need: u64) -> GrantPath {
        let mut short = self.short(mgr, need);
        if short == 0 {
            self.shares.entry(mgr).or_default();
            return GrantPath::Local;
        }
        let from_pool = short.min(self.pool(cap_bps));
        self.grow(mgr, from_pool);
        short -= from_pool;
        if short == 0 {
            return GrantPath::Pool;
        }
        let mut donors: Vec<(Reverse<u128>, ManagerId)> = self
            .shares
            .iter()
            .filter(|(m, s)| **m != mgr && s.idle() > 0)
            .map(|(m, s)| (Reverse(s.idle()), *m))
            .collect();
        donors.sort_unstable();
        for (Reverse(idle), donor) in donors {
            if short == 0 {
                break;
            }
            let take = idle.min(short);
            if let Some(s) = self.shares.get_mut(&donor) {
                s.budget -= take;
                if s.is_empty() {
                    self.shares.remove(&donor);
                }
            }
            self.allocated -= take;
            self.grow(mgr, take);
            short -= take;
        }
        GrantPath::Reclaimed
    }

    fn grow(&mut self, mgr: ManagerId, by: u128) {
        self.shares.entry(mgr).or_default().budget += by;
        self.allocated += by;
    }

    /// A new connection of `mgr` counted at `bps`.
    pub fn add_conn(&mut self, mgr: ManagerId, bps: u64) {
        let s = self.shares.entry(mgr).or_default();
        s.used += u128::from(bps);
        s.conns += 1;
        s.stale = false;
    }

    /// A connection of `mgr` counted at `bps` is gone; its budget stays with `mgr`
    /// until a rebalance or a reclaim.
    pub fn remove_conn(&mut self, mgr: ManagerId, bps: u64) {
        let Some(s) = self.shares.get_mut(&mgr) else {
            return;
        };
        s.used = s.used.saturating_sub(u128::from(bps));
        s.conns = s.conns.saturating_sub(1);
        if s.is_empty() {
            self.shares.remove(&mgr);
        }
    }

    /// A connection of `mgr` is now counted at `new` bps instead of `old`.
    pub fn change(&mut self, mgr: ManagerId, old: u64, new: u64) {
        if let Some(s) = self.shares.get_mut(&mgr) {
            s.used = s.used.saturating_sub(u128::from(old)) + u128::from(new);
        }
    }

    /// The periodic update: partitions of managers gone since the last rebalance are
    /// dropped, then [`Partitions::redistribute`].
    pub fn rebalance(&mut self, cap_bps: u64) {
        self.shares.retain(|_, s| !(s.conns == 0 && s.stale));
        for s in self.shares.values_mut() {
            s.stale = s.conns == 0;
        }
        self.redistribute(cap_bps);
    }

    /// Every budget becomes usage plus a share of `cap − Σ usage` proportional to
    /// usage (equal shares when nobody uses the link).
    pub fn redistribute(&mut self, cap_bps: u64) {
        let total_used: u128 = self.shares.values().map(|s| s.used).sum();
        let remainder = u128::from(cap_bps).saturating_sub(total_used);
        let managers = self.shares.len() as u128;
        for s in self.shares.values_mut() {
            // remainder > 0 implies every usage ≤ cap < 2^64: the product fits in u128.
            let share = if remainder == 0 {
                0
            } else {
                (remainder * s.used)
                    .checked_div(total_used)
                    .unwrap_or(remainder / managers)
            };
            s.budget = s.used + share;
        }
        self.shares.retain(|_, s| !s.is_empty());
        self.allocated = self.shares.values().map(|s| s.budget).sum();
    }

    /// Panics when the bookkeeping disagrees with itself (tests only).
    #[cfg(test)]
    pub fn assert_consistent(&self) {
        let allocated: u128 = self.shares.values().map(|s| s.budget).sum();
        assert_eq!(allocated, self.allocated, "allocated is Σ budgets");
        for (m, s) in &self.shares {
            assert!(!s.is_empty(), "{m:?}: an empty partition is dropped");
            assert!(
                s.conns > 0 || s.used == 0,
                "{m:?}: usage without connections"
            );
        }
    }
}
