//! A relay with two parents keeps its viewer whole when one parent is killed
//! (Must show 4 of the foundation issue; V9 redundant retrieval, V10 crash case):
//! separate processes, SIGKILL of a tier-1 relay mid-stream, zero missing blocks at
//! the protocol viewer fed by the tier-2 relay, and the coordinator re-homes the
//! tier-2 relay to a new second parent.

mod support;

use std::time::Duration;
use support::*;

#[test]
fn killing_one_of_two_parents_loses_no_block() {
    let dir = temp_dir("e2e-failover");
    let cport = free_port();
    let coordinator = format!("http://127.0.0.1:{cport}");
    let _coord = Proc::tiercast(
        "coordinator",
        &[
            "coordinator",
            "--listen",
            &format!("127.0.0.1:{cport}"),
            "--parents-per-relay",
            "2",
        ],
        &dir,
    );
    let relay = |id: &str, tier: &str| {
        Proc::tiercast(
            &format!("relay-{id}"),
            &[
                "relay",
                "--coordinator",
                &coordinator,
                "--id",
                id,
                "--tier",
                tier,
                "--capacity",
                "10",
            ],
            &dir,
        )
    };
    let mut tier1: std::collections::BTreeMap<u64, Proc> = [11u64, 12, 13]
        .into_iter()
        .map(|id| (id, relay(&id.to_string(), "1")))
        .collect();
    let _c = relay("21", "2");
    let _origin = Proc::tiercast(
        "origin",
        &[
            "origin",
            "--coordinator",
            &coordinator,
            "--channel",
            "live",
            "--test-source",
            "2000",
        ],
        &dir,
    );
    let parents: Vec<u64> = wait_for(
        "relay 21 active with two parents",
        Duration::from_secs(20),
        || {
            let s = status_json(&coordinator)?;
            let active = s["channels"][0]["active"].as_array()?.clone();
            let c = active.iter().find(|x| x["node"] == 21)?;
            let p: Vec<u64> = c["parents"]
                .as_array()?
                .iter()
                .filter_map(|p| p.as_u64())
                .collect();
            (p.len() == 2).then_some(p)
        },
    );
    let victim = parents[0];

    let report = dir.join("viewer.json");
    let mut viewer = Proc::tiercast(
        "viewer",
        &[
            "viewer",
            "--coordinator",
            &coordinator,
            "--channel",
            "live",
            "--duration",
            "14",
            "--report",
            report.to_str().unwrap(),
        ],
        &dir,
    );
    std::thread::sleep(Duration::from_secs(5));
    tier1.get_mut(&victim).expect("a tier-1 relay").kill();
    wait_for(
        "relay 21 re-homed away from the dead parent",
        Duration::from_secs(10),
        || {
            let s = status_json(&coordinator)?;
            let active = s["channels"][0]["active"].as_array()?.clone();
            let c = active.iter().find(|x| x["node"] == 21)?;
            let parents: Vec<u64> = c["parents"]
                .as_array()?
                .iter()
                .filter_map(|p| p.as_u64())
                .collect();
            (parents.len() == 2 && !parents.contains(&victim)).then_some(())
        },
    );
    viewer
        .wait_exit(Duration::from_secs(30))
        .expect("viewer finishes");
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).expect("viewer report"))
            .expect("report is JSON");
    eprintln!("viewer report: {r}");
    assert_eq!(
        r["relays"],
        serde_json::json!([21]),
        "the viewer was fed by the tier-2 relay"
    );
    assert!(
        r["blocks_received"].as_u64().unwrap() >= 80,
        "the stream flowed: {r}"
    );
    assert_eq!(
        r["blocks_missing"], 0,
        "no block lost when a parent died: {r}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
