//! A busy leader is not failed over (issue 12; X7, D7). Two coordinator
//! processes on one etcd member, lease 3 s; a relay and an origin know both
//! addresses. The leader is stopped (SIGSTOP) for 1.2 s, as a coordinator
//! stuck in a long computation would be: its nodes' links hear nothing for
//! more than 1.5 keep-alives, so the nodes ask the standby who leads
//! (`GET /leader`); it still names the stopped leader — its lease holds — so
//! nobody moves. After SIGCONT the same leader leads with the same epoch, the
//! nodes registered nowhere else (their logs) and follow the same epoch, and
//! the relay keeps its parent.

mod support;

use std::time::Duration;
use support::*;

fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .expect("kill(1)")
        .success();
    assert!(ok, "kill -{sig} {pid}");
}

#[test]
fn a_leader_stalled_within_its_lease_keeps_its_nodes() {
    let dir = temp_dir("e2e-etcd-busy");
    let etcd = EtcdCluster::start(1, &dir);
    let etcd_urls = etcd.urls.join(",");
    let ports: Vec<u16> = (0..2).map(|_| free_port()).collect();
    let urls: Vec<String> = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    let coords: Vec<Proc> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let name = format!("coordinator-{i}");
            let data = dir.join(&name);
            Proc::tiercast(
                &name,
                &[
                    "coordinator",
                    "--listen",
                    &format!("127.0.0.1:{p}"),
                    "--etcd",
                    &etcd_urls,
                    "--lease-ttl-s",
                    "3",
                    "--data-dir",
                    data.to_str().expect("utf-8 path"),
                ],
                &dir,
            )
        })
        .collect();
    let (first, epoch) = wait_for("one leader", Duration::from_secs(20), || leader_of(&urls));
    let all = urls.join(",");
    let relay_http = free_port();
    let _relays = relays_in_tiers(&all, &[relay_http], &dir);
    let _origin = test_origin("origin", &all, 500, &dir);
    let before = wait_for("the relay active", Duration::from_secs(20), || {
        active_parents(&urls[first]).filter(|p| p.len() == 1)
    });
    std::thread::sleep(Duration::from_secs(1));

    // What the nodes log from the stall on (at start they may have been sent
    // from the standby to the leader).
    let names = ["relay-t1", "origin"];
    let read = |n: &str| std::fs::read_to_string(dir.join(format!("{n}.log"))).expect("log");
    let offsets: Vec<usize> = names.iter().map(|n| read(n).len()).collect();
    let pid = coords[first].pid();
    signal(pid, "STOP");
    std::thread::sleep(Duration::from_millis(1200));
    signal(pid, "CONT");
    std::thread::sleep(Duration::from_secs(2));

    let (leading, epoch_now) = wait_for("a leader", Duration::from_secs(5), || leader_of(&urls));
    assert_eq!((leading, epoch_now), (first, epoch), "the same leader");
    let relay = status_json(&format!("http://127.0.0.1:{relay_http}")).expect("relay status");
    assert_eq!(relay["coordinator_epoch"].as_u64(), Some(epoch), "{relay}");
    assert_eq!(relay["registered"], true, "{relay}");
    let after = active_parents(&urls[first]).expect("leader status");
    assert_eq!(before, after, "the relay keeps its parent");
    let logs: Vec<(&str, String)> = names
        .iter()
        .zip(&offsets)
        .map(|(n, at)| (*n, read(n).get(*at..).expect("the log grew").to_string()))
        .collect();
    let asked = logs
        .iter()
        .filter(|(_, l)| l.contains("asking the others who leads"))
        .count();
    eprintln!("nodes that asked the standby who leads during the stall: {asked} of 2");
    assert!(
        asked > 0,
        "the stall was long enough to be heard as silence"
    );
    for (name, log) in &logs {
        for moved in [
            "registering there",
            "registering again at",
            "does not serve us",
        ] {
            assert!(
                !log.contains(moved),
                "{name} moved ({moved:?}) though its leader was only busy"
            );
        }
    }
    drop(coords);
    let _ = std::fs::remove_dir_all(&dir);
}
