//! End to end over real processes (issue 16, Must show 2; X2): ffmpeg pushes an
//! H.264 test stream to an origin; it crosses relays in two tiers; the tier-2
//! relay serves it as HLS / LL-HLS. `ffprobe` reads the playlist URL; every
//! segment starts with a keyframe and decodes without an error; every EXTINF
//! fits the target duration; the media sequence moves on; a blocking reload for
//! the next part returns when the part appears (timed and printed, with how far
//! the newest part is behind the origin's ingest); `ffmpeg` reading the playlist
//! decodes an unbroken run of the source's frames. A peer (`--http`) serves
//! HLS too: its segments start with a keyframe and decode cleanly.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::*;

/// A playlist, as the test reads it.
struct Playlist {
    target_duration_s: f64,
    media_sequence: u64,
    extinf_s: Vec<f64>,
    segments: Vec<String>,
    /// (msn, part) the preload hint names.
    hint: (u64, u64),
    /// The newest part's end (µs since the epoch): the last date plus what follows it.
    newest_end_us: u64,
    /// `#EXT-X-PART-INF:PART-TARGET` and the durations of the parts listed (s).
    part_target_s: f64,
    parts_s: Vec<f64>,
}

fn parse_playlist(text: &str) -> Playlist {
    assert!(text.starts_with("#EXTM3U\n"), "{text}");
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("{name} in {text}"))
    };
    let hint = value("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"").trim_end_matches(".ts\"");
    let (msn, part) = hint.split_once('.').expect("msn.part");
    let mut last_date_us = 0;
    let mut since_date_us = 0;
    let mut parts_s = Vec::new();
    for line in text.lines() {
        if let Some(date) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            last_date_us = parse_date_us(date);
            since_date_us = 0;
        } else if let Some(part) = line.strip_prefix("#EXT-X-PART:DURATION=") {
            let d: f64 = part.split(',').next().unwrap().parse().unwrap();
            since_date_us += (d * 1e6) as u64;
            parts_s.push(d);
        }
    }
    Playlist {
        target_duration_s: value("#EXT-X-TARGETDURATION:").parse().unwrap(),
        media_sequence: value("#EXT-X-MEDIA-SEQUENCE:").parse().unwrap(),
        extinf_s: text
            .lines()
            .filter_map(|l| l.strip_prefix("#EXTINF:"))
            .map(|v| v.trim_end_matches(',').parse().unwrap())
            .collect(),
        segments: text
            .lines()
            .filter(|l| !l.starts_with('#') && l.ends_with(".ts"))
            .map(str::to_string)
            .collect(),
        hint: (msn.parse().unwrap(), part.parse().unwrap()),
        newest_end_us: last_date_us + since_date_us,
        part_target_s: value("#EXT-X-PART-INF:PART-TARGET=").parse().unwrap(),
        parts_s,
    }
}

