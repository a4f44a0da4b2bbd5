//! What a node says on its own stderr about its coordinator (issue 10, Must show
//! 5; D7, X3): with no coordinator listening it says "unreachable" within 5 s and
//! keeps retrying (with a backoff) until one comes up, then registers; with the
//! wrong cluster key it says the coordinator refused the key, within 5 s, and
//! keeps trying. Each cause is said once, not at every retry (issue 16: one
//! line, repeated every 30 s while it lasts): the retries show in the
//! registration that follows, and in the coordinator's refused admissions.

mod support;

use std::time::Duration;
use support::*;

/// How many lines of the node's log contain `what`.
fn said(dir: &std::path::Path, name: &str, what: &str) -> usize {
    std::fs::read_to_string(dir.join(format!("{name}.log")))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(what))
        .count()
}

#[test]
fn an_unreachable_coordinator_is_reported_within_5_s_and_retried_until_it_comes() {
    let dir = temp_dir("node-messages-unreachable");
    // Held until the coordinator starts: nothing else may take the port while
    // the relay tries it (a CI run once timed out waiting for the registration).
    let held = hold_free_port();
    let cport = held.port;
    let coordinator = format!("http://127.0.0.1:{cport}");
    let _relay = relay_proc("relay", &coordinator, "1", &[], &dir);
    wait_for("'unreachable' on stderr", Duration::from_secs(5), || {
        (said(&dir, "relay", "unreachable") >= 1).then_some(())
    });
    drop(held);
    let _coord = Proc::tiercast(
        "coordinator",
        &["coordinator", "--listen", &format!("127.0.0.1:{cport}")],
        &dir,
    );
    if try_wait_for(Duration::from_secs(10), || status_json(&coordinator)).is_none() {
        panic!(
            "the coordinator does not answer on {cport}\n{}",
            log_tails(&dir, 20)
        );
    }
    let registered = try_wait_for(Duration::from_secs(15), || {
        (said(&dir, "relay", "answers: registered") >= 1).then_some(())
    });
    assert!(
        registered.is_some(),
        "the relay did not register within 15 s of the coordinator answering\n{}",
        log_tails(&dir, 30)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_wrong_cluster_key_is_reported_within_5_s_and_retried() {
    let dir = temp_dir("node-messages-key");
    let cport = free_port();
    let coordinator = format!("http://127.0.0.1:{cport}");
    let _coord = Proc::tiercast(
        "coordinator",
        &["coordinator", "--listen", &format!("127.0.0.1:{cport}")],
        &dir,
    );
    wait_for("the coordinator answers", Duration::from_secs(10), || {
        status_json(&coordinator)
    });
    let wrong = "ab".repeat(32);
    let _relay = relay_proc("relay", &coordinator, "1", &["--cluster-key", &wrong], &dir);
    wait_for(
        "'refused us: cluster key mismatch' on stderr",
        Duration::from_secs(5),
        || (said(&dir, "relay", "refused us: cluster key mismatch") >= 1).then_some(()),
    );
    wait_for("it keeps trying", Duration::from_secs(12), || {
        let page = http_get(
            &format!("{coordinator}/metrics"),
            Duration::from_millis(500),
        )
        .ok()?;
        let refused: u64 = page
            .text()
            .lines()
            .find_map(|l| l.strip_prefix("tiercast_link_refused_admissions_total "))?
            .trim()
            .parse()
            .ok()?;
        (refused >= 2).then_some(())
    });
    assert_eq!(
        said(&dir, "relay", "cluster key mismatch"),
        1,
        "said once, not at every retry\n{}",
        log_tails(&dir, 20)
    );
    assert_eq!(
        said(&dir, "relay", "answers: registered"),
        0,
        "never registered with the wrong key"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
