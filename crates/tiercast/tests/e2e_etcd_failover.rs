//! Three coordinator processes on a 3-member etcd cluster over real sockets
//! (issue 12, Must show 1; X7, D7). One leads (it holds the leader key under a
//! lease of 1 s) and serves the channel streaming through two tiers of relays;
//! the nodes know all three addresses. The leader is SIGKILLed: within 3 s
//! another leads, with a higher epoch, and its `/watch` answers 302 to a relay
//! (a standby's `/watch` redirects to it); the relays keep their parents and
//! follow the new epoch only; the protocol viewer misses no block. Then one etcd
//! member is SIGKILLed: the service goes on (a new viewer, given the dead
//! coordinator's address first, moves on, is placed and plays).

mod support;

use std::time::{Duration, Instant};
use support::*;

/// The relays' coordinator epochs and stale orders, from their own `/status`.
fn relay_epochs(relays: &[String]) -> Vec<(u64, u64)> {
    relays
        .iter()
        .filter_map(|r| {
            let s = status_json(r)?;
            Some((
                s["coordinator_epoch"].as_u64()?,
                s["stale_orders"].as_u64()?,
            ))
        })
        .collect()
}

#[test]
fn a_killed_leader_is_replaced_within_3_s_and_an_etcd_member_lost_changes_nothing() {
    let dir = temp_dir("e2e-etcd-failover");
    let mut etcd = EtcdCluster::start(3, &dir);
    let etcd_urls = etcd.urls.join(",");
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let urls: Vec<String> = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    let mut coords: Vec<Option<Proc>> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            Some(etcd_coordinator(
                &format!("coordinator-{i}"),
                *p,
                &etcd_urls,
                &dir,
            ))
        })
        .collect();
    let (first, epoch1) = wait_for("one leader", Duration::from_secs(20), || leader_of(&urls));
    eprintln!("coordinator {first} leads, epoch {epoch1}");
    let all = urls.join(",");
    let relay_http: Vec<u16> = (0..2).map(|_| free_port()).collect();
    let relay_urls: Vec<String> = relay_http
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    let _relays = relays_in_tiers(&all, &relay_http, &dir);
    let _origin = test_origin("origin", &all, 1000, &dir);
    wait_for("2 relays active", Duration::from_secs(20), || {
        active_parents(&urls[first]).filter(|p| p.len() == 2)
    });
    let report = dir.join("viewer.json");
    let mut viewer = protocol_viewer("viewer", &all, 14, &report, &dir);
    std::thread::sleep(Duration::from_secs(3));
    let before = active_parents(&urls[first]).expect("status");
    // A standby sends viewers to the leader.
    let standby = (first + 1) % 3;
    let (status, location) = watch_of(&urls[standby], "live").expect("the standby answers /watch");
    assert_eq!(status, 302, "a standby redirects /watch");
    assert!(
        location.starts_with(&format!("{}/watch/", urls[first])),
        "to the leader's /watch: {location}"
    );

    let killed_at = Instant::now();
    coords[first].take().expect("the leader").kill();
    // For reading the processes' logs against the kill (TIERCAST_KEEP_LOGS=1).
    eprintln!(
        "leader killed at {:?} since the Unix epoch",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
    );
    let others: Vec<usize> = (0..3).filter(|i| *i != first).collect();
    let (second, served) = wait_for(
        "a new leader places a viewer",
        Duration::from_secs(15),
        || {
            others.iter().find_map(|i| {
                let (status, location) = watch_of(&urls[*i], "live")?;
                (status == 302 && location.contains("/live/")).then(|| (*i, Instant::now()))
            })
        },
    );
    let took = served - killed_at;
    let epoch2 = status_json(&urls[second]).and_then(|s| s["epoch"].as_u64());
    let epoch2 = epoch2.expect("the new leader's epoch");
    eprintln!(
        "coordinator {second} leads with epoch {epoch2}; /watch answered 302 to a relay {took:?} after the kill"
    );
    assert!(
        took <= Duration::from_secs(3),
        "served again within 3 s ({took:?})"
    );
    assert!(epoch2 > epoch1, "a higher epoch: {epoch2} after {epoch1}");
    let after = wait_for("both relays active again", Duration::from_secs(5), || {
        active_parents(&urls[second]).filter(|p| p.len() == 2)
    });
    assert_eq!(before, after, "every relay keeps its parents");
    let epochs = wait_for(
        "every relay follows the new epoch",
        Duration::from_secs(5),
        || {
            let e = relay_epochs(&relay_urls);
            (e.len() == 2 && e.iter().all(|(ep, _)| *ep == epoch2)).then_some(e)
        },
    );
    eprintln!("relays (epoch, stale orders ignored): {epochs:?}");

    assert!(viewer.wait_exit(Duration::from_secs(25)).is_some());
    let v = read_report(&report);
    eprintln!("protocol viewer: {v}");
    assert!(v["blocks_received"].as_u64().unwrap() > 50, "{v}");
    assert_eq!(v["blocks_missing"], 0, "the data plane went on: {v}");

    // One etcd member lost: the leader keeps its lease through the others.
    etcd.kill(0);
    std::thread::sleep(Duration::from_secs(3));
    let (now_leading, epoch3) = wait_for("a leader", Duration::from_secs(5), || leader_of(&urls));
    eprintln!("after an etcd member's loss: coordinator {now_leading} leads, epoch {epoch3}");
    assert_eq!((now_leading, epoch3), (second, epoch2), "the leader stays");
    let report2 = dir.join("viewer-2.json");
    // Given the dead coordinator first: it moves on to the others.
    let dead_first = format!("{},{all}", urls[first]);
    let mut viewer2 = protocol_viewer("viewer-2", &dead_first, 5, &report2, &dir);
    assert!(viewer2.wait_exit(Duration::from_secs(20)).is_some());
    let v2 = read_report(&report2);
    eprintln!("a new protocol viewer: {v2}");
    assert!(v2["blocks_received"].as_u64().unwrap() > 20, "{v2}");
    assert_eq!(v2["blocks_missing"], 0, "{v2}");
    let epochs = relay_epochs(&relay_urls);
    assert!(epochs.iter().all(|(ep, _)| *ep == epoch2), "{epochs:?}");
    drop(coords);
    if std::env::var_os("TIERCAST_KEEP_LOGS").is_some() {
        eprintln!("logs kept in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
