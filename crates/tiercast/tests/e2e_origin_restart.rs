//! The origin restarted over real sockets (issue 10, Must show 1; X1, X3, D7):
//! ffmpeg pushes an H.264 stream over UDP to `tiercast origin` started with the
//! README's arguments; it crosses two tiers of relays to an HTTP viewer and a
//! protocol viewer. The origin is SIGKILLed mid-stream and started again with the
//! same arguments: it keeps its key and its seq (its data directory), so the
//! relays take its blocks at once — none rejected, none dropped as a duplicate —
//! and blocks reach the viewers again within 3 s of the restart. The capture is
//! the source's frames in one unbroken run before the gap and one after it. Two
//! wrong origins on the live channel fail with a clear message and leave the live
//! one untouched: one with another key, one whose ingest port is taken.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};
use support::*;

const FPS: usize = 25;

fn relay_channel(port: u16) -> Option<serde_json::Value> {
    let s = status_json(&format!("http://127.0.0.1:{port}"))?;
    s["channels"].as_array()?.first().cloned()
}

fn stored(port: u16) -> Option<u64> {
    relay_channel(port)?["stored"].as_u64()
}

/// The longest run of `hay` that `needle` starts with (at any place of `hay`).
fn longest_prefix_run(hay: &[String], needle: &[String]) -> (usize, usize) {
    let mut best = (0, 0);
    for start in 0..hay.len() {
        let n = hay[start..]
            .iter()
            .zip(needle)
            .take_while(|(a, b)| a == b)
            .count();
        if n > best.1 {
            best = (start, n);
        }
    }
    best
}

