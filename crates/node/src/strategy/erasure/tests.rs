//! Tests of the D5 erasure groups: any k of k+n shards rebuild the group.

use super::*;
use proptest::prelude::*;

fn payloads(lens: &[usize]) -> Vec<Bytes> {
    lens.iter()
        .enumerate()
        .map(|(i, &len)| {
            Bytes::from(
                (0..len)
                    .map(|b| (b * 7 + i * 13) as u8)
                    .collect::<Vec<u8>>(),
            )
        })
        .collect()
}

/// Shard `index` of a group: an original payload or a recovery shard.
fn shard(originals: &[Bytes], recovery: &[Bytes], index: usize) -> Bytes {
    match index.checked_sub(originals.len()) {
        None => originals[index].clone(),
        Some(j) => recovery[j].clone(),
    }
}

#[test]
fn params_reject_bad_k_and_n() {
    assert_eq!(ErasureParams::new(0, 3), Err(ErasureError::NoOriginals));
    assert_eq!(
        ErasureParams::new(200, 56),
        Err(ErasureError::TooManyShards { total: 256 })
    );
    assert!(matches!(
        ErasureParams::new(usize::MAX, 2),
        Err(ErasureError::TooManyShards { .. })
    ));
    let p = ErasureParams::new(200, 55).expect("255 shards is the limit");
    assert_eq!((p.originals(), p.recovery(), p.total()), (200, 55, 255));
    assert!(ErasureParams::new(1, 0).is_ok());
}

#[test]
fn seq_arithmetic_of_groups() {
    let p = ErasureParams::new(4, 2).expect("valid");
    assert_eq!((p.group_of(9), p.index_in_group(9)), (2, 1));
    assert_eq!(p.seq_of(2, 1), Some(9));
    assert_eq!(p.seq_of(2, 4), None, "recovery shards have no seq");
    assert_eq!(p.seq_of(u64::MAX, 0), None);
}

#[test]
fn rebuilds_missing_originals_of_unequal_length() {
    let p = ErasureParams::new(3, 2).expect("valid");
    let originals = payloads(&[10, 0, 37]);
    let recovery = ErasureEncoder::new(p)
        .encode_group(&originals)
        .expect("encodes");
    assert_eq!(recovery.len(), 2);
    assert!(
        recovery.iter().all(|r| r.len() == 42),
        "4-byte prefix + 37, rounded to even"
    );

    let mut dec = ErasureDecoder::new(p, 7);
    assert_eq!(
        dec.insert(4, recovery[1].clone()),
        Ok(DecodeProgress::Pending { have: 1, need: 3 })
    );
    dec.insert(1, originals[1].clone()).expect("fits");
    assert!(dec.originals().is_none());
    let done = dec.insert(3, recovery[0].clone()).expect("decodes");
    assert_eq!(
        done,
        DecodeProgress::Complete {
            restored: vec![(0, originals[0].clone()), (2, originals[2].clone())]
        }
    );
    assert_eq!(dec.originals(), Some(originals.clone()));
    // The real block arriving after its rebuild is not needed, but not an error.
    assert_eq!(
        dec.insert(0, originals[0].clone()),
        Ok(DecodeProgress::AlreadyComplete)
    );
    assert_eq!(
        dec.insert(0, originals[0].clone()),
        Err(ErasureError::DuplicateShard { group: 7, index: 0 })
    );
    assert_eq!(
        dec.insert(4, recovery[1].clone()),
        Err(ErasureError::DuplicateShard { group: 7, index: 4 })
    );
}

#[test]
fn all_originals_need_no_decoding_and_late_shards_are_ignored() {
    let p = ErasureParams::new(2, 1).expect("valid");
    let originals = payloads(&[5, 6]);
    let recovery = ErasureEncoder::new(p)
        .encode_group(&originals)
        .expect("encodes");
    let mut dec = ErasureDecoder::new(p, 0);
    dec.insert(0, originals[0].clone()).expect("ok");
    assert_eq!(
        dec.insert(1, originals[1].clone()),
        Ok(DecodeProgress::Complete { restored: vec![] })
    );
    assert_eq!(
        dec.insert(2, recovery[0].clone()),
        Ok(DecodeProgress::AlreadyComplete)
    );
}

#[test]
fn shard_errors_are_typed() {
    let p = ErasureParams::new(2, 2).expect("valid");
    let originals = payloads(&[8, 20]);
    let recovery = ErasureEncoder::new(p)
        .encode_group(&originals)
        .expect("encodes");
    let mut dec = ErasureDecoder::new(p, 1);
    assert_eq!(
        dec.insert(4, recovery[0].clone()),
        Err(ErasureError::IndexOutOfRange { index: 4, total: 4 })
    );
    dec.insert(2, recovery[0].clone())
        .expect("first recovery sets the size");
    assert_eq!(
        dec.insert(3, recovery[1].slice(..10)),
        Err(ErasureError::ShardSizeMismatch {
            index: 3,
            expected: 24,
            got: 10
        })
    );
    assert_eq!(
        dec.insert(0, Bytes::from(vec![0u8; 21])),
        Err(ErasureError::ShardSizeMismatch {
            index: 0,
            expected: 24,
            got: 25
        })
    );
    assert_eq!(
        dec.insert(2, recovery[0].clone()),
        Err(ErasureError::DuplicateShard { group: 1, index: 2 })
    );

    // A recovery shard too small for an original already held, or odd-sized.
    let mut dec = ErasureDecoder::new(p, 1);
    dec.insert(1, originals[1].clone()).expect("ok");
    assert_eq!(
        dec.insert(2, Bytes::from(vec![0u8; 10])),
        Err(ErasureError::ShardSizeMismatch {
            index: 2,
            expected: 24,
            got: 10
        })
    );
    assert_eq!(
        dec.insert(3, Bytes::from(vec![0u8; 31])),
        Err(ErasureError::ShardSizeMismatch {
            index: 3,
            expected: 32,
            got: 31
        })
    );
    assert_eq!(
        ErasureEncoder::new(p).encode_group(&originals[..1]),
        Err(ErasureError::WrongOriginalCount {
            expected: 2,
            got: 1
        })
    );
}

