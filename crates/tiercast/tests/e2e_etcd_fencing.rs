//! A leader cut off from etcd (issue 12, Must show 3; X7): coordinator A reaches
//! etcd only through a proxy of the test's, coordinator B directly. A leads a
//! channel streaming through two tiers of relays; the proxy then swallows every
//! request (connections accepted, nothing forwarded, as a firewall that drops
//! packets would). A's keep-alives go unanswered: it stops issuing orders when
//! its lease ends — by its own clock, no later than 1 s (the TTL) after the
//! last keep-alive it sent was answered — and says so in `/status`; B is
//! elected only after etcd expired that lease, with a higher epoch, and the
//! relays follow B's epoch and keep their parents; the viewer misses nothing.
//! When the proxy heals, A stays a standby and names B as the leader.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::*;

/// A TCP proxy to `target` that can be cut: then it accepts and holds
/// connections but forwards nothing.
struct Proxy {
    port: u16,
    cut: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let cut = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let held: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (c, s) = (cut.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        if c.load(Ordering::Relaxed) {
                            held.lock().expect("held").push(client);
                            continue;
                        }
                        let Ok(server) = TcpStream::connect(&target) else {
                            continue;
                        };
                        pipe(
                            client.try_clone().expect("clone"),
                            server.try_clone().expect("clone"),
                            c.clone(),
                        );
                        pipe(server, client, c.clone());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Proxy { port, cut, stop }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Copies `from` to `to` until either ends or the proxy is cut.
fn pipe(mut from: TcpStream, mut to: TcpStream, cut: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let _ = from.set_read_timeout(Some(Duration::from_millis(50)));
        let mut buf = [0u8; 16 * 1024];
        loop {
            if cut.load(Ordering::Relaxed) {
                return;
            }
            match from.read(&mut buf) {
                Ok(0) => {
                    let _ = to.shutdown(std::net::Shutdown::Write);
                    return;
                }
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return,
            }
        }
    });
}

fn role(url: &str) -> Option<(String, Option<u64>, Option<String>)> {
    let s = status_json(url)?;
    Some((
        s["role"].as_str()?.to_string(),
        s["epoch"].as_u64(),
        s["leader"].as_str().map(String::from),
    ))
}

#[test]
fn a_leader_cut_off_from_etcd_stops_ordering_when_its_lease_ends_and_its_successor_wins() {
    let dir = temp_dir("e2e-etcd-fencing");
    let etcd = EtcdCluster::start(1, &dir);
    let proxy = Proxy::start(etcd.urls[0].trim_start_matches("http://").to_string());
    let ports = [free_port(), free_port()];
    let urls: Vec<String> = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    let _a = etcd_coordinator("coordinator-a", ports[0], &proxy.url(), &dir);
    let epoch_a = wait_for("A leads", Duration::from_secs(20), || {
        let (r, e, _) = role(&urls[0])?;
        (r == "leader").then_some(e?)
    });
    let _b = etcd_coordinator("coordinator-b", ports[1], &etcd.urls[0], &dir);
    wait_for("B stands by", Duration::from_secs(10), || {
        let (r, _, leader) = role(&urls[1])?;
        (r == "standby" && leader.as_deref() == Some(&format!("127.0.0.1:{}", ports[0])))
            .then_some(())
    });
    let all = urls.join(",");
    let relay_http = [free_port(), free_port()];
    let _relays = relays_in_tiers(&all, &relay_http, &dir);
    let _origin = test_origin("origin", &all, 1000, &dir);
    wait_for("2 relays active at A", Duration::from_secs(20), || {
        active_parents(&urls[0]).filter(|p| p.len() == 2)
    });
    let report = dir.join("viewer.json");
    let mut viewer = protocol_viewer("viewer", &all, 12, &report, &dir);
    std::thread::sleep(Duration::from_secs(3));
    let before = active_parents(&urls[0]).expect("A's status");

    let cut_at = Instant::now();
    proxy.cut.store(true, Ordering::Relaxed);
    let stopped = wait_for("A stops leading", Duration::from_secs(10), || {
        let (r, _, _) = role(&urls[0])?;
        (r == "standby").then(Instant::now)
    });
    let (epoch_b, elected) = wait_for("B leads", Duration::from_secs(10), || {
        let (r, e, _) = role(&urls[1])?;
        (r == "leader").then(|| (e, Instant::now()))
    });
    let epoch_b = epoch_b.expect("B's epoch");
    eprintln!(
        "A (epoch {epoch_a}) stopped ordering {:?} after the cut; B elected {:?} after it, epoch {epoch_b}",
        stopped - cut_at,
        elected - cut_at
    );
    // By A's own clock its lease ended ≤ TTL after the cut; the status poll
    // adds its own delay: a generous bound, the figure is printed above.
    assert!(
        stopped - cut_at <= Duration::from_secs(3),
        "A stopped when its lease ended"
    );
    assert!(epoch_b > epoch_a, "B's epoch {epoch_b} above A's {epoch_a}");
    let after = wait_for("both relays active at B", Duration::from_secs(10), || {
        active_parents(&urls[1]).filter(|p| p.len() == 2)
    });
    assert_eq!(before, after, "every relay keeps its parents");
    let relay_epochs = wait_for("the relays follow B", Duration::from_secs(10), || {
        let e: Vec<u64> = relay_http
            .iter()
            .filter_map(|p| {
                status_json(&format!("http://127.0.0.1:{p}"))?["coordinator_epoch"].as_u64()
            })
            .collect();
        (e.len() == 2 && e.iter().all(|x| *x == epoch_b)).then_some(e)
    });
    eprintln!("relays follow epoch {relay_epochs:?}");

    let told = status_json(&urls[0]).and_then(|s| s["stats"]["served_elsewhere"].as_u64());
    eprintln!("node messages A answered with where to go: {told:?}");
    assert!(
        told > Some(0),
        "A sent the nodes elsewhere rather than dropping them"
    );

    // Healed: A stays a standby and sends everyone to B.
    proxy.cut.store(false, Ordering::Relaxed);
    let b_addr = format!("127.0.0.1:{}", ports[1]);
    wait_for("A names B as the leader", Duration::from_secs(10), || {
        let (r, _, leader) = role(&urls[0])?;
        (r == "standby" && leader.as_deref() == Some(b_addr.as_str())).then_some(())
    });

    assert!(viewer.wait_exit(Duration::from_secs(25)).is_some());
    let v = read_report(&report);
    eprintln!("protocol viewer: {v}");
    assert!(v["blocks_received"].as_u64().unwrap() > 50, "{v}");
    assert_eq!(v["blocks_missing"], 0, "the data plane went on: {v}");
    let _ = std::fs::remove_dir_all(&dir);
}
