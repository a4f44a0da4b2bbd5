//! The coordinator restarted over real sockets (issue 10, Must show 1; D7): with
//! a channel streaming through two tiers of relays to a protocol viewer, the
//! coordinator is SIGKILLed and started again with the same arguments. The data
//! plane does not need it: the viewer misses no block. The new coordinator's
//! endpoint recognises the old connections (connection ids and stateless-reset
//! key derived from the cluster key), resets them, and every node registers again
//! at once; the origin announces its channel again with the id it holds. Within
//! one heartbeat interval of the coordinator answering HTTP again, `/watch`
//! answers 302, and every relay keeps its parents. (The node's link to the
//! coordinator idles out after 2 s and each handshake with it is started afresh
//! after at most 1 s: before, the first packet to reach the new coordinator
//! waited for QUIC's backed-off retransmissions, 1.4 s after it came up. Down
//! 0.3 / 1 / 2 / 4 s: served again 0.20 / 0.80 / 0.40 / 0.20 s after it is up.)
//! The restarted coordinator's epoch, from its store, is one more than before.

mod support;

use std::time::{Duration, Instant};
use support::*;

/// Heartbeat interval of every node (the default).
const HEARTBEAT: Duration = Duration::from_millis(1000);

fn watch_status(coordinator: &str) -> Option<u16> {
    http_get(
        &format!("{coordinator}/watch/live"),
        Duration::from_millis(100),
    )
    .ok()
    .map(|r| r.status)
}

#[test]
fn a_restarted_coordinator_serves_the_channel_within_a_heartbeat_and_keeps_the_overlay() {
    let dir = temp_dir("e2e-coordinator-restart");
    let cport = free_port();
    let coordinator = format!("http://127.0.0.1:{cport}");
    let coord_args = ["coordinator", "--listen", &format!("127.0.0.1:{cport}")];
    let mut coord = Proc::tiercast("coordinator-1", &coord_args, &dir);
    let _r1 = relay_proc("relay-t1", &coordinator, "1", &[], &dir);
    let _r2 = relay_proc("relay-t2", &coordinator, "2", &[], &dir);
    let _origin = test_origin("origin", &coordinator, 1000, &dir);
    wait_for("2 relays active", Duration::from_secs(20), || {
        active_parents(&coordinator).filter(|p| p.len() == 2)
    });
    let report = dir.join("viewer.json");
    let mut viewer = protocol_viewer("viewer", &coordinator, 12, &report, &dir);
    std::thread::sleep(Duration::from_secs(3));
    let before = active_parents(&coordinator).expect("status");
    let epoch = status_json(&coordinator).and_then(|s| s["epoch"].as_u64());
    let epoch = epoch.expect("the coordinator's epoch in /status");
    coord.kill();
    std::thread::sleep(Duration::from_secs(2));
    let _coord2 = Proc::tiercast("coordinator-2", &coord_args, &dir);
    let up = wait_for(
        "the new coordinator answers",
        Duration::from_secs(10),
        || watch_status(&coordinator).map(|_| Instant::now()),
    );
    let served = wait_for("/watch answers 302 again", Duration::from_secs(10), || {
        (watch_status(&coordinator)? == 302).then(Instant::now)
    });
    let took = served - up;
    eprintln!("/watch answered 302 {took:?} after the restarted coordinator came up");
    assert!(
        took <= HEARTBEAT,
        "served again within one heartbeat interval ({took:?})"
    );
    let after = wait_for("both relays active again", Duration::from_secs(5), || {
        active_parents(&coordinator).filter(|p| p.len() == 2)
    });
    assert_eq!(before, after, "every relay keeps its parents");
    let epoch_after = status_json(&coordinator).and_then(|s| s["epoch"].as_u64());
    assert_eq!(
        epoch_after,
        Some(epoch + 1),
        "the restarted coordinator's orders carry the next epoch (D7, X7)"
    );

    assert!(viewer.wait_exit(Duration::from_secs(20)).is_some());
    let v = read_report(&report);
    eprintln!("protocol viewer: {v}");
    assert!(v["blocks_received"].as_u64().unwrap() > 50, "{v}");
    assert_eq!(v["blocks_missing"], 0, "the data plane went on: {v}");
    let _ = std::fs::remove_dir_all(&dir);
}
