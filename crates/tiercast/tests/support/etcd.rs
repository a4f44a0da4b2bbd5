//! Helpers for the tests of several coordinator processes on etcd (X7, D7):
//! an etcd cluster of loopback members killed when dropped, coordinators
//! standing for a manager id, and who leads or where `/watch` goes.

use super::*;

/// Panics, with what to do, unless etcd runs: a test that needs it fails
/// without it, it never passes silently.
pub fn require_etcd() {
    match Command::new("etcd")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("etcd --version failed ({s}): this test needs a working etcd"),
        Err(e) => panic!(
            "etcd is required by this test and could not be run ({e}): install Debian's \
             etcd-server (scripts/test.sh installs it with apt)"
        ),
    }
}

/// A cluster of etcd members on loopback, fast timing (heartbeat 50 ms,
/// election 500 ms: a lease of 1 s is allowed), killed when dropped.
pub struct EtcdCluster {
    pub members: Vec<Option<Proc>>,
    /// `http://127.0.0.1:PORT` of each member's client port.
    pub urls: Vec<String>,
}

impl EtcdCluster {
    pub fn start(n: usize, dir: &Path) -> EtcdCluster {
        require_etcd();
        let client: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let peer: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let initial: Vec<String> = (0..n)
            .map(|i| format!("e{i}=http://127.0.0.1:{}", peer[i]))
            .collect();
        let initial = initial.join(",");
        let urls: Vec<String> = client
            .iter()
            .map(|p| format!("http://127.0.0.1:{p}"))
            .collect();
        let members = (0..n)
            .map(|i| {
                let data = dir.join(format!("etcd-{i}"));
                let peer_url = format!("http://127.0.0.1:{}", peer[i]);
                Some(Proc::spawn(
                    &format!("etcd-{i}"),
                    Command::new("etcd")
                        .args(["--name", &format!("e{i}")])
                        .arg("--data-dir")
                        .arg(&data)
                        .args(["--listen-client-urls", &urls[i]])
                        .args(["--advertise-client-urls", &urls[i]])
                        .args(["--listen-peer-urls", &peer_url])
                        .args(["--initial-advertise-peer-urls", &peer_url])
                        .args(["--initial-cluster", &initial])
                        .args(["--initial-cluster-state", "new"])
                        .args(["--initial-cluster-token", "tiercast-test"])
                        .args(["--heartbeat-interval", "50", "--election-timeout", "500"]),
                    dir,
                ))
            })
            .collect();
        let cluster = EtcdCluster { members, urls };
        for url in &cluster.urls {
            wait_for(
                &format!("etcd {url} answers"),
                Duration::from_secs(30),
                || etcd_post(url, "kv/range", r#"{"key":"AA=="}"#).filter(|(s, _)| *s == 200),
            );
        }
        cluster
    }

    /// SIGKILLs member `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut p) = self.members[i].take() {
            p.kill();
        }
    }
}

/// `POST /v3/<path>` to an etcd member: (status, body).
pub fn etcd_post(url: &str, path: &str, body: &str) -> Option<(u16, String)> {
    let hostport = url.trim_start_matches("http://");
    let mut s = TcpStream::connect(hostport).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let req = format!(
        "POST /v3/{path} HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, text))
}

/// A coordinator on `port` standing for election on `etcd` (lease 1 s), its
/// store under `dir/<name>`.
pub fn etcd_coordinator(name: &str, port: u16, etcd: &str, dir: &Path) -> Proc {
    etcd_coordinator_for(name, port, etcd, "0", dir)
}

/// As [`etcd_coordinator`], standing for manager id `manager` (or `spare`).
pub fn etcd_coordinator_for(name: &str, port: u16, etcd: &str, manager: &str, dir: &Path) -> Proc {
    let data = dir.join(name);
    Proc::tiercast(
        name,
        &[
            "coordinator",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--etcd",
            etcd,
            "--lease-ttl-s",
            "1",
            "--manager-id",
            manager,
            "--data-dir",
            data.to_str().expect("utf-8 path"),
        ],
        dir,
    )
}

/// The one coordinator of `urls` whose `/status` says it leads: (its index,
/// its epoch); `None` when none or several do.
pub fn leader_of(urls: &[String]) -> Option<(usize, u64)> {
    let leaders: Vec<(usize, u64)> = urls
        .iter()
        .enumerate()
        .filter_map(|(i, u)| {
            let s = status_json(u)?;
            (s["role"] == "leader").then(|| (i, s["epoch"].as_u64().unwrap_or(0)))
        })
        .collect();
    (leaders.len() == 1).then(|| leaders[0])
}

/// `/watch/<channel>` at `coordinator`: its status and Location.
pub fn watch_of(coordinator: &str, channel: &str) -> Option<(u16, String)> {
    let r = http_get(
        &format!("{coordinator}/watch/{channel}"),
        Duration::from_millis(100),
    )
    .ok()?;
    Some((r.status, r.header("Location").unwrap_or("").to_string()))
}
