//! The coordinator's timer table (issue 13: one driving contract, timers in one
//! table). Every deadline the coordinator keeps is one row: what it is for, when
//! it is due ([`CoordTimer::deadline`]) and what runs ([`CoordTimer::fire`]).
//! `poll_timeout` is the earliest armed row; `handle_timeout` runs the rows in
//! this order, each checking its own deadline (a row run early does nothing).
//! Features behind the rows: D7 (a reported origin's probe), C1–C9 and V4–V11
//! (the managers' tick: liveness, the VAN, policies, overlays, retirement, C8's
//! clusters), V7 (the forecast's fold).

use crate::coordinator::Coordinator;
use tiercast_proto::Timestamp;

/// One row of the timer table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoordTimer {
    /// An origin reported silent that left its `Probe` unanswered is lost (D7).
    Probe,
    /// The managers' tick, four times per heartbeat interval.
    Check,
    /// The login/logoff forecast folded (V7; armed when prediction is on).
    Forecast,
}

impl CoordTimer {
    /// Every row, in the order `handle_timeout` runs them.
    pub const TABLE: [CoordTimer; 3] = [CoordTimer::Probe, CoordTimer::Check, CoordTimer::Forecast];

    /// When this row is next due in `c`, if it is armed.
    pub fn deadline(self, c: &Coordinator) -> Option<Timestamp> {
        match self {
            CoordTimer::Probe => c.probe_deadline(),
            CoordTimer::Check => Some(c.next_check),
            CoordTimer::Forecast => c.cfg.prediction.then(|| c.forecast.next_fold()),
        }
    }

    /// Runs this row at `now` (it checks its own deadline).
    pub(crate) fn fire(self, c: &mut Coordinator, now: Timestamp) {
        match self {
            CoordTimer::Probe => c.probe_tick(now),
            CoordTimer::Check => {
                if now >= c.next_check {
                    c.managers_tick(now);
                }
            }
            CoordTimer::Forecast => c.fold_forecast(now),
        }
    }
}

impl Coordinator {
    /// Every row of the timer table, with its deadline (for status pages and tests).
    pub fn timers(&self) -> impl Iterator<Item = (CoordTimer, Option<Timestamp>)> + '_ {
        CoordTimer::TABLE.iter().map(|t| (*t, t.deadline(self)))
    }
}
