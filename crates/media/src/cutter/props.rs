//! Property tests of the block cutter (X1, X2): any split of the input gives
//! the same blocks; generated streams (tables, video and audio with and
//! without random access, stuffing, garbage) keep every cutting rule; no
//! input makes it panic; input without sync bytes is refused with a reason.

use super::tests::{check_against_input, cut_chunks, es, pat, pids, pmt, Packet, AUDIO, VIDEO};
use super::*;
use crate::ts::PID_NULL;
use crate::TestSource;
use proptest::prelude::*;

/// One item of a generated stream.
#[derive(Debug, Clone)]
enum Item {
    Pat,
    Pmt,
    Video { rai: bool },
    Audio { rai: bool },
    Null,
    Garbage(Vec<u8>),
}

fn item() -> impl Strategy<Value = Item> {
    prop_oneof![
        1 => Just(Item::Pat),
        1 => Just(Item::Pmt),
        6 => any::<bool>().prop_map(|rai| Item::Video { rai }),
        2 => any::<bool>().prop_map(|rai| Item::Audio { rai }),
        1 => Just(Item::Null),
        1 => proptest::collection::vec(any::<u8>().prop_filter("no sync", |b| *b != SYNC_BYTE), 1..300)
            .prop_map(Item::Garbage),
    ]
}

/// Serialises items; garbage only where the cutter can resync without loss
/// (three clean packets since the start or the last garbage).
fn build(items: &[Item]) -> (Vec<u8>, Vec<Packet>, usize) {
    let (mut bytes, mut packets, mut garbage) = (Vec::new(), Vec::new(), 0);
    let mut clean_since_garbage = 0;
    for (i, item) in items.iter().enumerate() {
        let packet = match item {
            Item::Pat => pat(),
            Item::Pmt => pmt(),
            Item::Video { rai } => es(VIDEO, *rai, i as u8 & 0x3F),
            Item::Audio { rai } => es(AUDIO, *rai, i as u8 & 0x3F),
            Item::Null => es(PID_NULL, false, 0xFF),
            Item::Garbage(g) => {
                if i == 0 || clean_since_garbage >= 3 {
                    bytes.extend_from_slice(g);
                    garbage += g.len();
                    clean_since_garbage = 0;
                }
                continue;
            }
        };
        bytes.extend_from_slice(&packet);
        packets.push(packet);
        clean_since_garbage += 1;
    }
    (bytes, packets, garbage)
}

fn split(data: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    points.sort_unstable();
    let mut chunks = Vec::new();
    let mut start = 0;
    for p in points {
        chunks.push(data[start..p].to_vec());
        start = p;
    }
    chunks.push(data[start..].to_vec());
    chunks
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn arbitrary_splits_give_identical_blocks(
        cuts in proptest::collection::vec(any::<usize>(), 0..40),
        items in proptest::collection::vec(item(), 3..120),
    ) {
        let (mut data, _, _) = build(&[Item::Pat, Item::Pmt, Item::Video { rai: true }]);
        data.extend(build(&items).0);
        data.extend(TestSource::new(200, 200).generate(300_000));
        let whole = cut_chunks(CutterConfig::default(), &[&data]);
        let chunks = split(&data, &cuts);
        let refs: Vec<&[u8]> = chunks.iter().map(|c| c.as_slice()).collect();
        let pieces = cut_chunks(CutterConfig::default(), &refs);
        prop_assert_eq!(whole, pieces);
    }

    #[test]
    fn generated_streams_keep_every_rule(
        items in proptest::collection::vec(item(), 4..200),
        max_packets in 4usize..40,
    ) {
        let mut all = vec![Item::Video { rai: false }; 3];
        all.extend(items);
        let (data, packets, garbage) = build(&all);
        let cfg = CutterConfig { max_block_bytes: max_packets * PACKET_SIZE, ..CutterConfig::default() };
        let (result, blocks, stats) = cut_chunks(cfg, &[&data]);
        prop_assert_eq!(result, Ok(()));
        let refs: Vec<&[u8]> = packets.iter().map(|p| p.as_slice()).collect();
        let copies = check_against_input(&blocks, &refs);
        prop_assert_eq!(copies, stats.psi_copies);
        prop_assert_eq!(stats.resyncs, garbage as u64);
        prop_assert_eq!(stats.keyframes, blocks.iter().filter(|b| b.keyframe).count() as u64);
        for block in &blocks {
            prop_assert!(block.payload.len() <= max_packets * PACKET_SIZE);
            if block.keyframe {
                let p = pids(block);
                prop_assert!(p.len() >= 2 && p[0] == PID_PAT);
            }
        }
    }

    #[test]
    fn never_panics_on_arbitrary_bytes(
        data in proptest::collection::vec(any::<u8>(), 0..4000),
        cuts in proptest::collection::vec(any::<usize>(), 0..10),
        sync_every in proptest::option::of(1usize..400),
    ) {
        let mut data = data;
        if let Some(step) = sync_every {
            for i in (0..data.len()).step_by(step) {
                data[i] = SYNC_BYTE;
            }
        }
        let mut cutter = BlockCutter::new(CutterConfig { max_block_bytes: 1000, probe_bytes: 600 });
        for chunk in split(&data, &cuts) {
            let _ = cutter.push(&chunk);
            while let Some(block) = cutter.poll_block() {
                prop_assert_eq!(block.payload.len() % PACKET_SIZE, 0);
            }
            let _ = cutter.flush();
        }
        let _ = cutter.finish();
        while let Some(block) = cutter.poll_block() {
            prop_assert_eq!(block.payload.len() % PACKET_SIZE, 0);
        }
    }

    #[test]
    fn random_bytes_are_rejected_with_reason(
        data in proptest::collection::vec(any::<u8>().prop_filter("no sync", |b| *b != SYNC_BYTE), 1504..3000),
    ) {
        let mut cutter = BlockCutter::new(CutterConfig::default());
        let result = cutter.push(&data);
        let Err(IngestError::NotTransportStream { reason }) = result else {
            return Err(TestCaseError::fail("random bytes accepted"));
        };
        prop_assert!(reason.contains("no 0x47 sync byte"));
        prop_assert!(reason.contains("starts with"));
    }
}