#[test]
fn a_restarted_origin_is_played_at_once_and_a_wrong_second_origin_is_refused() {
    require_ffmpeg();
    let dir = temp_dir("e2e-origin-restart");
    let src = dir.join("src.ts");
    let st = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-f", "lavfi"])
        .args(["-i", &format!("testsrc2=size=320x240:rate={FPS}")])
        .args(["-t", "60", "-c:v", "libx264", "-preset", "ultrafast"])
        .args(["-g", "25", "-pix_fmt", "yuv420p", "-f", "mpegts"])
        .arg(&src)
        .status()
        .expect("ffmpeg encodes the source");
    assert!(st.success());
    let (source, err) = framemd5(&src);
    assert!(err.is_empty(), "source decodes cleanly: {err}");

    let (_coord, coordinator) = coordinator_proc(&dir);
    let (p1, p2) = (free_port(), free_port());
    let _relays = relays_in_tiers(&coordinator, &[p1, p2], &dir);
    let ingest = format!("127.0.0.1:{}", free_port());
    // The README's arguments, the same both times.
    let origin_args = [
        "origin",
        "--coordinator",
        &coordinator,
        "--channel",
        "live",
        "--udp",
        &ingest,
    ];
    let mut origin = Proc::tiercast("origin-1", &origin_args, &dir);
    wait_for("2 relays active", Duration::from_secs(20), || {
        let s = status_json(&coordinator)?;
        let ch = s["channels"].as_array()?.first()?.clone();
        (ch["active"].as_array()?.len() == 2).then_some(())
    });
    let _push = Proc::spawn(
        "ffmpeg-push",
        Command::new("ffmpeg")
            .args(["-hide_banner", "-nostdin", "-v", "error", "-re", "-i"])
            .arg(&src)
            .args([
                "-c",
                "copy",
                "-f",
                "mpegts",
                &format!("udp://{ingest}?pkt_size=1316"),
            ]),
        &dir,
    );
    let url = format!("{coordinator}/watch/live");
    let capture = std::thread::spawn(move || http_get_follow(&url, Duration::from_secs(22)));
    let report = dir.join("viewer.json");
    let mut viewer = protocol_viewer("viewer", &coordinator, 20, &report, &dir);
    // Relays log in to their parents once they have a viewer (V3).
    wait_for(
        "blocks at the tier-2 relay",
        Duration::from_secs(15),
        || stored(p2).filter(|s| *s > 20),
    );
    std::thread::sleep(Duration::from_secs(4));
    origin.kill();
    std::thread::sleep(Duration::from_secs(1));
    let before = stored(p2).expect("relay status");
    let seq_before = relay_channel(p2).expect("relay status")["highest_seq"]
        .as_u64()
        .expect("a seq");
    let restarted_at = Instant::now();
    let _origin2 = Proc::tiercast("origin-2", &origin_args, &dir);
    let back = wait_for(
        "blocks of the restarted origin at the tier-2 relay",
        Duration::from_secs(10),
        || (stored(p2)? > before).then(Instant::now),
    );
    let took = back - restarted_at;
    eprintln!("blocks again {took:?} after the origin was started again");
    assert!(
        took <= Duration::from_secs(3),
        "the restarted origin's blocks reach the viewers' relay within 3 s (took {took:?})"
    );
    let ch = relay_channel(p2).expect("relay status");
    assert!(ch["highest_seq"].as_u64().unwrap() > seq_before);

    // A second origin with another key, and one whose ingest port is taken.
    let other = |name: &str, ingest: &str| {
        let d = dir.join(format!("state-{name}"));
        Proc::tiercast(
            name,
            &[
                "origin",
                "--coordinator",
                &coordinator,
                "--channel",
                "live",
                "--udp",
                ingest,
                "--data-dir",
                d.to_str().unwrap(),
            ],
            &dir,
        )
    };
    let free_ingest = format!("127.0.0.1:{}", free_port());
    for (name, ingest, says) in [
        (
            "origin-other-key",
            free_ingest.as_str(),
            "refused channel 'live'",
        ),
        ("origin-busy-port", ingest.as_str(), "cannot start ingest"),
    ] {
        let mut p = other(name, ingest);
        let st = p.wait_exit(Duration::from_secs(15)).expect("it gives up");
        assert!(!st.success(), "{name} fails");
        let log = std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap();
        assert!(log.contains(says), "{name} says why: {log}");
    }
    let still = stored(p2).unwrap();
    wait_for(
        "the live origin still feeds the relays",
        Duration::from_secs(5),
        || (stored(p2)? > still).then_some(()),
    );

    let (relay_url, resp) = capture.join().expect("capture").expect("viewer GET");
    assert_eq!(resp.status, 200, "viewer at {relay_url}");
    assert!(viewer.wait_exit(Duration::from_secs(20)).is_some());
    for port in [p1, p2] {
        let ch = relay_channel(port).expect("relay status");
        assert_eq!(ch["duplicates"], 0, "no block dropped as a duplicate: {ch}");
        assert_eq!(ch["rejected"], 0, "no block rejected: {ch}");
    }
    let v = read_report(&report);
    eprintln!("protocol viewer: {v}");
    assert!(v["last_seq"].as_u64().unwrap() > seq_before, "{v}");
    assert_eq!(v["duplicates"], 0, "{v}");

    // The capture: an unbroken run of the source, the restart gap, another.
    let file = dir.join("viewer.ts");
    std::fs::write(&file, trim_to_last_keyframe(&resp.body)).unwrap();
    let (got, _) = framemd5(&file);
    let (a_at, a_len) = longest_prefix_run(&source, &got);
    assert!(
        a_len >= 4 * FPS,
        "the capture starts with a run of the source ({a_len} frames)"
    );
    // After the gap, frames that were cut mid-GOP may not decode as the source's;
    // from the first keyframe on the run is unbroken to the end of the capture.
    let rest = &got[a_len..];
    let skip = rest
        .iter()
        .position(|h| source.contains(h))
        .expect("frames after the restart");
    assert!(
        skip <= 2 * FPS,
        "at most a GOP or two decode wrong after the gap ({skip})"
    );
    let tail = &rest[skip..];
    let b_at = find_run(&source, tail);
    assert!(
        b_at.is_some(),
        "after the restart the capture is one unbroken run of the source ({} frames)",
        tail.len()
    );
    let b_at = b_at.unwrap();
    assert!(tail.len() >= 4 * FPS, "{} frames after the gap", tail.len());
    assert!(
        b_at > a_at + a_len,
        "the second run comes later in the source"
    );
    eprintln!(
        "capture: source frames {a_at}..{} then (gap, {skip} frames skipped) {b_at}..{}",
        a_at + a_len,
        b_at + tail.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
