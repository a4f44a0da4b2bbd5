//! End to end over real sockets (Must show 3 of the foundation issue): ffmpeg pushes
//! an H.264 test stream over TCP to an origin process; it crosses relays in 3 tiers
//! (separate processes); two viewers come in through the coordinator's `/watch`
//! redirect and read `/live/<channel>.ts`; what each received decodes without errors
//! for at least 10 s, and its frames are an unbroken run of the source's frames.

mod support;

use std::process::Command;
use std::time::Duration;
use support::*;

#[test]
fn ffmpeg_stream_through_three_tiers_to_two_viewers() {
    require_ffmpeg();
    let dir = temp_dir("e2e-stream");
    let src = dir.join("src.ts");
    let st = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-nostdin",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25",
        ])
        .args([
            "-t",
            "40",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "25",
            "-pix_fmt",
            "yuv420p",
            "-f",
            "mpegts",
        ])
        .arg(&src)
        .status()
        .expect("ffmpeg encodes the source");
    assert!(st.success());
    let (source_hashes, err) = framemd5(&src);
    assert!(err.is_empty(), "source decodes cleanly: {err}");
    assert_eq!(source_hashes.len(), 1000);

    let cport = free_port();
    let coordinator = format!("http://127.0.0.1:{cport}");
    let _coord = Proc::tiercast(
        "coordinator",
        &["coordinator", "--listen", &format!("127.0.0.1:{cport}")],
        &dir,
    );
    let mut relays = Vec::new();
    for tier in 1..=3 {
        let t = tier.to_string();
        relays.push(Proc::tiercast(
            &format!("relay-t{tier}"),
            &[
                "relay",
                "--coordinator",
                &coordinator,
                "--tier",
                &t,
                "--capacity",
                "10",
            ],
            &dir,
        ));
    }
    let (_origin, ingest) = tcp_origin(&coordinator, "e2e", &[], &dir);
    wait_active_relays(&coordinator, 3);
    let _push = push_tcp(&src, &ingest, &dir);
    std::thread::sleep(Duration::from_secs(4));

    let viewers: Vec<_> = (0..2)
        .map(|i| {
            let url = format!("{coordinator}/watch/e2e");
            std::thread::spawn(move || (i, http_get_follow(&url, Duration::from_secs(14))))
        })
        .collect();
    for v in viewers {
        let (i, res) = v.join().expect("viewer thread");
        let (relay_url, resp) = res.expect("viewer request");
        assert_eq!(resp.status, 200, "viewer {i} at {relay_url}");
        assert!(
            relay_url.contains("/live/e2e.ts"),
            "redirected to a relay: {relay_url}"
        );
        assert_eq!(resp.header("Content-Type"), Some("video/mp2t"));
        let file = dir.join(format!("viewer{i}.ts"));
        std::fs::write(&file, trim_to_last_keyframe(&resp.body)).expect("write viewer stream");
        let (hashes, err) = framemd5(&file);
        assert!(
            err.trim().is_empty(),
            "viewer {i} decodes without errors, got: {err}"
        );
        assert!(
            hashes.len() >= 250,
            "viewer {i} decoded {} frames (>= 10 s at 25 fps)",
            hashes.len()
        );
        let at = find_run(&source_hashes, &hashes);
        assert!(
            at.is_some(),
            "viewer {i}: its {} frames are an unbroken run of the source's",
            hashes.len()
        );
        eprintln!(
            "viewer {i}: {} frames from {relay_url}, source frames {}..{}",
            hashes.len(),
            at.unwrap(),
            at.unwrap() + hashes.len()
        );
    }
    // The path really crossed three tiers of relays.
    let s = status_json(&coordinator).expect("status");
    let tiers: Vec<u64> = s["channels"][0]["active"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["tier"].as_u64().unwrap())
        .collect();
    assert_eq!(tiers.len(), 3);
    let _ = std::fs::remove_dir_all(&dir);
}
