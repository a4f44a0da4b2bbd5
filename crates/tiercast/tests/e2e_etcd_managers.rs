//! Manager ids spread over coordinator processes (issue 12, D7 and X7; Must
//! shows 1 and 6), over real sockets on a 3-member etcd cluster. Coordinator A
//! holds manager 0, B manager 1, C is a spare. Channel "live" (its origin, two
//! tiers of relays, a protocol viewer) belongs to manager 0, channel "news" to
//! manager 1; every node is given all three addresses, A's first, so manager
//! 1's nodes are first told by A where B is (`ServedElsewhere`, not dropped).
//! Each holder carries only its own cell's nodes; a `/watch` of the other
//! cell's channel, at any process, is redirected to its holder. A is
//! SIGKILLed: the spare C takes manager 0 — and only it — within 3 s, with a
//! higher epoch; "live"'s relays, given A's address only and told the others
//! by A, keep their parents and follow C's epoch; B and "news" see nothing
//! (same epoch, same nodes); no viewer misses a block. A restarted, standing
//! for manager 0 again, stands by: C keeps it, nothing moves.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use support::*;

/// (manager held, epoch) of the coordinator at `url`, when it holds one.
fn holds(url: &str) -> Option<(u64, u64)> {
    let s = status_json(url)?;
    Some((s["manager"].as_u64()?, s["epoch"].as_u64()?))
}

/// The node ids a coordinator carries.
fn node_ids(url: &str) -> Option<BTreeSet<u64>> {
    let s = status_json(url)?;
    Some(
        s["nodes"]
            .as_array()?
            .iter()
            .filter_map(|n| n["id"].as_u64())
            .collect(),
    )
}

/// The relays' (coordinator epoch, stale orders) from their own `/status`.
fn relay_epochs(relays: &[String]) -> Vec<u64> {
    relays
        .iter()
        .filter_map(|r| status_json(r)?["coordinator_epoch"].as_u64())
        .collect()
}

fn urls(ports: &[u16]) -> Vec<String> {
    ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect()
}

