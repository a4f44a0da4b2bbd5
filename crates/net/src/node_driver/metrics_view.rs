//! The node driver's `GET /metrics` (X4): its snapshot, the live links' RTT
//! (the channels' parents and the coordinator) and an origin's last ingest
//! reports, handed to [`crate::metrics::node`].

use super::Driver;
use std::collections::BTreeSet;
use tiercast_proto::{NodeId, COORDINATOR_ID};

impl Driver {
    /// The Prometheus page (X4): the snapshot, the live links' RTT (the
    /// channels' parents and the coordinator), the ingest reports.
    pub(super) fn metrics(&self) -> String {
        let snapshot = self.snapshot();
        let mut peers: BTreeSet<u32> = snapshot
            .channels
            .iter()
            .flat_map(|c| c.parents.iter().copied())
            .collect();
        peers.insert(COORDINATOR_ID.0);
        let link_rtt_s = peers
            .into_iter()
            .filter_map(|p| Some((p, self.links.received(NodeId(p))?.1.as_secs_f64())))
            .collect();
        let ingest = self
            .ingest_reports
            .iter()
            .filter_map(|(id, (at, report))| {
                let name = self.node.channel(*id)?.desc.name.clone();
                Some((name, at.elapsed().as_secs_f64(), *report))
            })
            .collect();
        let extras = crate::metrics::node::NodeExtras {
            link_rtt_s,
            ingest,
            http: Some(&self.viewer_stats),
        };
        crate::metrics::node::render(&snapshot, &extras)
    }
}
