//! An origin's ingest health, sent to the coordinator (X1, issue 17). The
//! driver measures the ingest (bitrate in, keyframe interval, gaps, timestamp
//! jumps, a stalled encoder) and hands the report here every few seconds and at
//! once when the encoder stalls or resumes; the node sends it only for a channel
//! it is the live origin of, once registered (a standby's ingest feeds nobody,
//! and the coordinator would refuse it).

use crate::node::Node;
use tiercast_proto::{IngestReport, Message, NodeRole, COORDINATOR_ID};

impl Node {
    /// Sends `report` to the coordinator; false (nothing sent) when this node is
    /// not registered or not the live origin of `report.channel`.
    pub fn report_ingest_health(&mut self, report: IngestReport) -> bool {
        let live = self.cfg.role == NodeRole::Origin
            && self.registered
            && self
                .channels
                .get(&report.channel)
                .is_some_and(|c| !self.standby.contains(&c.desc.name));
        if live {
            self.send(COORDINATOR_ID, Message::IngestHealth(report));
        }
        live
    }
}

#[cfg(test)]
mod tests {
    use crate::config::NodeConfig;
    use crate::test_fixture::{desc, registered};
    use tiercast_proto::{IngestReport, Message, NodeId, NodeRole, Timestamp, COORDINATOR_ID};

    #[test]
    fn only_a_registered_origin_of_the_channel_reports() {
        let cfg = NodeConfig {
            id: NodeId(1),
            role: NodeRole::Origin,
            tier: 0,
            ..NodeConfig::default()
        };
        let mut n = registered(cfg);
        let report = IngestReport {
            channel: desc().id,
            stalled: true,
            ..IngestReport::default()
        };
        assert!(!n.report_ingest_health(report), "not announced yet");
        n.announce("live", [0; 32]);
        n.handle_message(
            Timestamp::ZERO,
            COORDINATOR_ID,
            Message::Announced {
                channel: desc(),
                next_seq: 0,
            },
        );
        while n.poll_transmit().is_some() {}
        assert!(n.report_ingest_health(report));
        let sent: Vec<_> = std::iter::from_fn(|| n.poll_transmit())
            .map(|t| (t.to, t.msg))
            .collect();
        assert_eq!(sent, vec![(COORDINATOR_ID, Message::IngestHealth(report))]);
    }
}
