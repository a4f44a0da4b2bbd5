//! The coordinator driver's `/metrics` (X4): the machine's read-only views
//! and the driver's own counters handed to [`crate::metrics::coordinator`].

use super::Driver;
use crate::etcd::Leadership;
use crate::metrics::coordinator::{render, CoordinatorExtras, EtcdView};
use std::time::Instant;

impl Driver {
    pub(super) fn metrics(&self) -> String {
        let etcd = self.leadership.as_ref().map(|l| match &*l.borrow() {
            Leadership::Leader { epoch, lease, .. } => EtcdView {
                leader: lease.holds(Instant::now()),
                epoch: *epoch,
            },
            Leadership::Standby { .. } => EtcdView {
                leader: false,
                epoch: 0,
            },
        });
        let epoch = self.machine.as_ref().map_or(0, |m| m.config().epoch);
        let extras = CoordinatorExtras {
            epoch,
            etcd,
            events: &self.event_counts,
            send_errors: self.send_errors,
            orders_dropped: self.orders_dropped,
            served_elsewhere: self.served_elsewhere,
            links: self.links.stats(),
            api: &self.api_stats,
        };
        render(self.machine.as_ref(), self.clock.now(), &extras)
    }
}
