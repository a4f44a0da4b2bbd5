//! Helpers for end-to-end tests over real sockets with real processes: child
//! processes killed by PID when the test ends, free ports, a raw HTTP client that
//! follows one redirect, polling with deadlines.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod etcd;
#[allow(unused_imports)] // not every test binary runs etcd
pub use etcd::*;
mod ingest;
#[allow(unused_imports)] // only the e2e_ingest_* tests publish over SRT/RTMP
pub use ingest::*;

pub const BIN: &str = env!("CARGO_BIN_EXE_tiercast");

/// A child process killed (and reaped) when dropped.
pub struct Proc {
    pub name: String,
    pub child: Child,
}

impl Proc {
    pub fn spawn(name: &str, cmd: &mut Command, log_dir: &Path) -> Proc {
        let log = std::fs::File::create(log_dir.join(format!("{name}.log"))).expect("log file");
        let child = cmd
            .stdout(Stdio::from(log.try_clone().expect("dup log")))
            .stderr(Stdio::from(log))
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Proc {
            name: name.to_string(),
            child,
        }
    }

    pub fn tiercast(name: &str, args: &[&str], log_dir: &Path) -> Proc {
        let mut cmd = Command::new(BIN);
        // Origins keep their key and seq under the state directory: one per test.
        cmd.args(args)
            .env("RUST_LOG", "info,quinn=warn")
            .env("XDG_STATE_HOME", log_dir.join("state"));
        Proc::spawn(name, &mut cmd, log_dir)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, like a crash.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port free on both TCP and UDP of 127.0.0.1.
pub fn free_port() -> u16 {
    for _ in 0..100 {
        let t = TcpListener::bind("127.0.0.1:0").expect("bind tcp");
        let port = t.local_addr().expect("addr").port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port");
}

/// A port held on both TCP and UDP of 127.0.0.1 until dropped: a test that
/// gives a node an address before anything listens there keeps another
/// process's ephemeral socket from taking it in the meantime (the coordinator
/// started later would fail to bind it).
pub struct HeldPort {
    pub port: u16,
    _tcp: TcpListener,
    _udp: UdpSocket,
}

pub fn hold_free_port() -> HeldPort {
    for _ in 0..100 {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind tcp");
        let port = tcp.local_addr().expect("addr").port();
        if let Ok(udp) = UdpSocket::bind(("127.0.0.1", port)) {
            return HeldPort {
                port,
                _tcp: tcp,
                _udp: udp,
            };
        }
    }
    panic!("no free port");
}

/// The last `n` lines of every `*.log` in `dir`, for a failure's message.
pub fn log_tails(dir: &Path, n: usize) -> String {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    names.retain(|p| p.extension().is_some_and(|e| e == "log"));
    names.sort();
    let mut out = String::new();
    for p in names {
        let text = std::fs::read_to_string(&p).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        out.push_str(&format!("--- {} (last {n} lines)\n", p.display()));
        for l in &lines[lines.len().saturating_sub(n)..] {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tiercast-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Polls `f` until it returns Some, or panics with `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, f: impl FnMut() -> Option<T>) -> T {
    try_wait_for(timeout, f).unwrap_or_else(|| panic!("timed out waiting for {what}"))
}

/// Polls `f` every 100 ms until it returns Some, or `None` after `timeout`.
pub fn try_wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }
}

/// GET `url` (http://host:port/path); reads the body for at most `read_for`.
pub fn http_get(url: &str, read_for: Duration) -> std::io::Result<HttpResponse> {
    http_get_timed(url, read_for).map(|(r, _)| r)
}

/// When each read of a body returned: (when, body bytes received by then).
pub type Arrivals = Vec<(Instant, usize)>;

/// [`http_get`], with when each read of the body returned.
pub fn http_get_timed(url: &str, read_for: Duration) -> std::io::Result<(HttpResponse, Arrivals)> {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr: SocketAddr = hostport.parse().expect("numeric host:port");
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_millis(200)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {hostport}\r\nUser-Agent: tiercast-test\r\n\r\n"
    )?;
    let end = Instant::now() + read_for;
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut arrivals = Vec::new();
    while Instant::now() < end {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                arrivals.push((Instant::now(), buf.len()));
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => return Err(e),
        }
    }
    let head_end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("no HTTP head in {} bytes", buf.len()),
            )
        })?;
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    let body_at = head_end + 4;
    let arrivals = arrivals
        .into_iter()
        .filter(|(_, n)| *n > body_at)
        .map(|(t, n)| (t, n - body_at))
        .collect();
    Ok((
        HttpResponse {
            status,
            headers,
            body: buf[body_at..].to_vec(),
        },
        arrivals,
    ))
}

/// [`http_get_follow`], with when each read of the final body returned.
#[allow(dead_code)]
pub fn http_get_follow_timed(
    url: &str,
    read_for: Duration,
) -> std::io::Result<(String, HttpResponse, Arrivals)> {
    let r = http_get(url, Duration::from_secs(2))?;
    if r.status == 302 {
        let loc = r.header("Location").expect("302 has Location").to_string();
        let (r2, arrivals) = http_get_timed(&loc, read_for)?;
        return Ok((loc, r2, arrivals));
    }
    Ok((url.to_string(), r, Vec::new()))
}

/// GET following one 302.
pub fn http_get_follow(url: &str, read_for: Duration) -> std::io::Result<(String, HttpResponse)> {
    let r = http_get(url, Duration::from_secs(2))?;
    if r.status == 302 {
        let loc = r.header("Location").expect("302 has Location").to_string();
        let r2 = http_get(&loc, read_for)?;
        return Ok((loc, r2));
    }
    Ok((url.to_string(), r))
}

pub fn status_json(coordinator: &str) -> Option<serde_json::Value> {
    let r = http_get(&format!("{coordinator}/status"), Duration::from_millis(500)).ok()?;
    serde_json::from_slice(&r.body).ok()
}

/// Panics, with what to do, unless ffmpeg and ffprobe are installed and run: a
/// test that needs them fails without them, it never passes silently.
pub fn require_ffmpeg() {
    for tool in ["ffmpeg", "ffprobe"] {
        let ran = Command::new(tool)
            .arg("-version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        match ran {
            Ok(s) if s.success() => {}
            Ok(s) => panic!("{tool} -version failed ({s}): this test needs a working {tool}"),
            Err(e) => panic!(
                "{tool} is required by this test and could not be run ({e}): install ffmpeg \
                 (scripts/test.sh installs it with apt)"
            ),
        }
    }
}

/// `ffmpeg -f framemd5` of a file: (hashes in order, stderr of the decode).
pub fn framemd5(path: &Path) -> (Vec<String>, String) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-map", "0:v:0", "-f", "framemd5", "-"])
        .output()
        .expect("run ffmpeg");
    let hashes = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit(',').next().map(|h| h.trim().to_string()))
        .filter(|h| !h.is_empty())
        .collect();
    (hashes, String::from_utf8_lossy(&out.stderr).to_string())
}

/// Where `needle` occurs as one unbroken run inside `hay`.
pub fn find_run(hay: &[String], needle: &[String]) -> Option<usize> {
    if needle.is_empty() || needle.len() > hay.len() {
        return None;
    }
    (0..=hay.len() - needle.len()).find(|&i| hay[i..i + needle.len()] == *needle)
}

/// Cuts a received MPEG-TS capture before its last keyframe (and the PSI just
/// before it), so a capture stopped mid-frame ends on a whole frame.
pub fn trim_to_last_keyframe(ts: &[u8]) -> &[u8] {
    let n = ts.len() / 188;
    let pid = |i: usize| (((ts[i * 188 + 1] & 0x1f) as u16) << 8) | ts[i * 188 + 2] as u16;
    let rai = |i: usize| {
        let p = &ts[i * 188..i * 188 + 188];
        p[0] == 0x47 && p[3] & 0x20 != 0 && p[4] > 0 && p[5] & 0x40 != 0
    };
    let Some(mut k) = (0..n).rev().find(|&i| rai(i)) else {
        return ts;
    };
    while k > 0 && matches!(pid(k - 1), 0 | 0x11 | 0x1000) {
        k -= 1;
    }
    &ts[..k * 188]
}

/// SIGTERM (a clean stop: the process writes its report and says goodbye).
pub fn terminate(p: &Proc) {
    let _ = Command::new("kill")
        .args(["-TERM", &p.pid().to_string()])
        .status();
}

/// GETs `url` until it answers 200 (refusals are retried until `join_by`), then
/// keeps the body until `stop` is set. Returns the body (without the head).
pub fn capture_stream(
    url: &str,
    join_by: Instant,
    stop: &std::sync::atomic::AtomicBool,
) -> std::io::Result<Vec<u8>> {
    use std::sync::atomic::Ordering;
    let rest = url.strip_prefix("http://").expect("http URL");
    let (hostport, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let addr: SocketAddr = hostport.parse().expect("numeric host:port");
    loop {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        s.set_read_timeout(Some(Duration::from_millis(200)))?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {hostport}\r\nUser-Agent: tiercast-test\r\n\r\n"
        )?;
        let mut buf = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        let mut head_len = None;
        while !stop.load(Ordering::Relaxed) {
            match s.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) => return Err(e),
            }
            if head_len.is_none() {
                head_len = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
                if head_len.is_some() && !buf.starts_with(b"HTTP/1.1 200") {
                    break; // a refusal (not joined yet): ask again
                }
            }
        }
        match head_len {
            Some(h) if buf.starts_with(b"HTTP/1.1 200") => return Ok(buf.split_off(h)),
            _ if stop.load(Ordering::Relaxed) || Instant::now() > join_by => {
                return Err(std::io::Error::other(format!(
                    "no stream from {url}: {}",
                    String::from_utf8_lossy(&buf[..buf.len().min(200)])
                )))
            }
            _ => std::thread::sleep(Duration::from_millis(300)),
        }
    }
}

/// `tiercast origin` of channel "live" fed by its built-in test source.
pub fn test_origin(name: &str, coordinator: &str, kbps: u32, dir: &Path) -> Proc {
    test_origin_of(name, coordinator, "live", kbps, &[], dir)
}

/// An origin of `channel` with the built-in test source at `kbps`, and `extra` flags.
pub fn test_origin_of(
    name: &str,
    coordinator: &str,
    channel: &str,
    kbps: u32,
    extra: &[&str],
    dir: &Path,
) -> Proc {
    let kbps = kbps.to_string();
    let mut args = vec![
        "origin",
        "--coordinator",
        coordinator,
        "--channel",
        channel,
        "--test-source",
        &kbps,
    ];
    args.extend_from_slice(extra);
    Proc::tiercast(name, &args, dir)
}

/// A protocol viewer of channel "live" for `seconds`, its report written to `report`.
pub fn protocol_viewer(
    name: &str,
    coordinator: &str,
    seconds: u32,
    report: &Path,
    dir: &Path,
) -> Proc {
    protocol_viewer_of(name, coordinator, "live", &[], seconds, report, dir)
}

/// A protocol viewer of `channel` with `extra` flags for `seconds`, its report
/// written to `report`.
pub fn protocol_viewer_of(
    name: &str,
    coordinator: &str,
    channel: &str,
    extra: &[&str],
    seconds: u32,
    report: &Path,
    dir: &Path,
) -> Proc {
    let seconds = seconds.to_string();
    let mut args = vec![
        "viewer",
        "--coordinator",
        coordinator,
        "--channel",
        channel,
        "--duration",
        &seconds,
        "--report",
        report.to_str().expect("report path is UTF-8"),
    ];
    args.extend_from_slice(extra);
    Proc::tiercast(name, &args, dir)
}

/// A protocol viewer's report (JSON), as it wrote it at exit.
pub fn read_report(report: &Path) -> serde_json::Value {
    let bytes = std::fs::read(report).unwrap_or_else(|e| panic!("{}: {e}", report.display()));
    serde_json::from_slice(&bytes).expect("the report is JSON")
}

/// A relay of `tier` (capacity 10) with extra arguments (`--listen`, `--cluster-key`, ...).
pub fn relay_proc(name: &str, coordinator: &str, tier: &str, extra: &[&str], dir: &Path) -> Proc {
    let mut args = vec![
        "relay",
        "--coordinator",
        coordinator,
        "--tier",
        tier,
        "--capacity",
        "10",
    ];
    args.extend_from_slice(extra);
    Proc::tiercast(name, &args, dir)
}

/// `tiercast policy apply FILE --coordinator URL [extra]`: (success, stdout
/// when it succeeded, else stdout + stderr).
pub fn apply_policy(coordinator: &str, file: &Path, extra: &[&str]) -> (bool, String) {
    let out = Command::new(BIN)
        .args(["policy", "apply"])
        .arg(file)
        .args(["--coordinator", coordinator])
        .args(extra)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run tiercast policy apply");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    if out.status.success() {
        return (true, stdout);
    }
    (
        false,
        format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)),
    )
}

/// Each active relay of the coordinator's first channel and its parents (from `/status`).
pub fn active_parents(coordinator: &str) -> Option<std::collections::BTreeMap<u64, Vec<u64>>> {
    let s = status_json(coordinator)?;
    let active = s["channels"].as_array()?.first()?["active"]
        .as_array()?
        .clone();
    Some(
        active
            .iter()
            .filter_map(|a| {
                let p = a["parents"].as_array()?.iter().filter_map(|p| p.as_u64());
                Some((a["node"].as_u64()?, p.collect()))
            })
            .collect(),
    )
}

/// One relay per tier (1, 2, ...), each on its HTTP port of `http_ports`.
pub fn relays_in_tiers(coordinators: &str, http_ports: &[u16], dir: &Path) -> Vec<Proc> {
    relays_in_tiers_of("relay", coordinators, http_ports, &[], dir)
}

/// As [`relays_in_tiers`], named `<name>-t<tier>`, with `extra` flags.
pub fn relays_in_tiers_of(
    name: &str,
    coordinators: &str,
    http_ports: &[u16],
    extra: &[&str],
    dir: &Path,
) -> Vec<Proc> {
    http_ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let tier = (i + 1).to_string();
            let listen = format!("127.0.0.1:{p}");
            let mut args = vec!["--listen", &listen];
            args.extend_from_slice(extra);
            relay_proc(&format!("{name}-t{tier}"), coordinators, &tier, &args, dir)
        })
        .collect()
}

/// A coordinator on a free port: the process and its base URL.
pub fn coordinator_proc(dir: &Path) -> (Proc, String) {
    let port = free_port();
    let p = Proc::tiercast(
        "coordinator",
        &["coordinator", "--listen", &format!("127.0.0.1:{port}")],
        dir,
    );
    (p, format!("http://127.0.0.1:{port}"))
}

/// `tiercast origin` of `channel` taking MPEG-TS over TCP on a free port, with
/// `extra` flags: the process and its ingest address.
pub fn tcp_origin(coordinator: &str, channel: &str, extra: &[&str], dir: &Path) -> (Proc, String) {
    let ingest = format!("127.0.0.1:{}", free_port());
    let mut args = vec![
        "origin",
        "--coordinator",
        coordinator,
        "--channel",
        channel,
        "--tcp",
        &ingest,
    ];
    args.extend_from_slice(extra);
    (Proc::tiercast("origin", &args, dir), ingest)
}

/// Waits until the coordinator's first channel has `n` active relays.
pub fn wait_active_relays(coordinator: &str, n: usize) {
    wait_for(
        &format!("{n} relays active for the channel"),
        Duration::from_secs(20),
        || {
            let s = status_json(coordinator)?;
            let ch = s["channels"].as_array()?.first()?.clone();
            (ch["active"].as_array()?.len() == n).then_some(())
        },
    );
}

/// ffmpeg publishing the file `src` in real time (`-c copy`) to the origin's
/// TCP ingest at `ingest`, once that listens (it does once the channel is
/// announced).
pub fn push_tcp(src: &Path, ingest: &str, dir: &Path) -> Proc {
    wait_for("origin ingest", Duration::from_secs(10), || {
        TcpStream::connect(ingest).ok()
    });
    Proc::spawn(
        "ffmpeg-push",
        Command::new("ffmpeg")
            .args(["-hide_banner", "-nostdin", "-v", "error", "-re", "-i"])
            .arg(src)
            .args(["-c", "copy", "-f", "mpegts", &format!("tcp://{ingest}")]),
        dir,
    )
}
