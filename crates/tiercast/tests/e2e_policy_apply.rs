//! Operators' policies applied live over real sockets (issue 11 must show 5 and
//! 7; C3, C4's reason): a coordinator, relays in "eu" and "cn" and an origin run
//! as processes; `tiercast policy apply` installs a geo block on channel "live"
//! for "cn" and `/watch/live?region=cn` answers `451` with the policy's reason
//! while "eu" (and a viewer naming no region) is still redirected. A file naming
//! an unknown region is refused with the line and the reason and the running
//! policies stay; a request signed with another key, or not signed, gets `401`.

mod support;

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;
use support::*;

const GEO: &str = r#"# geo block for the e2e test
[[provider.geo_block]]
name = "live-rights"
regions = ["cn"]
channels = ["live"]
reason = "live rights do not cover this region"
"#;

fn watch(coordinator: &str, region: &str) -> Option<HttpResponse> {
    http_get(
        &format!("{coordinator}/watch/live?region={region}"),
        Duration::from_millis(300),
    )
    .ok()
}

/// A `POST /policy` without `Authorization`: the status.
fn unsigned_post(port: u16, body: &str) -> u16 {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "POST /policy HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Coordinator (with `coord_extra`), a tier-1 relay in "eu" and one in "cn", a
/// test origin; returns once `/watch/live?region=eu` answers 302.
pub fn start_cluster(dir: &Path, cport: u16, coord_extra: &[&str]) -> (Proc, Vec<Proc>) {
    let coordinator = format!("http://127.0.0.1:{cport}");
    let listen = format!("127.0.0.1:{cport}");
    let mut args = vec!["coordinator", "--listen", &listen];
    args.extend_from_slice(coord_extra);
    let coord = Proc::tiercast("coordinator", &args, dir);
    let nodes = vec![
        relay_proc("relay-eu", &coordinator, "1", &["--region", "eu"], dir),
        relay_proc("relay-cn", &coordinator, "1", &["--region", "cn"], dir),
        test_origin("origin", &coordinator, 500, dir),
    ];
    wait_for("the eu relay serves live", Duration::from_secs(20), || {
        (watch(&coordinator, "eu")?.status == 302).then_some(())
    });
    // Both relays and the origin registered before a policy names their regions
    // (a file naming a region no node has registered in is refused: under load
    // the cn relay registered after the first apply).
    wait_for("every node registered", Duration::from_secs(20), || {
        (nodes_with_sessions(&coordinator, 1) >= 3).then_some(())
    });
    (coord, nodes)
}

#[test]
fn policy_apply_geo_blocks_a_region_with_451_and_refuses_bad_files_and_keys() {
    let dir = temp_dir("e2e-policy-apply");
    let cport = free_port();
    let coordinator = format!("http://127.0.0.1:{cport}");
    let (_coord, _nodes) = start_cluster(&dir, cport, &[]);
    assert_eq!(watch(&coordinator, "cn").map(|r| r.status), Some(302));

    let geo = dir.join("geo.toml");
    std::fs::write(&geo, GEO).unwrap();
    let (ok, out) = apply_policy(&coordinator, &geo, &[]);
    assert!(ok, "{out}");
    assert_eq!(out.trim(), "ok: 1 rules");

    let r = watch(&coordinator, "cn").expect("answer");
    assert_eq!(r.status, 451, "{}", r.text());
    assert_eq!(r.text().trim(), "live rights do not cover this region");
    assert_eq!(watch(&coordinator, "eu").map(|r| r.status), Some(302));
    assert_eq!(watch(&coordinator, "").map(|r| r.status), Some(302));

    // Unknown region: refused with the line, and the geo block stays.
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, GEO.replace("\"cn\"", "\"mars\"")).unwrap();
    let (ok, out) = apply_policy(&coordinator, &bad, &[]);
    assert!(!ok, "{out}");
    assert!(out.contains("line 4") && out.contains("mars"), "{out}");
    assert_eq!(watch(&coordinator, "cn").map(|r| r.status), Some(451));

    // Another cluster key, or none: 401, nothing changed.
    let empty = dir.join("empty.toml");
    std::fs::write(&empty, "").unwrap();
    let other_key = "11".repeat(32);
    let (ok, out) = apply_policy(&coordinator, &empty, &["--cluster-key", &other_key]);
    assert!(!ok && out.contains("401"), "{out}");
    assert_eq!(unsigned_post(cport, ""), 401);
    assert_eq!(watch(&coordinator, "cn").map(|r| r.status), Some(451));

    // The event log records the refusal with its rule.
    let status = status_json(&coordinator).expect("status");
    let events = status["events"].to_string();
    assert!(
        events.contains("GeoBlocked") && events.contains("live-rights"),
        "{events}"
    );

    // An empty file lifts the block.
    let (ok, out) = apply_policy(&coordinator, &empty, &[]);
    assert!(ok && out.trim() == "ok: 0 rules", "{out}");
    assert_eq!(watch(&coordinator, "cn").map(|r| r.status), Some(302));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Nodes whose history in `/status` counts at least `sessions` sessions.
fn nodes_with_sessions(coordinator: &str, sessions: u64) -> usize {
    status_json(coordinator)
        .and_then(|s| {
            let h = s["history"].as_array()?.clone();
            Some(
                h.iter()
                    .filter(|n| n["sessions"].as_u64().unwrap_or(0) >= sessions)
                    .count(),
            )
        })
        .unwrap_or(0)
}

/// Issue 11 items 5 and 6: the policies in force and the node history survive
/// a coordinator killed with SIGKILL and started again with the same
/// `--data-dir`: the geo block answers 451 again once the origin has announced
/// its channel to the new coordinator, and the relays' and the origin's history
/// goes on (their registrations with the new coordinator are second sessions).
#[test]
fn a_coordinator_restarted_with_its_data_dir_keeps_the_geo_block_and_the_history() {
    let dir = temp_dir("e2e-policy-restart");
    let cport = free_port();
    let coordinator = format!("http://127.0.0.1:{cport}");
    let data = dir.join("coordinator-data");
    let data_arg = data.to_str().expect("UTF-8 path").to_string();
    let save = ["--history-save-ms", "200"];
    let (mut coord, _nodes) =
        start_cluster(&dir, cport, &["--data-dir", &data_arg, save[0], save[1]]);
    let geo = dir.join("geo.toml");
    std::fs::write(&geo, GEO).unwrap();
    let (ok, out) = apply_policy(&coordinator, &geo, &[]);
    assert!(ok, "{out}");
    assert_eq!(watch(&coordinator, "cn").map(|r| r.status), Some(451));
    assert_eq!(
        nodes_with_sessions(&coordinator, 1),
        3,
        "2 relays, 1 origin"
    );
    assert_eq!(nodes_with_sessions(&coordinator, 2), 0);
    // Two saves of the history at least.
    std::thread::sleep(Duration::from_millis(500));

    coord.kill();
    let listen = format!("127.0.0.1:{cport}");
    let args = [
        "coordinator",
        "--listen",
        &listen,
        "--data-dir",
        &data_arg,
        save[0],
        save[1],
    ];
    let _coord2 = Proc::tiercast("coordinator-2", &args, &dir);
    wait_for("the channel is back", Duration::from_secs(15), || {
        (watch(&coordinator, "eu")?.status == 302).then_some(())
    });
    let r = watch(&coordinator, "cn").expect("answer");
    assert_eq!(r.status, 451, "{}", r.text());
    assert_eq!(r.text().trim(), "live rights do not cover this region");
    wait_for(
        "every node in its second session",
        Duration::from_secs(10),
        || (nodes_with_sessions(&coordinator, 2) == 3).then_some(()),
    );
    let _ = std::fs::remove_dir_all(&dir);
}
