//! Publish keys kept in the coordinator's store (issue 17, X1, X3), over real
//! processes: `tiercast publish-keys set` at the coordinator; an origin started
//! with `--publish-keys-from-coordinator` refuses HTTP publishers (503) until
//! the keys arrive, then takes the right key (200) and refuses a wrong (403) or
//! missing (401) one; a rotation at the coordinator refuses the old key and
//! takes the new one, with no restart; after the coordinator and the origin both
//! restart, the keys come back from the coordinator's store (nobody sets them
//! again); an empty set takes them away.

mod support;

use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};
use support::*;

/// `tiercast publish-keys set live [--key K]... --coordinator URL`: stdout, or
/// the failure's stdout + stderr.
fn set_keys(coordinator: &str, keys: &[&str]) -> Result<String, String> {
    let mut cmd = Command::new(BIN);
    cmd.args(["publish-keys", "set", "live", "--coordinator", coordinator]);
    for k in keys {
        cmd.args(["--key", k]);
    }
    let out = cmd
        .env("RUST_LOG", "warn")
        .output()
        .expect("run publish-keys");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    match out.status.success() {
        true => Ok(stdout),
        false => Err(format!("{stdout}{}", String::from_utf8_lossy(&out.stderr))),
    }
}

/// The status of one HTTP publish of a few null MPEG-TS packets with `key`
/// in the path (`None`: no key), 0 when there is no answer.
fn publish(port: u16, key: Option<&str>) -> u16 {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return 0;
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut body = Vec::new();
    for _ in 0..50 {
        let mut packet = vec![0xffu8; 188];
        packet[..4].copy_from_slice(&[0x47, 0x1f, 0xff, 0x10]);
        body.extend_from_slice(&packet);
    }
    let path = key.map_or("/ingest".to_string(), |k| format!("/ingest/{k}"));
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    if s.write_all(head.as_bytes()).is_err() {
        return 0;
    }
    let _ = s.write_all(&body);
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Waits until publishing with `key` answers `status`: the time it took.
fn until(port: u16, key: Option<&str>, status: u16, dir: &std::path::Path) -> Duration {
    let start = Instant::now();
    let mut last = 0;
    let found = try_wait_for(Duration::from_secs(15), || {
        last = publish(port, key);
        (last == status).then_some(())
    });
    assert!(
        found.is_some(),
        "publishing with {key:?} still answers {last}, not {status}\n{}",
        log_tails(dir, 30)
    );
    start.elapsed()
}

fn origin(name: &str, coordinator: &str, ingest: u16, dir: &std::path::Path) -> Proc {
    let http = format!("127.0.0.1:{ingest}");
    let origin = Proc::tiercast(
        name,
        &[
            "origin",
            "--coordinator",
            coordinator,
            "--channel",
            "live",
            "--http",
            &http,
            "--publish-keys-from-coordinator",
        ],
        dir,
    );
    wait_log_line(dir, name, "channel announced", Duration::from_secs(20));
    origin
}

#[test]
fn keys_set_at_the_coordinator_gate_the_origin_rotate_and_survive_restarts() {
    let dir = temp_dir("e2e-publish-keys-store");
    let data = dir.join("coordinator-data");
    let data = data.to_str().unwrap();
    let cport = free_port();
    let ingest = free_port();
    let coordinator = format!("http://127.0.0.1:{cport}");
    let listen = format!("127.0.0.1:{cport}");
    let coord_args = ["coordinator", "--listen", &listen, "--data-dir", data];
    let mut coord = Proc::tiercast("coordinator", &coord_args, &dir);
    let mut first = origin("origin", &coordinator, ingest, &dir);

    // No keys yet: refused until the coordinator's arrive.
    assert_eq!(
        publish(ingest, Some("k-one")),
        503,
        "{}",
        log_tails(&dir, 20)
    );
    let out = set_keys(&coordinator, &["k-one"]).expect("set k-one");
    assert_eq!(out.trim(), "ok: 1 publish keys for channel 'live'");
    let arrived = until(ingest, Some("k-one"), 200, &dir);
    println!(
        "keys in force at the origin {} ms after the set",
        arrived.as_millis()
    );
    assert_eq!(publish(ingest, Some("k-wrong")), 403);
    assert_eq!(publish(ingest, None), 401);

    // A rotation: the old key is refused, the new one taken; nothing restarts.
    set_keys(&coordinator, &["k-two"]).expect("set k-two");
    let rotated = until(ingest, Some("k-one"), 403, &dir);
    println!("rotation in force {} ms after the set", rotated.as_millis());
    assert_eq!(publish(ingest, Some("k-two")), 200);

    // Bad input: a key the origin could never be given, and another cluster key.
    let bad = set_keys(&coordinator, &["has/slash"]).expect_err("slash refused");
    assert!(bad.contains("not allowed"), "{bad}");
    let other_key = "22".repeat(32);
    let out = Command::new(BIN)
        .args(["publish-keys", "set", "live", "--key", "x"])
        .args(["--coordinator", &coordinator, "--cluster-key", &other_key])
        .output()
        .expect("run publish-keys");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("401"), "{err}");
    assert_eq!(
        publish(ingest, Some("k-two")),
        200,
        "a refused set changes nothing"
    );

    // Both restart; the keys come back from the coordinator's store.
    first.kill();
    coord.kill();
    let _coord = Proc::tiercast("coordinator-2", &coord_args, &dir);
    let _second = origin("origin-2", &coordinator, ingest, &dir);
    until(ingest, Some("k-two"), 200, &dir);
    assert_eq!(publish(ingest, Some("k-one")), 403);

    // An empty set takes the coordinator's keys away: waiting for them again.
    let out = set_keys(&coordinator, &[]).expect("clear");
    assert_eq!(out.trim(), "ok: 0 publish keys for channel 'live'");
    until(ingest, Some("k-two"), 503, &dir);
    let _ = std::fs::remove_dir_all(&dir);
}
