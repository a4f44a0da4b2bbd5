//! Helpers of the `e2e_ingest_*` tests (issue 17): a source encoded by ffmpeg,
//! an origin with 2 relay tiers, ffmpeg publishers, refusals read from logs,
//! and a capture at tier 2 compared frame by frame with the source.

use super::*;

/// `secs` of 25 fps H.264 (GOP 25) test video, with AAC audio when `audio`, as MPEG-TS.
pub fn encode_source(dir: &Path, secs: u32, audio: bool) -> (PathBuf, Vec<String>) {
    let src = dir.join("src.ts");
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-v", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"]);
    if audio {
        cmd.args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
            .args(["-c:a", "aac", "-b:a", "64k"]);
    }
    let st = cmd
        .args([
            "-t",
            &secs.to_string(),
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ])
        .args(["-g", "25", "-pix_fmt", "yuv420p", "-f", "mpegts"])
        .arg(&src)
        .status()
        .expect("ffmpeg encodes the source");
    assert!(st.success(), "ffmpeg encodes the source");
    let (hashes, err) = framemd5(&src);
    assert!(err.is_empty(), "source decodes cleanly: {err}");
    assert_eq!(hashes.len(), 25 * secs as usize);
    (src, hashes)
}

/// A coordinator, relays in tiers 1 and 2 (HTTP on `http_ports`), and an
/// origin of `channel` with `origin_args`; returns once both relays are active.
pub struct IngestCluster {
    pub coordinator: String,
    pub http_ports: Vec<u16>,
    pub procs: Vec<Proc>,
}

impl IngestCluster {
    pub fn start(dir: &Path, channel: &str, origin_args: &[&str]) -> IngestCluster {
        let (coord, coordinator) = coordinator_proc(dir);
        let http_ports = vec![free_port(), free_port()];
        let mut procs = vec![coord];
        procs.extend(relays_in_tiers(&coordinator, &http_ports, dir));
        let mut args = vec![
            "origin",
            "--coordinator",
            &coordinator,
            "--channel",
            channel,
        ];
        args.extend_from_slice(origin_args);
        procs.push(Proc::tiercast("origin", &args, dir));
        wait_for(
            "2 relays active for the channel",
            Duration::from_secs(20),
            || {
                let s = status_json(&coordinator)?;
                let ch = s["channels"].as_array()?.first()?.clone();
                (ch["active"].as_array()?.len() == 2).then_some(())
            },
        );
        IngestCluster {
            coordinator,
            http_ports,
            procs,
        }
    }

    /// The stream URL of the tier-2 relay.
    pub fn tier2_url(&self, channel: &str) -> String {
        format!("http://127.0.0.1:{}/live/{channel}.ts", self.http_ports[1])
    }
}

/// ffmpeg publishing `src` in real time with `-c copy` to `url` as `format`.
pub fn ffmpeg_push(name: &str, src: &Path, format: &str, url: &str, dir: &Path) -> Proc {
    Proc::spawn(
        name,
        Command::new("ffmpeg")
            .args(["-hide_banner", "-nostdin", "-v", "info", "-re", "-i"])
            .arg(src)
            .args(["-c", "copy", "-f", format, url]),
        dir,
    )
}

/// A publisher that must be refused: runs to its end (at most `within`) and
/// returns its exit status (None: still running, i.e. not refused) and log.
pub fn ffmpeg_refused(
    name: &str,
    src: &Path,
    format: &str,
    url: &str,
    dir: &Path,
    within: Duration,
) -> (Option<std::process::ExitStatus>, String) {
    let mut p = ffmpeg_push(name, src, format, url, dir);
    let st = p.wait_exit(within);
    p.kill();
    let log = std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default();
    (st, log)
}

/// Lines of `name`'s log that contain `needle` (waits up to `within` for one).
pub fn wait_log_line(dir: &Path, name: &str, needle: &str, within: Duration) -> String {
    let path = dir.join(format!("{name}.log"));
    let found = try_wait_for(within, || {
        let text = strip_ansi(&std::fs::read_to_string(&path).ok()?);
        let lines: Vec<&str> = text.lines().filter(|l| l.contains(needle)).collect();
        (!lines.is_empty()).then(|| lines.join("\n"))
    });
    found.unwrap_or_else(|| {
        panic!(
            "{name}.log has no line with {needle:?}:\n{}",
            log_tails(dir, 30)
        )
    })
}

/// The text without terminal colour codes (`ESC [ ... m`).
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Reads `url` for `secs`, checks the capture decodes with no error and its
/// frames are an unbroken run of `source`'s; returns (frames, first source frame).
pub fn capture_matches(
    url: &str,
    secs: u64,
    source: &[String],
    dir: &Path,
    name: &str,
) -> (usize, usize) {
    let resp = http_get(url, Duration::from_secs(secs)).expect("viewer request");
    assert_eq!(resp.status, 200, "viewer at {url}");
    let file = dir.join(format!("{name}.ts"));
    std::fs::write(&file, trim_to_last_keyframe(&resp.body)).expect("write capture");
    let (hashes, err) = framemd5(&file);
    assert!(
        err.trim().is_empty(),
        "{name} decodes without errors, got: {err}"
    );
    let min = (secs as usize - 3) * 25;
    assert!(
        hashes.len() >= min,
        "{name} decoded {} frames (>= {min})",
        hashes.len()
    );
    let at = find_run(source, &hashes).unwrap_or_else(|| {
        panic!(
            "{name}: its {} frames are not an unbroken run of the source's",
            hashes.len()
        )
    });
    (hashes.len(), at)
}

/// Panics, with what to do, unless this ffmpeg speaks `protocol` (srt, rtmp):
/// the test fails without it, it never passes silently.
pub fn require_ffmpeg_protocol(protocol: &str) {
    require_ffmpeg();
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-protocols"])
        .output()
        .expect("run ffmpeg -protocols");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().any(|l| l.trim() == protocol),
        "this ffmpeg has no {protocol} protocol: install a build with it (Debian's ffmpeg has SRT and RTMP)"
    );
}
