//! Audio before video and delayed feeds over real sockets (C3): a coordinator, an
//! origin fed by ffmpeg with H.264 + AAC over TCP and one relay (room for two
//! full-feed viewers) run as processes; `tiercast policy apply` installs a
//! `delayed_feed` rule (6 s, free viewers: every HTTP viewer) and an
//! `audio_fallback` rule for channel "live". Then, in one run:
//!
//! - a reader of the relay's undelayed `/live/live.ts` runs from before the push
//!   to the end (it also keeps the relay logged in at the origin, so the relay's
//!   buffer holds the stream from its start);
//! - `/watch/live` answers a 302 whose Location carries `delay=6`; when the
//!   reader following it gets its first bytes, its first video PTS is at least
//!   5 s (delay − 1 s) older than the newest the live reader had received by then,
//!   and when both stop at the same moment the delayed reader's newest PTS is
//!   5..=8 s older than the live one's (paced by the live stream, not replaying
//!   from further back); the delayed capture decodes without an error. Only the
//!   two readers' PTS are compared: nothing depends on the machine's speed;
//! - a `?feed=audio` capture holds only an AAC stream (ffprobe) and decodes
//!   without an error;
//! - with both full-feed slots held (the coordinator sees load 2 of capacity 2,
//!   the relay sends a third full-feed viewer back to `/watch`), `/watch/live` is
//!   redirected to `?feed=audio&delay=6` instead of being refused (event
//!   `AudioFallback`), and that feed answers 200;
//! - `feed=video`, `delay=abc` answer 400 with the reason, on `/watch` and on the
//!   relay; a delay past the relay's `--max-delay-s` too.
//!
//! Needs ffmpeg and ffprobe and FAILS without them. Every process started is
//! killed by PID when the test ends, also when it fails (`Proc`'s Drop); the
//! readers stop when the test ends (`StopOnDrop`).

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use support::*;

const DELAY_S: i64 = 6;
/// 90 kHz ticks per second (MPEG-TS PTS).
const TICKS: i64 = 90_000;
/// How long the readers capture.
const CAPTURE: Duration = Duration::from_secs(10);
const SOURCE_SECONDS: u32 = 80;

const POLICY: &str = r#"# delayed feed and audio fall-back for the e2e test
[[provider.delayed_feed]]
name = "free-delay"
channels = ["live"]
viewers = "free"
delay_s = 6

[[provider.audio_fallback]]
name = "audio-for-free"
channels = ["live"]
viewers = "free"
"#;

/// Sets the flag when dropped: the reader threads end also when the test panics.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// What a reader received: the body, and when each part of it arrived.
struct Timed {
    body: Vec<u8>,
    /// (when, body bytes received by then), one per read.
    marks: Vec<(Instant, usize)>,
}

impl Timed {
    /// The body received by `at` (whole packets).
    fn by(&self, at: Instant) -> &[u8] {
        let n = self
            .marks
            .iter()
            .take_while(|(t, _)| *t <= at)
            .last()
            .map_or(0, |(_, n)| *n);
        &self.body[..n / 188 * 188]
    }

    fn first_at(&self) -> Instant {
        self.marks.first().expect("the reader received a body").0
    }
}

/// A reader of `url` in a thread until `stop`: it must answer 200 at once.
fn reader(url: String, stop: Arc<AtomicBool>) -> (JoinHandle<Timed>, Arc<AtomicUsize>) {
    let received = Arc::new(AtomicUsize::new(0));
    let progress = received.clone();
    let thread = std::thread::spawn(move || {
        let rest = url.strip_prefix("http://").expect("http URL");
        let (hostport, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let mut s = TcpStream::connect(hostport).expect("connect");
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: {hostport}\r\n\r\n").unwrap();
        let mut buf = Vec::new();
        let mut head = None;
        let mut marks = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        while !stop.load(Ordering::Relaxed) {
            match s.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    continue
                }
                Err(e) => panic!("{url}: {e}"),
            }
            if head.is_none() {
                head = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
                if let Some(h) = head {
                    assert!(
                        buf.starts_with(b"HTTP/1.1 200"),
                        "{url}: {}",
                        String::from_utf8_lossy(&buf[..h])
                    );
                }
            }
            if let Some(h) = head {
                if buf.len() > h {
                    marks.push((Instant::now(), buf.len() - h));
                    progress.store(buf.len() - h, Ordering::Relaxed);
                }
            }
        }
        let h = head.unwrap_or_else(|| panic!("{url}: no answer"));
        Timed {
            body: buf.split_off(h),
            marks,
        }
    });
    (thread, received)
}

