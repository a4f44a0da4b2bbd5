//! The demo (X6) runs end to end on this machine: viewers ramp up and down, the
//! hierarchy expands and contracts, nothing is lost, and `--report` has its fields.

mod support;

use std::time::Duration;
use support::*;

#[test]
fn demo_expands_contracts_and_reports() {
    let dir = temp_dir("demo");
    let report = dir.join("report.json");
    let mut demo = Proc::tiercast(
        "demo",
        &[
            "demo",
            "--duration",
            "14",
            "--viewers",
            "24",
            "--relay-capacity",
            "6",
            "--test-source",
            "--report",
            report.to_str().unwrap(),
        ],
        &dir,
    );
    let status = demo
        .wait_exit(Duration::from_secs(90))
        .expect("the demo ends by itself");
    assert!(status.success(), "demo exit status {status}");
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).expect("report written")).unwrap();
    eprintln!("demo report: {r}");
    for field in [
        "blocks_sent",
        "blocks_delivered",
        "blocks_missing",
        "continuity_index",
        "distribute_events",
        "consolidate_events",
        "max_active_relays",
    ] {
        assert!(r.get(field).is_some(), "report has {field}");
    }
    assert!(r["blocks_sent"].as_u64().unwrap() > 50);
    assert!(r["blocks_delivered"].as_u64().unwrap() > 500);
    assert_eq!(r["blocks_missing"], 0);
    assert!(
        r["distribute_events"].as_u64().unwrap() >= 1,
        "the hierarchy expanded"
    );
    assert!(
        r["consolidate_events"].as_u64().unwrap() >= 1,
        "and contracted"
    );
    assert!(r["max_active_relays"].as_u64().unwrap() > r["active_relays_at_end"].as_u64().unwrap());
    let _ = std::fs::remove_dir_all(&dir);
}
