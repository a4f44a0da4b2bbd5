//! An origin's ingest health on its `/metrics` (X4, X1's health): the last
//! [`IngestReport`] its driver handed the coordinator (one every 5 s, and at
//! once on a stall), in units of the names, with its age.

use super::node::flag;
use super::writer::Exposition;
use tiercast_proto::IngestReport;

/// Writes one channel's ingest metrics.
pub(super) fn write(e: &mut Exposition, channel: &str, age_s: f64, r: &IngestReport) {
    let l = [("channel", channel)];
    e.gauge(
        "tiercast_ingest_report_age_seconds",
        "Age of the ingest report the ingest metrics come from (one every 5 s, and at a stall).",
        &l,
        age_s,
    );
    e.gauge(
        "tiercast_ingest_publishing",
        "1 while an encoder is connected.",
        &l,
        flag(r.publishing),
    );
    e.gauge(
        "tiercast_ingest_bitrate_bits_per_second",
        "Ingest bitrate, averaged over 5 s.",
        &l,
        f64::from(r.bitrate_in_kbps) * 1000.0,
    );
    if let Some(ms) = r.keyframe_interval_ms {
        e.gauge(
            "tiercast_ingest_keyframe_interval_seconds",
            "Between the latest two keyframes.",
            &l,
            f64::from(ms) / 1000.0,
        );
    }
    e.counter(
        "tiercast_ingest_gaps_total",
        "Silences over 1 s while publishing.",
        &l,
        u64::from(r.gaps),
    );
    e.gauge(
        "tiercast_ingest_longest_gap_seconds",
        "The longest silence while publishing.",
        &l,
        f64::from(r.longest_gap_ms) / 1000.0,
    );
    e.counter(
        "tiercast_ingest_timestamp_jumps_total",
        "PCR steps the wall clock does not explain.",
        &l,
        u64::from(r.timestamp_jumps),
    );
    e.gauge(
        "tiercast_ingest_stalled",
        "1 while the encoder is silent past 3 s.",
        &l,
        flag(r.stalled),
    );
    e.counter(
        "tiercast_ingest_stalls_total",
        "Encoder stalls since the origin started.",
        &l,
        u64::from(r.stalls),
    );
}

#[cfg(test)]
mod tests {
    use super::super::node::{render, NodeExtras};
    use crate::node_driver::NodeSnapshot;
    use tiercast_proto::IngestReport;

    #[test]
    fn an_origins_ingest_report_in_units_of_the_name() {
        let report = IngestReport {
            publishing: true,
            bitrate_in_kbps: 840,
            keyframe_interval_ms: Some(1004),
            stalls: 2,
            ..IngestReport::default()
        };
        let extras = NodeExtras {
            ingest: vec![("live".into(), 1.5, report)],
            ..NodeExtras::default()
        };
        let page = render(&NodeSnapshot::default(), &extras);
        assert!(
            page.contains("tiercast_ingest_bitrate_bits_per_second{channel=\"live\"} 840000\n"),
            "{page}"
        );
        assert!(
            page.contains("tiercast_ingest_keyframe_interval_seconds{channel=\"live\"} 1.004\n")
        );
        assert!(page.contains("tiercast_ingest_stalls_total{channel=\"live\"} 2\n"));
        assert!(page.contains("tiercast_ingest_report_age_seconds{channel=\"live\"} 1.5\n"));
    }
}