#[test]
fn each_manager_id_is_held_by_one_process_and_a_spare_takes_a_killed_holders_id_alone() {
    let dir = temp_dir("e2e-etcd-managers");
    let _etcd = EtcdCluster::start(3, &dir);
    let etcd_urls = _etcd.urls.join(",");
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let coord = urls(&ports);
    let roles = ["0", "1", "spare"];
    let mut coords: Vec<Option<Proc>> = ports
        .iter()
        .zip(roles)
        .enumerate()
        .map(|(i, (p, m))| {
            Some(etcd_coordinator_for(
                &format!("coordinator-{i}"),
                *p,
                &etcd_urls,
                m,
                &dir,
            ))
        })
        .collect();
    let (m0, epoch0) = wait_for("A holds manager 0", Duration::from_secs(20), || {
        holds(&coord[0])
    });
    let (m1, epoch1) = wait_for("B holds manager 1", Duration::from_secs(20), || {
        holds(&coord[1])
    });
    assert_eq!((m0, m1), (0, 1));
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        holds(&coord[2]).is_none(),
        "the spare holds nothing while both are held"
    );
    eprintln!("A holds 0 (epoch {epoch0}), B holds 1 (epoch {epoch1}), C is a spare");

    let all = coord.join(",");
    let live_http: Vec<u16> = (0..2).map(|_| free_port()).collect();
    let news_http: Vec<u16> = (0..2).map(|_| free_port()).collect();
    let live_relays = urls(&live_http);
    let news_relays = urls(&news_http);
    // live's relays and origin are given A's address only: they learn B's and
    // C's from A (`Coordinators`, after `Registered`), and find C through them.
    let _r0 = relays_in_tiers_of(
        "live-relay",
        &coord[0],
        &live_http,
        &["--manager-id", "0"],
        &dir,
    );
    let _r1 = relays_in_tiers_of("news-relay", &all, &news_http, &["--manager-id", "1"], &dir);
    let _o0 = test_origin_of(
        "live-origin",
        &all,
        "live",
        1000,
        &["--manager-id", "0"],
        &dir,
    );
    let _o1 = test_origin_of(
        "news-origin",
        &all,
        "news",
        1000,
        &["--manager-id", "1"],
        &dir,
    );
    wait_for(
        "live's 2 relays active at A",
        Duration::from_secs(20),
        || active_parents(&coord[0]).filter(|p| p.len() == 2),
    );
    wait_for(
        "news's 2 relays active at B",
        Duration::from_secs(20),
        || active_parents(&coord[1]).filter(|p| p.len() == 2),
    );
    // Each holder carries its own cell only: 2 relays and an origin.
    let (a_nodes, b_nodes) = (node_ids(&coord[0]).unwrap(), node_ids(&coord[1]).unwrap());
    eprintln!("A carries {a_nodes:?}, B carries {b_nodes:?}");
    assert_eq!(a_nodes.len(), 3, "A: {a_nodes:?}");
    assert_eq!(b_nodes.len(), 3, "B: {b_nodes:?}");
    assert!(a_nodes.is_disjoint(&b_nodes));
    // Each holder maps its channels to its id in etcd; every process reads it.
    wait_for("both channels mapped", Duration::from_secs(5), || {
        let d = status_json(&coord[2])?["directory"]["channels"].clone();
        (d["live"] == 0 && d["news"] == 1).then_some(())
    });

    // Must show 6: manager 1's nodes spoke to A first (its address is first in
    // their list) and were told where B is, not dropped.
    let told = status_json(&coord[0]).unwrap()["stats"]["served_elsewhere"].clone();
    eprintln!("A told {told} messages of manager 1's nodes where B is");
    assert!(
        told.as_u64().unwrap() >= 3,
        "news's origin and 2 relays: {told}"
    );

    let live_report = dir.join("live-viewer.json");
    let news_report = dir.join("news-viewer.json");
    let mut live_viewer = protocol_viewer_of(
        "live-viewer",
        &all,
        "live",
        &["--manager-id", "0"],
        14,
        &live_report,
        &dir,
    );
    let mut news_viewer = protocol_viewer_of(
        "news-viewer",
        &all,
        "news",
        &["--manager-id", "1"],
        14,
        &news_report,
        &dir,
    );
    std::thread::sleep(Duration::from_secs(3));

    // A /watch of the other cell's channel goes to its holder, from any process.
    for (at, channel, holder) in [
        (0, "news", 1),
        (1, "live", 0),
        (2, "live", 0),
        (2, "news", 1),
    ] {
        let (status, location) = watch_of(&coord[at], channel).expect("/watch answers");
        assert_eq!(status, 302, "/watch/{channel} at {at}");
        assert!(
            location.starts_with(&format!("{}/watch/{channel}", coord[holder])),
            "/watch/{channel} at {at} → the holder's /watch: {location}"
        );
    }
    let live_before = active_parents(&coord[0]).unwrap();
    let news_before = active_parents(&coord[1]).unwrap();
    let news_epochs = relay_epochs(&news_relays);

    let killed_at = Instant::now();
    coords[0].take().expect("A").kill();
    let served = wait_for("manager 0 served again", Duration::from_secs(15), || {
        [1, 2].iter().find_map(|i| {
            let (status, location) = watch_of(&coord[*i], "live")?;
            (status == 302 && location.contains("/live/")).then(Instant::now)
        })
    });
    let took = served - killed_at;
    let (m, epoch_c) = holds(&coord[2]).expect("the spare holds an id");
    eprintln!("the spare holds manager {m} with epoch {epoch_c}; /watch/live answered 302 to a relay {took:?} after the kill");
    assert_eq!(m, 0, "the spare took the killed holder's id");
    assert!(
        took <= Duration::from_secs(3),
        "served again within 3 s ({took:?})"
    );
    assert!(epoch_c > epoch0, "a higher epoch: {epoch_c} after {epoch0}");
    assert_eq!(
        holds(&coord[1]),
        Some((1, epoch1)),
        "B keeps manager 1, same epoch"
    );
    let live_after = wait_for("live's relays back at C", Duration::from_secs(5), || {
        active_parents(&coord[2]).filter(|p| p.len() == 2)
    });
    assert_eq!(live_before, live_after, "live's relays keep their parents");
    wait_for(
        "live's relays follow C's epoch",
        Duration::from_secs(5),
        || {
            let e = relay_epochs(&live_relays);
            (e.len() == 2 && e.iter().all(|ep| *ep == epoch_c)).then_some(())
        },
    );
    assert_eq!(
        active_parents(&coord[1]).unwrap(),
        news_before,
        "news untouched"
    );
    assert_eq!(
        relay_epochs(&news_relays),
        news_epochs,
        "news's relays' epoch unchanged"
    );
    let b_now = node_ids(&coord[1]).unwrap();
    assert!(
        b_nodes.is_subset(&b_now),
        "B lost no node: {b_nodes:?} then {b_now:?}"
    );

    // A restarts, standing for manager 0 again: C holds it, so A stands by and
    // nothing moves (the same holder, epoch and parents).
    coords[0] = Some(etcd_coordinator_for(
        "coordinator-0-again",
        ports[0],
        &etcd_urls,
        "0",
        &dir,
    ));
    let a_again = wait_for("A back as a standby", Duration::from_secs(10), || {
        let s = status_json(&coord[0])?;
        (s["role"] == "standby").then_some(s)
    });
    std::thread::sleep(Duration::from_secs(2));
    eprintln!(
        "A restarted: {} (leader {})",
        a_again["role"], a_again["leader"]
    );
    assert_eq!(
        a_again["leader"],
        coord[2].trim_start_matches("http://"),
        "A names C"
    );
    assert_eq!(holds(&coord[2]), Some((0, epoch_c)), "C keeps manager 0");
    assert!(holds(&coord[0]).is_none(), "A holds nothing");
    assert_eq!(
        active_parents(&coord[2]).unwrap(),
        live_before,
        "live's parents unchanged"
    );
    let e = relay_epochs(&live_relays);
    assert!(e.len() == 2 && e.iter().all(|ep| *ep == epoch_c), "{e:?}");

    for (v, report) in [
        (&mut live_viewer, &live_report),
        (&mut news_viewer, &news_report),
    ] {
        assert!(v.wait_exit(Duration::from_secs(25)).is_some());
        let r = read_report(report);
        eprintln!(
            "{}: received {}, missing {}, longest gap {} ms",
            report.display(),
            r["blocks_received"],
            r["blocks_missing"],
            r["longest_gap_ms"]
        );
        assert!(r["blocks_received"].as_u64().unwrap() > 50, "{r}");
        assert_eq!(r["blocks_missing"], 0, "no block lost: {r}");
    }
    drop(coords);
    let _ = std::fs::remove_dir_all(&dir);
}