/// The PTS (90 kHz) of the video PES starts (stream ids 0xE0..=0xEF) in `ts`.
fn video_pts(ts: &[u8]) -> Vec<i64> {
    ts.chunks_exact(188)
        .filter(|p| p[0] == 0x47 && p[1] & 0x40 != 0)
        .filter_map(|p| {
            let at = match p[3] & 0x30 {
                0x10 => 4,
                0x30 => 5 + p[4] as usize,
                _ => return None,
            };
            let pes = p.get(at..at + 14)?;
            let video = pes[..3] == [0, 0, 1] && pes[3] & 0xF0 == 0xE0;
            if !video || pes[7] & 0x80 == 0 {
                return None;
            }
            let b = &pes[9..14];
            Some(
                (i64::from(b[0] & 0x0E) << 29)
                    | (i64::from(b[1]) << 22)
                    | (i64::from(b[2] & 0xFE) << 14)
                    | (i64::from(b[3]) << 7)
                    | i64::from(b[4] >> 1),
            )
        })
        .collect()
}

/// The PTS (90 kHz) of every packet of the first stream `select` (`v:0`, `a:0`).
fn packet_pts(file: &Path, select: &str) -> Vec<i64> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", select])
        .args(["-show_entries", "packet=pts", "-of", "csv=p=0"])
        .arg(file)
        .output()
        .expect("run ffprobe");
    assert!(
        out.status.success(),
        "ffprobe {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .collect()
}

