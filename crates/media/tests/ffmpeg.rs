//! End-to-end checks against real ffmpeg (X1, X2): the block cutter on a 3 s
//! H.264 stream with a keyframe every second gives three keyframe blocks, each
//! starting with PAT and PMT; the built-in test source is read and decoded by
//! ffprobe/ffmpeg without a single error. These tests need ffmpeg and ffprobe and
//! FAIL without them (`scripts/test.sh` installs them).

use std::process::{Command, Stdio};

use tiercast_media::psi::{parse_pat, parse_pmt};
use tiercast_media::ts::pid_of;
use tiercast_media::{BlockCutter, CutterConfig, TestSource, TsPacket, PACKET_SIZE};

/// Panics unless ffmpeg and ffprobe run: these tests never pass without them.
fn require_ffmpeg() {
    for tool in ["ffmpeg", "ffprobe"] {
        let ran = Command::new(tool)
            .arg("-version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        assert!(
            ran.as_ref().is_ok_and(|s| s.success()),
            "{tool} is required by this test and could not be run ({ran:?}): install ffmpeg \
             (scripts/test.sh installs it with apt)"
        );
    }
}

#[test]
fn ffmpeg_h264_stream_gives_one_keyframe_block_per_gop() {
    require_ffmpeg();
    let output = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=320x240:rate=25")
        .args([
            "-t",
            "3",
            "-c:v",
            "libx264",
            "-g",
            "25",
            "-sc_threshold",
            "0",
        ])
        .args(["-pix_fmt", "yuv420p", "-f", "mpegts", "pipe:1"])
        .output()
        .expect("run ffmpeg");
    assert!(
        output.status.success(),
        "ffmpeg failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let ts = output.stdout;
    assert!(ts.len() > 10 * PACKET_SIZE);

    // Odd-sized pushes, as a network would deliver them.
    let mut cutter = BlockCutter::new(CutterConfig::default());
    let mut blocks = Vec::new();
    for chunk in ts.chunks(1000) {
        cutter.push(chunk).expect("ffmpeg output is TS");
        blocks.extend(std::iter::from_fn(|| cutter.poll_block()));
    }
    cutter.finish().expect("clean end");
    blocks.extend(std::iter::from_fn(|| cutter.poll_block()));

    let stats = cutter.stats();
    assert_eq!(stats.resyncs, 0);
    assert_eq!(stats.packets as usize * PACKET_SIZE, ts.len());
    let keyframes: Vec<_> = blocks.iter().filter(|b| b.keyframe).collect();
    assert_eq!(keyframes.len(), 3, "one keyframe block per second of video");
    let video_pid = cutter.video_pid().expect("PMT names an H.264 stream");
    for block in keyframes {
        let pat = TsPacket::parse(&block.payload[..PACKET_SIZE]).unwrap();
        let pmt_pid = parse_pat(&pat).expect("block starts with a PAT").programs[0].pmt_pid;
        let pmt_packet = block
            .payload
            .chunks(PACKET_SIZE)
            .find(|p| pid_of(p) == pmt_pid)
            .expect("keyframe block carries the PMT");
        let pmt = parse_pmt(&TsPacket::parse(pmt_packet).unwrap()).unwrap();
        assert_eq!(pmt.video_pid(), Some(video_pid));
        let first_video = block
            .payload
            .chunks(PACKET_SIZE)
            .map(|p| TsPacket::parse(p).unwrap())
            .find(|p| p.pid == video_pid)
            .expect("keyframe block has video");
        assert!(first_video.random_access && first_video.payload_unit_start);
    }
    assert_eq!(stats.keyframes, 3);
    eprintln!(
        "ffmpeg: {} bytes, {} blocks, {} keyframes, {} PSI copies",
        ts.len(),
        stats.blocks,
        stats.keyframes,
        stats.psi_copies
    );
}

#[test]
fn test_source_is_read_and_decoded_without_errors() {
    require_ffmpeg();
    let path = std::env::temp_dir().join(format!("tiercast-test-source-{}.ts", std::process::id()));
    std::fs::write(&path, TestSource::new(800, 1000).generate(5_000_000)).expect("write temp file");
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,width,height",
            "-of",
            "csv=p=0",
        ])
        .arg(&path)
        .output()
        .expect("run ffprobe");
    let decode = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-i"])
        .arg(&path)
        .args(["-f", "null", "-"])
        .output()
        .expect("run ffmpeg");
    let _ = std::fs::remove_file(&path);
    assert!(probe.status.success() && decode.status.success());
    assert_eq!(
        String::from_utf8_lossy(&probe.stderr),
        "",
        "ffprobe reported errors"
    );
    // ffprobe lists the stream once under the program and once on its own.
    let streams = String::from_utf8_lossy(&probe.stdout).to_string();
    assert!(
        !streams.trim().is_empty()
            && streams
                .lines()
                .filter(|l| !l.is_empty())
                .all(|l| l == "h264,128,96"),
        "unexpected streams: {streams}"
    );
    assert_eq!(
        String::from_utf8_lossy(&decode.stderr),
        "",
        "ffmpeg reported decoding errors"
    );
}