#[test]
fn corrupt_recovery_never_panics() {
    let p = ErasureParams::new(2, 2).expect("valid");
    let mut dec = ErasureDecoder::new(p, 0);
    dec.insert(2, Bytes::from(vec![0xff; 8])).expect("sized");
    let out = dec.insert(3, Bytes::from(vec![0x5a; 8]));
    assert!(matches!(
        out,
        Err(ErasureError::Corrupt { .. }) | Ok(DecodeProgress::Complete { .. })
    ));
}

#[test]
fn encoder_push_emits_recovery_when_a_group_fills() {
    let p = ErasureParams::new(3, 2).expect("valid");
    let mut enc = ErasureEncoder::new(p);
    let originals = payloads(&[4, 9, 2]);
    assert_eq!(enc.push(4, originals[1].clone()), Ok(None));
    assert_eq!(
        enc.push(4, originals[1].clone()),
        Err(ErasureError::DuplicateShard { group: 1, index: 1 })
    );
    assert_eq!(enc.push(3, originals[0].clone()), Ok(None));
    let group = enc
        .push(5, originals[2].clone())
        .expect("ok")
        .expect("group 1 is full");
    assert_eq!(group.group, 1);
    assert_eq!(
        group.shards,
        enc.encode_group(&originals).expect("same coding")
    );

    for g in 10..10 + MAX_PENDING_GROUPS as u64 + 3 {
        enc.push(g * 3, Bytes::from_static(b"x")).expect("ok");
    }
    assert_eq!(enc.dropped_groups(), 3);
}

#[test]
fn zero_redundancy_needs_every_original() {
    let p = ErasureParams::new(2, 0).expect("valid");
    assert!(ErasureEncoder::new(p)
        .encode_group(&payloads(&[3, 3]))
        .expect("ok")
        .is_empty());
    let mut dec = ErasureDecoder::new(p, 0);
    assert_eq!(
        dec.insert(2, Bytes::from_static(b"ab")),
        Err(ErasureError::IndexOutOfRange { index: 2, total: 2 })
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_k_of_k_plus_n_shards_rebuild_the_group(
        (k, n, lens, order, take) in (1usize..16, 0usize..8).prop_flat_map(|(k, n)| (
            Just(k),
            Just(n),
            proptest::collection::vec(0usize..64, k),
            Just((0..k + n).collect::<Vec<usize>>()).prop_shuffle(),
            0..=k + n,
        )),
        salt in any::<u8>(),
    ) {
        let p = ErasureParams::new(k, n).expect("valid");
        let originals: Vec<Bytes> = payloads(&lens)
            .into_iter()
            .map(|b| Bytes::from(b.iter().map(|x| x ^ salt).collect::<Vec<u8>>()))
            .collect();
        let recovery = ErasureEncoder::new(p).encode_group(&originals).expect("encodes");
        prop_assert_eq!(recovery.len(), n);
        let mut dec = ErasureDecoder::new(p, 3);
        let mut rebuilt = originals.iter().map(|_| None).collect::<Vec<Option<Bytes>>>();
        for (count, &index) in order[..take].iter().enumerate() {
            let data = shard(&originals, &recovery, index);
            if index < k {
                rebuilt[index] = Some(data.clone());
            }
            match dec.insert(index, data).expect("valid shard") {
                DecodeProgress::Pending { have, need } => {
                    prop_assert!(count + 1 < k);
                    prop_assert_eq!((have, need), (count + 1, k));
                }
                DecodeProgress::Complete { restored } => {
                    prop_assert_eq!(count + 1, k, "complete exactly at the k-th shard");
                    for (i, payload) in restored {
                        prop_assert!(rebuilt[i].is_none(), "only missing originals are restored");
                        rebuilt[i] = Some(payload);
                    }
                }
                DecodeProgress::AlreadyComplete => prop_assert!(count >= k),
            }
        }
        if take >= k {
            prop_assert_eq!(dec.originals(), Some(originals.clone()));
            let rebuilt: Vec<Bytes> = rebuilt.into_iter().map(|b| b.expect("every original")).collect();
            prop_assert_eq!(rebuilt, originals);
        } else {
            prop_assert!(!dec.is_complete());
            prop_assert!(dec.originals().is_none());
        }
    }
}