/// `2026-12-07T21:42:46.123Z` → µs since the epoch (dates after 2000 only).
fn parse_date_us(date: &str) -> u64 {
    let n = |r: std::ops::Range<usize>| date[r].parse::<u64>().unwrap();
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    // Days from civil (H. Hinnant).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2 / 400;
    let yoe = y2 - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + n(11..13) * 3_600 + n(14..16) * 60 + n(17..19);
    secs * 1_000_000 + n(20..23) * 1_000
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

fn get_ok(url: &str) -> HttpResponse {
    let r = http_get(url, Duration::from_secs(15)).expect("GET");
    assert_eq!(r.status, 200, "{url}: {}", r.text());
    r
}

/// `ffprobe`'s key_frame of the first video frame of `file`.
fn first_frame_is_key(file: &Path) -> bool {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_frames"])
        .args([
            "-read_intervals",
            "%+#1",
            "-show_entries",
            "frame=key_frame",
        ])
        .args(["-of", "default=nw=1"])
        .arg(file)
        .output()
        .expect("run ffprobe");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.lines().find(|l| l.starts_with("key_frame=")) == Some("key_frame=1")
}

fn decode_errors(input: &str) -> String {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-i", input])
        .args(["-f", "null", "-"])
        .output()
        .expect("run ffmpeg");
    String::from_utf8_lossy(&out.stderr).to_string()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

#[test]
fn ffmpeg_stream_through_two_tiers_as_hls() {
    require_ffmpeg();
    let dir = temp_dir("e2e-hls");
    let src = dir.join("src.ts");
    let st = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-f", "lavfi"])
        .args(["-i", "testsrc2=size=320x240:rate=25", "-t", "90"])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "25"])
        .args(["-pix_fmt", "yuv420p", "-f", "mpegts"])
        .arg(&src)
        .status()
        .expect("ffmpeg encodes the source");
    assert!(st.success());
    let (source_hashes, err) = framemd5(&src);
    assert!(err.is_empty(), "source decodes cleanly: {err}");

    let (_coord, coordinator) = coordinator_proc(&dir);
    let ports = [free_port(), free_port()];
    let _relays = relays_in_tiers(&coordinator, &ports, &dir);
    let (_origin, ingest) = tcp_origin(&coordinator, "e2e", &[], &dir);
    wait_active_relays(&coordinator, 2);
    let _push = push_tcp(&src, &ingest, &dir);
    let base = format!("http://127.0.0.1:{}/hls/e2e", ports[1]);
    let playlist_url = format!("{base}/index.m3u8");
    // The first request joins the channel; the window fills in a few seconds.
    let first = wait_for(
        "3 segments in the playlist",
        Duration::from_secs(30),
        || {
            let r = http_get(&playlist_url, Duration::from_secs(10)).ok()?;
            let p = (r.status == 200).then(|| parse_playlist(&r.text()))?;
            (p.segments.len() >= 3).then_some((r, p))
        },
    );
    let (reply, playlist) = first;
    assert_eq!(
        reply.header("Content-Type"),
        Some("application/vnd.apple.mpegurl")
    );
    assert_eq!(reply.header("Access-Control-Allow-Origin"), Some("*"));
    let tier1 = http_get(
        &format!("http://127.0.0.1:{}/hls/e2e/index.m3u8", ports[0]),
        Duration::from_secs(10),
    )
    .expect("tier-1 playlist");
    assert_eq!(tier1.status, 200, "the tier-1 relay serves HLS too");

    // ffprobe reads the playlist URL.
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=format_name",
            "-of",
            "csv=p=0",
        ])
        .arg(&playlist_url)
        .output()
        .expect("run ffprobe");
    assert!(
        probe.status.success(),
        "{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&probe.stdout).trim(), "hls");

    // Every EXTINF fits the target duration; every segment starts with a keyframe
    // and decodes without an error.
    for d in &playlist.extinf_s {
        assert!(
            *d <= playlist.target_duration_s,
            "EXTINF {d} > {}",
            playlist.target_duration_s
        );
    }
    eprintln!(
        "target {} s, EXTINF {:?}, sequence {}",
        playlist.target_duration_s, playlist.extinf_s, playlist.media_sequence
    );
    for name in &playlist.segments {
        let seg = get_ok(&format!("{base}/{name}"));
        assert_eq!(seg.header("Content-Type"), Some("video/mp2t"));
        assert_eq!(seg.header("Access-Control-Allow-Origin"), Some("*"));
        let file = dir.join(format!("seg-{name}"));
        std::fs::write(&file, &seg.body).unwrap();
        assert!(
            first_frame_is_key(&file),
            "segment {name} starts with a keyframe"
        );
        let errors = decode_errors(file.to_str().unwrap());
        assert!(errors.trim().is_empty(), "segment {name} decodes: {errors}");
    }

    // Blocking reloads for the next part: each returns when the part appears.
    let mut waits_ms = Vec::new();
    let mut behind_ms = Vec::new();
    let mut hint = playlist.hint;
    let mut parts_s = Vec::new();
    for _ in 0..12 {
        let url = format!("{playlist_url}?_HLS_msn={}&_HLS_part={}", hint.0, hint.1);
        let asked = Instant::now();
        let r = get_ok(&url);
        let waited = asked.elapsed();
        let now = now_us();
        assert!(
            waited < Duration::from_secs(10),
            "blocking reload took {waited:?}"
        );
        let text = r.text();
        assert!(
            text.contains(&format!("{}.{}.ts", hint.0, hint.1)),
            "the part asked for is listed: {text}"
        );
        let p = parse_playlist(&text);
        parts_s.extend_from_slice(&p.parts_s);
        waits_ms.push(waited.as_secs_f64() * 1e3);
        behind_ms.push((now as f64 - p.newest_end_us as f64) / 1e3);
        hint = p.hint;
    }
    let worst_wait = waits_ms.iter().cloned().fold(0.0, f64::max);
    let worst_behind = behind_ms.iter().cloned().fold(f64::MIN, f64::max);
    let least_behind = behind_ms.iter().cloned().fold(f64::MAX, f64::min);
    eprintln!(
        "LL-HLS blocking reload: answered after median {:.0} ms (worst {worst_wait:.0} ms); \
         now minus the newest part's end (its DTS on the origin's clock): median {:.0} ms \
         (least {least_behind:.0}, worst {worst_behind:.0})",
        median(&mut waits_ms),
        median(&mut behind_ms)
    );
    let longest_part = parts_s.iter().cloned().fold(0.0, f64::max);
    eprintln!(
        "parts listed: median {:.3} s, longest {longest_part:.3} s, part target {:.3} s, \
         target duration {} s",
        median(&mut parts_s),
        playlist.part_target_s,
        playlist.target_duration_s
    );

    // The media sequence moves on once the window (6 segments) is full.
    let later = wait_for(
        "the media sequence moves on",
        Duration::from_secs(30),
        || {
            std::thread::sleep(Duration::from_secs(2));
            let p = parse_playlist(&get_ok(&playlist_url).text());
            (p.media_sequence > playlist.media_sequence).then_some(p)
        },
    );
    eprintln!(
        "media sequence {} then {} ({} segments listed)",
        playlist.media_sequence,
        later.media_sequence,
        later.segments.len()
    );

    // ffmpeg reading the playlist: 10 s, an unbroken run of the source's frames.
    let out = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-nostdin",
            "-v",
            "error",
            "-i",
            &playlist_url,
        ])
        .args(["-t", "10", "-map", "0:v:0", "-f", "framemd5", "-"])
        .output()
        .expect("run ffmpeg on the playlist");
    let errors = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(errors.trim().is_empty(), "the HLS stream decodes: {errors}");
    let hashes: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit(',').next().map(|h| h.trim().to_string()))
        .filter(|h| !h.is_empty())
        .collect();
    assert!(hashes.len() >= 200, "decoded {} frames", hashes.len());
    let at = find_run(&source_hashes, &hashes);
    assert!(
        at.is_some(),
        "{} HLS frames are an unbroken run of the source's",
        hashes.len()
    );
    eprintln!(
        "HLS via ffmpeg: {} frames, source frames {}..",
        hashes.len(),
        at.unwrap()
    );

    // A peer serves the same HLS on its local HTTP port.
    let peer_http = free_port();
    let _peer = Proc::tiercast(
        "peer",
        &[
            "peer",
            "--coordinator",
            &coordinator,
            "--channel",
            "e2e",
            "--uplink-kbps",
            "4000",
            "--http",
            &format!("127.0.0.1:{peer_http}"),
        ],
        &dir,
    );
    let peer_base = format!("http://127.0.0.1:{peer_http}/hls/e2e");
    let peer_playlist = wait_for("the peer's playlist", Duration::from_secs(40), || {
        let r = http_get(&format!("{peer_base}/index.m3u8"), Duration::from_secs(10)).ok()?;
        let p = (r.status == 200).then(|| parse_playlist(&r.text()))?;
        (p.segments.len() >= 2).then_some(p)
    });
    let name = peer_playlist.segments.last().unwrap();
    let seg = get_ok(&format!("{peer_base}/{name}"));
    let file = dir.join(format!("peer-seg-{name}"));
    std::fs::write(&file, &seg.body).unwrap();
    assert!(
        first_frame_is_key(&file),
        "the peer's segment {name} starts with a keyframe"
    );
    let errors = decode_errors(file.to_str().unwrap());
    assert!(
        errors.trim().is_empty(),
        "the peer's segment {name} decodes: {errors}"
    );
    eprintln!(
        "peer: {} segments listed, EXTINF {:?}",
        peer_playlist.segments.len(),
        peer_playlist.extinf_s
    );
    let _ = std::fs::remove_dir_all(&dir);
}
