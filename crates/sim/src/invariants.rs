//! Invariant checks that run during every simulation (X5): no node sends faster
//! than its uplink (checked against the network model's own departure accounting),
//! no block is counted twice at a viewer (checked where viewers' blocks are
//! counted), and every watching viewer is either served by a path to the origin or
//! counted as joining or starving (checked at each sample), and the coordinator's
//! peer overlay keeps its books (`PeerOverlay::check`: every link booked at its
//! parent, no parent booked past its slots, the indexes in step; each sample up to
//! [`OVERLAY_CHECK_EVERY_MEMBERS`] members, less often above). A violation is a bug in the
//! simulator or the machines: it is recorded in metrics.json and makes
//! `tiercast sim` exit non-zero. `Plant` (in `world`) lets a test plant one.

use tiercast_netmodel::model::serialization_us;
use tiercast_netmodel::Delivery;

/// Violations kept verbatim (later ones are only counted).
const KEEP: usize = 100;

/// Up to this many members the peer overlay's books are checked every sample;
/// above, every [`OVERLAY_CHECK_SPARSE_S`] seconds (the check walks every link).
pub(crate) const OVERLAY_CHECK_EVERY_MEMBERS: usize = 50_000;
const OVERLAY_CHECK_SPARSE_S: u64 = 30;

#[derive(Default)]
pub(crate) struct Checker {
    /// Per host: when its uplink finished the last departure it was seen to make.
    uplink_done: Vec<u64>,
    pub violations: Vec<String>,
    pub count: u64,
    pub notes: Vec<String>,
}

impl Checker {
    pub fn add_host(&mut self) {
        self.uplink_done.push(0);
    }

    pub fn record(&mut self, kind: &str, what: String) {
        self.count += 1;
        if self.violations.len() < KEEP {
            self.violations.push(format!("{kind}: {what}"));
        }
    }

    /// Something worth knowing that is not a violation.
    pub fn note(&mut self, what: String) {
        if self.notes.len() < KEEP {
            self.notes.push(what);
        }
    }

    /// A departure must start after the previous one from the same host ended and
    /// last at least the serialization time at the host's uplink.
    pub fn on_departure(&mut self, host: u32, d: &Delivery, bytes: u64, uplink_kbps: u32) {
        let done = &mut self.uplink_done[host as usize];
        if d.depart_start < *done {
            let (start, prev) = (d.depart_start, *done);
            self.record(
                "uplink_overrun",
                format!(
                    "node n{host} began sending {bytes} bytes at {:.6}s while its uplink was busy until {:.6}s",
                    start as f64 / 1e6,
                    prev as f64 / 1e6
                ),
            );
        }
        let need = serialization_us(bytes, uplink_kbps);
        if d.depart_end - d.depart_start < need {
            self.record(
                "uplink_overrun",
                format!(
                    "node n{host} sent {bytes} bytes in {} µs, faster than its {uplink_kbps} kbps uplink allows ({need} µs)",
                    d.depart_end - d.depart_start
                ),
            );
        }
        let done = &mut self.uplink_done[host as usize];
        *done = (*done).max(d.depart_end);
    }

    /// Every watching viewer is served, still joining (within its startup grace) or
    /// starving; none is lost between them.
    pub fn check_classification(&mut self, now: u64, w: &crate::rate::Walk, watching: u64) {
        if w.served + w.joining + w.starving != w.watching || w.watching != watching {
            self.record(
                "unclassified_viewer",
                format!(
                    "at {:.0}s: {watching} viewers watching, {} walked, {} served + {} joining + {} starving",
                    now as f64 / 1e6,
                    w.watching,
                    w.served,
                    w.joining,
                    w.starving
                ),
            );
        }
    }
}

impl crate::world::Simulation {
    /// The coordinator's peer overlay keeps its books (see the module's doc).
    pub(crate) fn check_overlay_books(&mut self) {
        let Some(o) = self.channel.and_then(|c| self.coord.peer_overlay(c)) else {
            return;
        };
        let second = self.now / 1_000_000;
        if o.len() > OVERLAY_CHECK_EVERY_MEMBERS && !second.is_multiple_of(OVERLAY_CHECK_SPARSE_S) {
            return;
        }
        if let Err(e) = o.check() {
            self.checker
                .record("overlay_books", format!("at {second}s: {e}"));
        }
    }

    /// `Plant::GapAfterSwitch`: arms on the first viewer starting a second watch
    /// session after it has had blocks (it was sent to another relay).
    pub(crate) fn arm_planted_gap(&mut self, id: u32) {
        let v = &self.viewers[(id - self.first_viewer) as usize];
        if v.sessions < 2 || v.first_seq == crate::viewer::NONE || self.planted_gap.is_some() {
            return;
        }
        let Some(n) = self.plants.iter().find_map(|p| match p {
            crate::world::Plant::GapAfterSwitch(n) => Some(*n),
            _ => None,
        }) else {
            return;
        };
        self.plants
            .retain(|p| !matches!(p, crate::world::Plant::GapAfterSwitch(_)));
        self.planted_gap = Some((id, n));
        let label = self.label(tiercast_proto::NodeId(id));
        self.checker.note(format!(
            "planted gap: viewer {label} switched relays at {:.3}s; its next {n} blocks are not counted",
            self.now as f64 / 1e6
        ));
    }

    /// Whether this stored block is one the planted gap hides.
    pub(crate) fn planted_gap_skips(&mut self, id: u32) -> bool {
        match &mut self.planted_gap {
            Some((v, left)) if *v == id && *left > 0 => {
                *left -= 1;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(start: u64, end: u64) -> Delivery {
        Delivery {
            depart_start: start,
            depart_end: end,
            arrival: end + 10,
            uplink_busy_us: end - start,
            retransmissions: 0,
        }
    }

    #[test]
    fn overlapping_or_too_fast_departures_are_violations() {
        let mut c = Checker::default();
        c.add_host();
        c.on_departure(0, &d(0, 1000), 1000, 8000);
        c.on_departure(0, &d(1000, 2000), 1000, 8000);
        assert_eq!(c.count, 0);
        c.on_departure(0, &d(1500, 2500), 1000, 8000);
        assert_eq!(c.count, 1);
        c.on_departure(0, &d(3000, 3100), 1000, 8000);
        assert_eq!(c.count, 2);
        assert!(c.violations[1].contains("faster"));
        let mut w = crate::rate::Walk {
            watching: 3,
            served: 2,
            joining: 0,
            starving: 1,
            ..Default::default()
        };
        c.check_classification(0, &w, 3);
        assert_eq!(c.count, 2);
        w.starving = 0;
        c.check_classification(0, &w, 3);
        assert_eq!(c.count, 3);
    }
}