/// The streams ffprobe finds: `codec_name,codec_type` each, in order.
fn streams(file: &Path) -> Vec<String> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type,codec_name",
        ])
        .args(["-of", "json"])
        .arg(file)
        .output()
        .expect("run ffprobe");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ffprobe JSON");
    v["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .map(|s| {
            format!(
                "{},{}",
                s["codec_name"].as_str().unwrap_or("?"),
                s["codec_type"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

/// `ffmpeg -v error -i FILE -f null -`: what it reported (empty: no error).
fn decode_errors(file: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-i"])
        .arg(file)
        .args(["-f", "null", "-"])
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

/// Cuts an audio-only capture before its last audio PES start (a PES with a
/// stream id 0xC0..=0xDF), so a capture stopped mid-frame ends on whole frames.
fn trim_to_last_audio_pes(ts: &[u8]) -> &[u8] {
    let packets = ts.len() / 188;
    let audio_start = |i: usize| {
        let p = &ts[i * 188..(i + 1) * 188];
        if p[0] != 0x47 || p[1] & 0x40 == 0 {
            return false;
        }
        let payload = match p[3] & 0x30 {
            0x10 => 4,
            0x30 => 5 + p[4] as usize,
            _ => return false,
        };
        payload + 4 <= 188 && p[payload..payload + 3] == [0, 0, 1] && p[payload + 3] & 0xE0 == 0xC0
    };
    match (0..packets).rev().find(|&i| audio_start(i)) {
        Some(last) => &ts[..last * 188],
        None => &ts[..packets * 188],
    }
}

fn first_and_last(pts: &[i64]) -> (i64, i64) {
    (
        *pts.iter().min().expect("some PTS"),
        *pts.iter().max().expect("some PTS"),
    )
}

fn secs(ticks: i64) -> f64 {
    ticks as f64 / TICKS as f64
}

/// The relay's load as the coordinator books it (`/status` nodes).
fn relay_load(coordinator: &str) -> Option<u64> {
    let s = status_json(coordinator)?;
    s["nodes"]
        .as_array()?
        .iter()
        .find(|n| n["role"] == "relay")?["load"]
        .as_u64()
}

#[test]
fn delayed_feed_lags_live_by_the_policy_delay_and_a_full_relay_falls_back_to_audio() {
    require_ffmpeg();
    let dir = temp_dir("e2e-feeds");

    // The source: H.264 (a keyframe a second) + AAC, pushed in real time later.
    let src = dir.join("src.ts");
    let st = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &SOURCE_SECONDS.to_string()])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "25"])
        .args(["-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k"])
        .args(["-f", "mpegts"])
        .arg(&src)
        .status()
        .expect("ffmpeg encodes the source");
    assert!(st.success(), "ffmpeg encodes the source");
    assert_eq!(streams(&src), ["h264,video", "aac,audio"]);

    let cport = free_port();
    let coordinator = format!("http://127.0.0.1:{cport}");
    let _coord = Proc::tiercast(
        "coordinator",
        &["coordinator", "--listen", &format!("127.0.0.1:{cport}")],
        &dir,
    );
    let rport = free_port();
    let relay = format!("http://127.0.0.1:{rport}");
    let _relay = Proc::tiercast(
        "relay",
        &[
            "relay",
            "--coordinator",
            &coordinator,
            "--tier",
            "1",
            "--capacity",
            "2",
            "--min-threshold",
            "1",
            "--max-delay-s",
            "30",
            "--listen",
            &format!("127.0.0.1:{rport}"),
        ],
        &dir,
    );
    let (_origin, ingest) = tcp_origin(&coordinator, "live", &[], &dir);
    wait_active_relays(&coordinator, 1);
    // The live reader joins first and stays for the whole run: the relay stays
    // logged in at the origin and its buffer holds the stream from its start.
    let stop = Arc::new(AtomicBool::new(false));
    let _stop_guard = StopOnDrop(stop.clone());
    let (live, live_bytes) = reader(format!("{relay}/live/live.ts"), stop.clone());
    let _push = push_tcp(&src, &ingest, &dir);

    let policy = dir.join("feeds.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let (ok, out) = apply_policy(&coordinator, &policy, &[]);
    assert!(ok, "{out}");
    assert_eq!(out.trim(), "ok: 2 rules");

    // Bad input: 400 with the reason, on /watch and on the relay.
    for base in [
        format!("{coordinator}/watch/live"),
        format!("{relay}/live/live.ts"),
    ] {
        let r = http_get(&format!("{base}?feed=video"), Duration::from_millis(500)).unwrap();
        assert_eq!(r.status, 400, "{base}?feed=video: {}", r.text());
        assert!(
            r.text().contains("unknown feed \"video\""),
            "{base}: {}",
            r.text()
        );
        let r = http_get(&format!("{base}?delay=abc"), Duration::from_millis(500)).unwrap();
        assert_eq!(r.status, 400, "{base}?delay=abc: {}", r.text());
        assert!(
            r.text().contains("invalid delay \"abc\""),
            "{base}: {}",
            r.text()
        );
    }
    let r = http_get(
        &format!("{relay}/live/live.ts?delay=90"),
        Duration::from_millis(500),
    )
    .unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains("beyond this relay's limit of 30 s"),
        "{}",
        r.text()
    );

    // Let the relay's buffer reach back past the delay (the delayed reader then
    // starts at once from it), counted from the live reader's first video.
    wait_for(
        "the live reader's first bytes",
        Duration::from_secs(15),
        || (live_bytes.load(Ordering::Relaxed) > 0).then_some(()),
    );
    std::thread::sleep(Duration::from_secs(DELAY_S as u64 + 3));

    // /watch: a redirect carrying the delay.
    let r = http_get(
        &format!("{coordinator}/watch/live"),
        Duration::from_millis(300),
    )
    .unwrap();
    assert_eq!(r.status, 302, "{}", r.text());
    let delayed_url = r.header("Location").expect("Location").to_string();
    assert_eq!(delayed_url, format!("{relay}/live/live.ts?delay={DELAY_S}"));
    let (delayed, delayed_bytes) = reader(delayed_url, stop.clone());
    let (audio, _) = reader(format!("{relay}/live/live.ts?feed=audio"), stop.clone());
    let started = Instant::now();

    // Both full-feed slots are held: the coordinator sees it, the relay sends a
    // third full-feed viewer back to /watch, and /watch falls back to the audio feed.
    wait_for("load 2 at the coordinator", Duration::from_secs(6), || {
        (relay_load(&coordinator)? >= 2).then_some(())
    });
    // The coordinator counts the viewer it redirected before it reaches the
    // relay: the delayed reader must hold its slot before a third one asks.
    wait_for(
        "the delayed reader's first bytes",
        Duration::from_secs(10),
        || (delayed_bytes.load(Ordering::Relaxed) > 0).then_some(()),
    );
    let r = http_get(&format!("{relay}/live/live.ts"), Duration::from_millis(500)).unwrap();
    assert_eq!(
        (r.status, r.header("Location")),
        (302, Some(format!("{coordinator}/watch/live.ts").as_str())),
        "the relay is full: it sends a third full-feed viewer back to /watch"
    );
    let r = http_get(
        &format!("{coordinator}/watch/live"),
        Duration::from_millis(300),
    )
    .unwrap();
    assert_eq!(r.status, 302, "audio fall-back, not refused: {}", r.text());
    let fallback = r.header("Location").expect("Location").to_string();
    assert_eq!(
        fallback,
        format!("{relay}/live/live.ts?feed=audio&delay={DELAY_S}")
    );
    let r = http_get(&fallback, Duration::from_secs(2)).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("Content-Type"), Some("video/mp2t"));
    assert!(
        r.body.len() >= 188,
        "the fall-back feed sends: {} bytes",
        r.body.len()
    );
    let events = status_json(&coordinator).expect("status")["events"].to_string();
    assert!(events.contains("AudioFallback"), "{events}");

    if let Some(rest) = CAPTURE.checked_sub(started.elapsed()) {
        std::thread::sleep(rest);
    }
    stop.store(true, Ordering::Relaxed);
    let delayed = delayed.join().expect("delayed reader");
    let live = live.join().expect("live reader");
    let audio = audio.join().expect("audio reader");

    // When the delayed reader got its first bytes, the live reader was at least
    // delay - 1 s ahead; when both stopped, delay (within a block or two) ahead.
    let d_pts = video_pts(&delayed.body);
    let (d_first, d_last) = first_and_last(&d_pts);
    let live_then = video_pts(live.by(delayed.first_at()));
    let l_then = *live_then.iter().max().expect("the live reader had video");
    let (_, l_last) = first_and_last(&video_pts(&live.body));
    eprintln!(
        "delayed {:.2}..{:.2} s; live at the delayed reader's start {:.2} s ({:.2} s ahead), \
         at the stop {:.2} s ({:.2} s ahead)",
        secs(d_first),
        secs(d_last),
        secs(l_then),
        secs(l_then - d_first),
        secs(l_last),
        secs(l_last - d_last)
    );
    assert!(
        l_then - d_first >= (DELAY_S - 1) * TICKS,
        "the delayed reader starts {:.2} s behind the live one (want >= {} s)",
        secs(l_then - d_first),
        DELAY_S - 1
    );
    assert!(
        l_last - d_last >= (DELAY_S - 1) * TICKS && l_last - d_last <= (DELAY_S + 2) * TICKS,
        "at the stop the delayed reader is {:.2} s behind the live one (want {}..={} s)",
        secs(l_last - d_last),
        DELAY_S - 1,
        DELAY_S + 2
    );
    assert!(
        d_last - d_first >= 5 * TICKS,
        "the delayed reader played on: {:.2} s of video",
        secs(d_last - d_first)
    );
    let delayed_file = dir.join("delayed.ts");
    std::fs::write(&delayed_file, trim_to_last_keyframe(&delayed.body)).unwrap();
    let (hashes, err) = framemd5(&delayed_file);
    assert!(err.is_empty(), "the delayed capture decodes cleanly: {err}");
    assert!(hashes.len() >= 125, "{} frames delayed", hashes.len());

    // The audio-only capture: one AAC stream, decoded without an error.
    let audio_file = dir.join("audio.ts");
    std::fs::write(&audio_file, trim_to_last_audio_pes(&audio.body)).unwrap();
    assert_eq!(streams(&audio_file), ["aac,audio"]);
    assert_eq!(
        decode_errors(&audio_file),
        "",
        "the audio feed decodes cleanly"
    );
    let (a_first, a_last) = first_and_last(&packet_pts(&audio_file, "a:0"));
    assert!(
        a_last - a_first >= 5 * TICKS,
        "{:.2} s of audio",
        secs(a_last - a_first)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
