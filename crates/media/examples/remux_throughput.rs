//! How fast the RTMP ingest's remux runs (issue 17, X1): FLV tag bodies of a
//! synthetic 8 Mbit/s H.264 + 128 kbit/s AAC stream (25 fps, a keyframe every
//! 2 s) go through `FlvToTs` and then `BlockCutter`, as in the origin. Prints
//! MB/s and seconds of stream per second of CPU, typical (median of 7 runs)
//! and worst (slowest run).
//!
//! `cargo run --release -p tiercast-media --example remux_throughput`

use std::time::Instant;

use tiercast_media::{BlockCutter, CutterConfig, FlvToTs};

const SECONDS: u64 = 60;
const FPS: u64 = 25;
const VIDEO_KBPS: u64 = 8_000;

fn video_tag(key: bool, size: usize, n: u64) -> Vec<u8> {
    let mut t = vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0];
    t.extend_from_slice(&(size as u32).to_be_bytes());
    t.push(if key { 0x65 } else { 0x41 });
    t.extend((1..size).map(|i| (i as u64 ^ n) as u8));
    t
}

fn main() {
    let mut avc = vec![
        0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x28, 0xFF, 0xE1, 0, 4, 0x67, 0x64, 0, 0x28,
    ];
    avc.extend_from_slice(&[1, 0, 2, 0x68, 0xEE]);
    let aac_config = [0xAF, 0, 0x11, 0x90];
    let frame_bytes = (VIDEO_KBPS * 1000 / 8 / FPS) as usize;
    let tags: Vec<(bool, u64, Vec<u8>)> = (0..SECONDS * FPS)
        .flat_map(|n| {
            let key = n % (2 * FPS) == 0;
            let size = if key {
                frame_bytes * 5
            } else {
                frame_bytes * 9 / 10
            };
            let ts = n * 1000 / FPS;
            let mut audio = vec![0xAF, 1];
            audio.extend(std::iter::repeat_n(0x21u8, 640));
            [(true, ts, video_tag(key, size, n)), (false, ts, audio)]
        })
        .collect();
    let input: usize = tags.iter().map(|t| t.2.len()).sum();
    let mut runs = Vec::new();
    for _ in 0..7 {
        let start = Instant::now();
        let mut remux = FlvToTs::new();
        let mut cutter = BlockCutter::new(CutterConfig::default());
        let mut ts = Vec::with_capacity(1 << 20);
        let (mut out_bytes, mut blocks, mut keyframes) = (0usize, 0u64, 0u64);
        remux.video(0, &avc, &mut ts).expect("config");
        remux.audio(0, &aac_config, &mut ts).expect("config");
        for (video, at, tag) in &tags {
            ts.clear();
            match video {
                true => remux.video(*at, tag, &mut ts).expect("video tag"),
                false => remux.audio(*at, tag, &mut ts).expect("audio tag"),
            }
            out_bytes += ts.len();
            cutter.push(&ts).expect("TS the cutter takes");
            while let Some(b) = cutter.poll_block() {
                blocks += 1;
                keyframes += u64::from(b.keyframe);
            }
        }
        runs.push(start.elapsed().as_secs_f64());
        assert_eq!(keyframes, SECONDS / 2, "one keyframe block per GOP");
        if runs.len() == 1 {
            println!(
                "stream: {SECONDS} s, {} MB of FLV tag bodies -> {} MB of TS ({:.1} % overhead), {blocks} blocks, {keyframes} keyframe blocks",
                input / 1_000_000,
                out_bytes / 1_000_000,
                (out_bytes as f64 / input as f64 - 1.0) * 100.0
            );
        }
    }
    runs.sort_by(f64::total_cmp);
    let median = runs[runs.len() / 2];
    let worst = runs[runs.len() - 1];
    let mb = input as f64 / 1e6;
    println!(
        "remux + cut: typical {:.0} MB/s ({:.0}x real time), worst {:.0} MB/s ({:.0}x real time), over 7 runs",
        mb / median,
        SECONDS as f64 / median,
        mb / worst,
        SECONDS as f64 / worst
    );
}
