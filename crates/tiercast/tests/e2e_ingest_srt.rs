//! End to end over real sockets (issue 17, Must show 1 and 2, SRT): real ffmpeg
//! publishes MPEG-TS over SRT to an origin that requires a publish key (from a
//! key file); a missing key (reject 2401), a wrong key (2403) and a second
//! publisher (2409) are refused and logged; the key file is rotated while the
//! stream runs — the stream goes on, the old key is refused afterwards; a
//! viewer at tier 2 gets a capture that decodes with no error and whose frames
//! are an unbroken run of the source's. The origin's ingest report gives the
//! bitrate in, the keyframe interval and the refusals; the coordinator's
//! `/status` shows the origin's ingest report; an encoder paused with SIGSTOP
//! is logged as a stalled-encoder event by the origin and is an event of the
//! coordinator (`EncoderStalled`, then `EncoderResumed` when it goes on).

mod support;

use std::time::Duration;
use support::*;

#[test]
fn srt_publish_with_keys_through_two_tiers() {
    require_ffmpeg_protocol("srt");
    let dir = temp_dir("e2e-ingest-srt");
    let (src, source) = encode_source(&dir, 40, false);
    let keys = dir.join("keys");
    std::fs::write(&keys, "# channel key\ne2e oldkey123\n").unwrap();
    let srt = format!("127.0.0.1:{}", free_port());
    let report = dir.join("ingest.json");
    let cluster = IngestCluster::start(
        &dir,
        "e2e",
        &[
            "--ingest-srt",
            &srt,
            "--publish-keys",
            keys.to_str().unwrap(),
            "--ingest-report",
            report.to_str().unwrap(),
        ],
    );
    let within = Duration::from_secs(8);

    // No key, then a wrong key: refused with the SRT reject code in the log.
    let url = |id: &str| format!("srt://{srt}?mode=caller&streamid={id}");
    let (st, _) = ffmpeg_refused("push-nokey", &src, "mpegts", &url(""), &dir, within);
    assert!(
        st.is_some_and(|s| !s.success()),
        "a publisher without key is refused"
    );
    wait_log_line(&dir, "origin", "code=2401", within);
    let (st, _) = ffmpeg_refused(
        "push-wrong",
        &src,
        "mpegts",
        &url("nope12345"),
        &dir,
        within,
    );
    assert!(st.is_some_and(|s| !s.success()), "a wrong key is refused");
    wait_log_line(&dir, "origin", "code=2403", within);

    // The publisher: SRT's access-control stream id (`#!::r=CHANNEL,k=KEY`).
    let push = ffmpeg_push(
        "push",
        &src,
        "mpegts",
        &url("%23!::r=e2e,k=oldkey123"),
        &dir,
    );
    wait_log_line(&dir, "origin", "SRT ingest: publisher connected", within);
    std::thread::sleep(Duration::from_secs(2));

    // Rotation while streaming: the new key is in force within ~1 s.
    std::fs::write(&keys, "e2e newkey456\n").unwrap();
    wait_log_line(&dir, "origin", "publish keys reloaded", within);

    // A second publisher with a good key: refused, the first one stays.
    let (st, _) = ffmpeg_refused(
        "push-second",
        &src,
        "mpegts",
        &url("newkey456"),
        &dir,
        within,
    );
    assert!(
        st.is_some_and(|s| !s.success()),
        "a second publisher is refused"
    );
    wait_log_line(&dir, "origin", "another publisher is live", within);
    // The old key no longer opens the ingest.
    let (st, _) = ffmpeg_refused(
        "push-oldkey",
        &src,
        "mpegts",
        &url("oldkey123"),
        &dir,
        within,
    );
    assert!(
        st.is_some_and(|s| !s.success()),
        "the rotated-out key is refused"
    );
    let refusals = wait_log_line(&dir, "origin", "code=2403", within);
    assert_eq!(
        refusals.lines().count(),
        2,
        "wrong key and old key: {refusals}"
    );

    // The first publisher's stream, captured at tier 2 after the rotation.
    let (frames, at) = capture_matches(&cluster.tier2_url("e2e"), 12, &source, &dir, "viewer");
    eprintln!(
        "SRT: viewer at tier 2 got {frames} frames, source frames {at}..{}",
        at + frames
    );

    // The ingest report: what came in and what was refused.
    let r = read_report(&report);
    eprintln!("SRT ingest report: {r}");
    assert_eq!(r["refused_keys"], 3, "no key, wrong key, old key");
    assert_eq!(r["refused_busy"], 1, "the second publisher");
    let h = &r["health"];
    assert_eq!(h["publishing"], true);
    let kbps = h["bitrate_in_kbps"].as_u64().unwrap();
    assert!(
        (400..=2000).contains(&kbps),
        "bitrate in {kbps} kbit/s (source ~840)"
    );
    let gop = h["keyframe_interval_ms"].as_u64().unwrap();
    assert!(
        (500..=1500).contains(&gop),
        "keyframe interval {gop} ms (GOP 1 s)"
    );

    // The coordinator has the origin's report of the healthy ingest.
    let ingest = |s: &serde_json::Value| s["channels"][0]["ingest"].clone();
    let healthy = wait_for("the ingest report at the coordinator", within, || {
        let i = ingest(&status_json(&cluster.coordinator)?);
        (i["publishing"] == true && i["bitrate_in_kbps"].as_u64()? > 0).then_some(i)
    });
    eprintln!("SRT ingest at the coordinator: {healthy}");
    assert_eq!(healthy["stalled"], false);
    assert!(healthy["age_ms"].as_u64().unwrap() <= 6_000, "{healthy}");

    // A paused encoder is a stalled-encoder event, at the origin and at the
    // coordinator (its /status: the report says stalled, the event is listed).
    let pid = push.pid().to_string();
    let _ = std::process::Command::new("kill")
        .args(["-STOP", &pid])
        .status();
    wait_log_line(&dir, "origin", "encoder stalled", Duration::from_secs(8));
    let stalled = wait_for("the stall at the coordinator", within, || {
        let s = status_json(&cluster.coordinator)?;
        let event = s["events"].as_array()?.iter().any(|e| {
            e["event"]
                .as_str()
                .is_some_and(|t| t.contains("EncoderStalled"))
        });
        event.then(|| ingest(&s))
    });
    eprintln!("SRT stalled ingest at the coordinator: {stalled}");
    assert!(stalled["stalls"].as_u64().unwrap() >= 1, "{stalled}");
    let _ = std::process::Command::new("kill")
        .args(["-CONT", &pid])
        .status();
    // The stall's end reaches the coordinator too: input again, or (when
    // the SRT link timed out while the encoder was paused) the publisher gone.
    let end = wait_for("the stall's end at the coordinator", within, || {
        let s = status_json(&cluster.coordinator)?;
        s["events"].as_array()?.iter().find_map(|e| {
            let t = e["event"].as_str()?;
            (t.contains("EncoderResumed") || t.contains("EncoderLeft")).then(|| t.to_string())
        })
    });
    eprintln!("SRT stall ended at the coordinator: {end}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Caller mode: ffmpeg listens (`mode=listener`), the origin dials it.
#[test]
fn srt_caller_mode_dials_a_listening_ffmpeg() {
    require_ffmpeg_protocol("srt");
    let dir = temp_dir("e2e-ingest-srt-caller");
    let (src, source) = encode_source(&dir, 30, false);
    let encoder = format!("127.0.0.1:{}", free_port());
    let _push = ffmpeg_push(
        "push",
        &src,
        "mpegts",
        &format!("srt://{encoder}?mode=listener"),
        &dir,
    );
    let cluster = IngestCluster::start(&dir, "e2e", &["--ingest-srt-call", &encoder]);
    wait_log_line(
        &dir,
        "origin",
        "SRT caller: connected",
        Duration::from_secs(10),
    );
    std::thread::sleep(Duration::from_secs(2));
    let (frames, at) = capture_matches(&cluster.tier2_url("e2e"), 10, &source, &dir, "viewer");
    eprintln!(
        "SRT caller: viewer at tier 2 got {frames} frames, source frames {at}..{}",
        at + frames
    );
    let _ = std::fs::remove_dir_all(&dir);
}
