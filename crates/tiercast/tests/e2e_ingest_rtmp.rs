//! End to end over real sockets (issue 17, Must show 1 and 2, RTMP): real
//! ffmpeg publishes FLV (H.264 + AAC) over RTMP, `rtmp://host:port/live/KEY`,
//! to an origin that requires a publish key; a missing key, a wrong key and a
//! second publisher are refused with `NetStream.Publish.BadName` and a
//! description ffmpeg prints; the remuxed stream, captured by a viewer at
//! tier 2, decodes with no error and its decoded frames are an unbroken run
//! of the source's (the container changed, the frames did not).

mod support;

use std::time::Duration;
use support::*;

#[test]
fn rtmp_publish_with_key_through_two_tiers() {
    require_ffmpeg_protocol("rtmp");
    let dir = temp_dir("e2e-ingest-rtmp");
    let (src, source) = encode_source(&dir, 40, true);
    let rtmp = format!("127.0.0.1:{}", free_port());
    let cluster = IngestCluster::start(
        &dir,
        "e2e",
        &["--ingest-rtmp", &rtmp, "--publish-key", "rtmpkey1"],
    );
    let within = Duration::from_secs(8);
    let url = |key: &str| format!("rtmp://{rtmp}/live/{key}");

    let (st, log) = ffmpeg_refused("push-nokey", &src, "flv", &url(""), &dir, within);
    assert!(st.is_some_and(|s| !s.success()), "no key refused: {log}");
    assert!(
        log.contains("publish key missing"),
        "ffmpeg shows why: {log}"
    );
    let (st, log) = ffmpeg_refused("push-wrong", &src, "flv", &url("nope"), &dir, within);
    assert!(st.is_some_and(|s| !s.success()), "wrong key refused: {log}");
    assert!(
        log.contains("publish key refused"),
        "ffmpeg shows why: {log}"
    );
    let lines = wait_log_line(&dir, "origin", "RTMP ingest: refusing publisher", within);
    assert_eq!(lines.lines().count(), 2, "both refusals logged: {lines}");

    let _push = ffmpeg_push("push", &src, "flv", &url("rtmpkey1"), &dir);
    wait_log_line(&dir, "origin", "RTMP ingest: publisher connected", within);
    std::thread::sleep(Duration::from_secs(2));
    let (st, log) = ffmpeg_refused("push-second", &src, "flv", &url("rtmpkey1"), &dir, within);
    assert!(
        st.is_some_and(|s| !s.success()),
        "second publisher refused: {log}"
    );
    assert!(
        log.contains("another publisher is live"),
        "ffmpeg shows why: {log}"
    );

    let (frames, at) = capture_matches(&cluster.tier2_url("e2e"), 12, &source, &dir, "viewer");
    eprintln!(
        "RTMP: viewer at tier 2 got {frames} frames, source frames {at}..{}",
        at + frames
    );
    let _ = std::fs::remove_dir_all(&dir);
}
