//! The channels' ingest health as their origins report it (X1, issue 17): the
//! last report per channel, kept with the time it came; a stalled encoder and
//! its end (input again, or the publisher gone) are events. A report from a node that is not the channel's
//! origin (or for a channel not known) is refused: counted in
//! `invalid_messages` and logged as `CoordEvent::Invalid`, as the heartbeat
//! gate does. At most one entry per channel the coordinator manages; entries of
//! retired channels are dropped at the next report.

use crate::coordinator::Coordinator;
use crate::event::CoordEvent;
use std::collections::BTreeMap;
use tiercast_proto::{ChannelId, IngestReport, NodeId, Timestamp};

/// The last report of a channel's ingest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IngestRecord {
    pub origin: NodeId,
    pub at: Timestamp,
    pub report: IngestReport,
}

/// The last report per channel (one entry per managed channel at most).
#[derive(Clone, Debug, Default)]
pub struct IngestReports {
    last: BTreeMap<ChannelId, IngestRecord>,
}

impl IngestReports {
    pub fn get(&self, channel: ChannelId) -> Option<&IngestRecord> {
        self.last.get(&channel)
    }

    pub fn len(&self) -> usize {
        self.last.len()
    }

    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }
}

impl Coordinator {
    /// The last ingest report of `channel` (read-only view for `/status`).
    pub fn ingest_report(&self, channel: ChannelId) -> Option<&IngestRecord> {
        self.ingest.get(channel)
    }

    pub(crate) fn on_ingest_health(&mut self, now: Timestamp, from: NodeId, report: IngestReport) {
        let channel = report.channel;
        let origin = match self.channels.get(&channel) {
            Some(m) => m.origin,
            None => return self.invalid(from, "ingest_health", "unknown channel"),
        };
        if origin != from {
            return self.invalid(from, "ingest_health", "not the channel's origin");
        }
        let was_stalled = self.ingest.get(channel).is_some_and(|r| r.report.stalled);
        if report.stalled && !was_stalled {
            self.events.push_back(CoordEvent::EncoderStalled {
                channel,
                origin: from,
            });
        } else if !report.stalled && was_stalled {
            // The stall ends with input again, or with the publisher gone.
            self.events.push_back(match report.publishing {
                true => CoordEvent::EncoderResumed {
                    channel,
                    origin: from,
                },
                false => CoordEvent::EncoderLeft {
                    channel,
                    origin: from,
                },
            });
        }
        let channels = &self.channels;
        self.ingest.last.retain(|c, _| channels.get(c).is_some());
        self.ingest.last.insert(
            channel,
            IngestRecord {
                origin: from,
                at: now,
                report,
            },
        );
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::CoordinatorConfig;
    use tiercast_proto::{Message, NodeClass, NodeRole, Register};

    /// Registers node `id` with `role` and `tier` (also used by the publish keys' tests).
    pub(crate) fn register(c: &mut Coordinator, now: Timestamp, id: u32, role: NodeRole, tier: u8) {
        c.handle_message(
            now,
            NodeId(id),
            Message::Register(Register {
                role,
                tier,
                region: "eu".into(),
                capacity: 10,
                addr: format!("127.0.0.1:{}", 1000 + id),
                http_addr: String::new(),
                uplink_kbps: 0,
                class: NodeClass::default(),
                incarnation: 1,
                manager_id: 0,
            }),
        );
    }

    fn drain_events(c: &mut Coordinator) -> Vec<CoordEvent> {
        while c.poll_transmit().is_some() {}
        std::iter::from_fn(|| c.poll_event()).collect()
    }

    fn report(channel: ChannelId, stalled: bool) -> Message {
        Message::IngestHealth(IngestReport {
            channel,
            publishing: true,
            bitrate_in_kbps: 2500,
            keyframe_interval_ms: Some(2000),
            gaps: u32::from(stalled),
            timestamp_jumps: 0,
            stalled,
            stalls: u32::from(stalled),
            ..IngestReport::default()
        })
    }

    #[test]
    fn reports_are_kept_stalls_and_resumes_are_events_others_are_refused() {
        let t = |ms: u64| Timestamp(ms * 1000);
        let mut c = Coordinator::new(CoordinatorConfig::default(), t(0));
        register(&mut c, t(0), 1, NodeRole::Origin, 0);
        register(&mut c, t(0), 2, NodeRole::Relay, 1);
        c.handle_message(
            t(1),
            NodeId(1),
            Message::Announce {
                channel_name: "live".into(),
                public_key: [1; 32],
                channel: None,
                backup: false,
            },
        );
        drain_events(&mut c);
        let ch = c.channel_by_name("live").expect("announced").desc.id;

        c.handle_message(t(10), NodeId(1), report(ch, false));
        assert!(
            drain_events(&mut c).is_empty(),
            "a healthy report is no event"
        );
        let r = c.ingest_report(ch).expect("kept");
        assert_eq!(
            (r.origin, r.at, r.report.bitrate_in_kbps),
            (NodeId(1), t(10), 2500)
        );

        c.handle_message(t(20), NodeId(1), report(ch, true));
        let stalled = CoordEvent::EncoderStalled {
            channel: ch,
            origin: NodeId(1),
        };
        assert_eq!(drain_events(&mut c), vec![stalled]);
        c.handle_message(t(25), NodeId(1), report(ch, true));
        assert!(drain_events(&mut c).is_empty(), "one event per stall");
        assert!(c.ingest_report(ch).expect("kept").report.stalled);

        c.handle_message(t(30), NodeId(1), report(ch, false));
        let resumed = CoordEvent::EncoderResumed {
            channel: ch,
            origin: NodeId(1),
        };
        assert_eq!(drain_events(&mut c), vec![resumed]);

        // A stall that ends with the publisher gone.
        c.handle_message(t(32), NodeId(1), report(ch, true));
        drain_events(&mut c);
        let mut gone = report(ch, false);
        if let Message::IngestHealth(r) = &mut gone {
            r.publishing = false;
        }
        c.handle_message(t(34), NodeId(1), gone);
        let left = CoordEvent::EncoderLeft {
            channel: ch,
            origin: NodeId(1),
        };
        assert_eq!(drain_events(&mut c), vec![left]);
        c.handle_message(t(36), NodeId(1), report(ch, false));
        drain_events(&mut c);

        // A relay reporting the channel, and a report of an unknown channel:
        // refused, counted, the origin's report untouched.
        let invalid = c.stats().invalid_messages;
        c.handle_message(t(40), NodeId(2), report(ch, true));
        c.handle_message(t(41), NodeId(1), report(ChannelId(999), true));
        let events = drain_events(&mut c);
        assert_eq!(c.stats().invalid_messages, invalid + 2);
        assert!(matches!(
            events[..],
            [
                CoordEvent::Invalid {
                    from: NodeId(2),
                    why: "not the channel's origin",
                    ..
                },
                CoordEvent::Invalid {
                    from: NodeId(1),
                    why: "unknown channel",
                    ..
                }
            ]
        ));
        let r = c.ingest_report(ch).expect("kept");
        assert_eq!((r.at, r.report.stalled), (t(36), false));
        assert_eq!(c.ingest.len(), 1);
    }
}
