//! The audio-only feed (C3) against real ffmpeg: a 3 s H.264 + AAC stream made by
//! ffmpeg, cut into blocks as the origin cuts them, filtered block by block; ffprobe
//! must find exactly one stream, the audio, and ffmpeg must decode it whole without
//! an error. This test needs ffmpeg and ffprobe and FAILS without them
//! (`scripts/test.sh` installs them).

use std::path::PathBuf;
use std::process::Command;

use tiercast_media::{AudioOnlyFilter, BlockCutter, CutterConfig, PACKET_SIZE};

fn run(program: &str, args: &[&str]) -> std::process::Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} is required by this test (install ffmpeg): {e}"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tiercast-audio-only-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

#[test]
fn ffmpeg_stream_filtered_to_audio_only_probes_and_decodes() {
    let source = scratch("av.ts");
    let made = run(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-nostdin",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            "3",
            "-c:v",
            "libx264",
            "-g",
            "25",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "96k",
            "-f",
            "mpegts",
            source.to_str().unwrap(),
        ],
    );
    assert!(
        made.status.success(),
        "ffmpeg failed: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    let ts = std::fs::read(&source).expect("ffmpeg wrote the source");

    // Blocks as the origin cuts them, filtered one by one (as a relay does).
    let mut cutter = BlockCutter::new(CutterConfig::default());
    let mut filter = AudioOnlyFilter::new();
    let mut audio = Vec::new();
    let mut blocks = 0;
    for chunk in ts.chunks(1316) {
        cutter.push(chunk).expect("ffmpeg output is TS");
        while let Some(block) = cutter.poll_block() {
            audio.extend_from_slice(&filter.filter(&block.payload));
            blocks += 1;
        }
    }
    cutter.finish().expect("clean end");
    while let Some(block) = cutter.poll_block() {
        audio.extend_from_slice(&filter.filter(&block.payload));
        blocks += 1;
    }
    assert!(blocks > 10, "the stream was cut into {blocks} blocks");
    assert_eq!(audio.len() % PACKET_SIZE, 0);
    assert!(
        audio.len() * 2 < ts.len(),
        "audio-only is much lighter: {} of {} bytes",
        audio.len(),
        ts.len()
    );
    let stats = filter.stats();
    assert_eq!(stats.malformed, 0, "{stats:?}");
    assert!(stats.dropped > 0 && stats.pcr_packets > 0, "{stats:?}");
    let out = scratch("audio.ts");
    std::fs::write(&out, &audio).expect("write the output");

    let probe = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_entries",
            "stream=index,codec_type,codec_name",
            "-of",
            "csv=p=0",
            out.to_str().unwrap(),
        ],
    );
    assert!(
        probe.status.success(),
        "ffprobe failed: {}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let streams = String::from_utf8_lossy(&probe.stdout);
    // ffprobe lists each stream under its program and again on its own.
    let streams: std::collections::BTreeSet<&str> =
        streams.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        streams.into_iter().collect::<Vec<_>>(),
        vec!["0,aac,audio"],
        "only the audio stream is left"
    );

    let decoded = run(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-nostdin",
            "-i",
            out.to_str().unwrap(),
            "-f",
            "null",
            "-",
        ],
    );
    assert!(decoded.status.success());
    let errors = String::from_utf8_lossy(&decoded.stderr);
    assert!(errors.trim().is_empty(), "decoding reported: {errors}");

    // ~3 s of audio survives (AAC at 48 kHz: 1024 samples a frame).
    let frames = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-select_streams",
            "a:0",
            "-count_frames",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
            out.to_str().unwrap(),
        ],
    );
    let n: u32 = String::from_utf8_lossy(&frames.stdout)
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .expect("a frame count");
    assert!((130..=145).contains(&n), "{n} audio frames for 3 s");
    let _ = std::fs::remove_dir_all(source.parent().unwrap());
}
