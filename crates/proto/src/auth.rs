//! Origin authentication of blocks (X3): the origin signs every block with an
//! Ed25519 key; the public key travels with the channel description, and every
//! relay and viewer node checks each block before storing or forwarding it, so a
//! relay can neither forge nor alter blocks.

use crate::block::Block;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use thiserror::Error;

pub const PUBLIC_KEY_LEN: usize = 32;

#[derive(Debug, Error)]
pub enum AuthError {
    #[error("could not generate an origin key")]
    KeyGeneration,
    #[error("origin key bytes are not a valid Ed25519 PKCS#8 document")]
    BadKey,
    #[error("block signature does not verify against the origin's key")]
    BadSignature,
}

/// The origin's signing key.
pub struct OriginKey {
    pair: Ed25519KeyPair,
    pkcs8: Vec<u8>,
}

impl OriginKey {
    /// A fresh random key.
    pub fn generate() -> Result<Self, AuthError> {
        let rng = SystemRandom::new();
        let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| AuthError::KeyGeneration)?;
        Self::from_pkcs8(doc.as_ref())
    }

    /// A key from a DER PKCS#8 document: v2 with the public key (as written by
    /// [`OriginKey::pkcs8`] and `tiercast keygen`) or v1 without it (as written by
    /// `openssl genpkey -algorithm ed25519`).
    pub fn from_pkcs8(bytes: &[u8]) -> Result<Self, AuthError> {
        let pair =
            Ed25519KeyPair::from_pkcs8_maybe_unchecked(bytes).map_err(|_| AuthError::BadKey)?;
        Ok(OriginKey {
            pair,
            pkcs8: bytes.to_vec(),
        })
    }

    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    pub fn public_key(&self) -> [u8; PUBLIC_KEY_LEN] {
        let mut out = [0u8; PUBLIC_KEY_LEN];
        out.copy_from_slice(self.pair.public_key().as_ref());
        out
    }

    pub fn sign(&self, block: &mut Block) {
        let sig = self.pair.sign(&block.signed_digest());
        block.signature.copy_from_slice(sig.as_ref());
    }
}

/// Checks blocks against one origin's public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OriginVerifier {
    public_key: [u8; PUBLIC_KEY_LEN],
}

impl OriginVerifier {
    pub fn new(public_key: [u8; PUBLIC_KEY_LEN]) -> Self {
        OriginVerifier { public_key }
    }

    pub fn verify(&self, block: &Block) -> Result<(), AuthError> {
        UnparsedPublicKey::new(&ED25519, &self.public_key)
            .verify(&block.signed_digest(), &block.signature)
            .map_err(|_| AuthError::BadSignature)
    }

    /// [`OriginVerifier::verify`], answered from `memo` when this very block
    /// was found genuine before (the simulator's nodes share one:
    /// [`crate::VerifyMemo`]); the same answer either way.
    pub fn verify_with(
        &self,
        block: &Block,
        memo: Option<&crate::VerifyMemo>,
    ) -> Result<(), AuthError> {
        let Some(memo) = memo else {
            return self.verify(block);
        };
        if memo.knows(&self.public_key, block) {
            return Ok(());
        }
        self.verify(block)?;
        memo.remember(&self.public_key, block);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ChannelId;
    use crate::time::Timestamp;
    use bytes::Bytes;

    #[test]
    fn the_memo_answers_as_the_check_does_for_any_change_to_a_block() {
        let key = OriginKey::generate().unwrap();
        let v = OriginVerifier::new(key.public_key());
        let memo = crate::VerifyMemo::default();
        let mut b = Block::new(
            ChannelId(1),
            7,
            Timestamp(5),
            true,
            Bytes::from_static(b"abcd"),
        );
        key.sign(&mut b);
        assert!(v.verify_with(&b, Some(&memo)).is_ok());
        assert_eq!(memo.len(), 1);
        assert!(v.verify_with(&b.clone(), Some(&memo)).is_ok(), "remembered");
        // The same payload allocation with a header, signature or key changed,
        // and the same header with another payload: each checked afresh.
        let mut seq = b.clone();
        seq.seq = 8;
        let mut sig = b.clone();
        sig.signature[0] ^= 1;
        let mut payload = b.clone();
        payload.payload = Bytes::from_static(b"abce");
        for forged in [seq, sig, payload] {
            assert!(v.verify_with(&forged, Some(&memo)).is_err());
        }
        let other = OriginVerifier::new(OriginKey::generate().unwrap().public_key());
        assert!(other.verify_with(&b, Some(&memo)).is_err());
        assert_eq!(memo.len(), 1, "failures are not remembered");
        // Bounded.
        for s in 0..(crate::verify_memo::MEMO_BLOCKS as u64 + 10) {
            let mut x = b.clone();
            x.seq = 100 + s;
            key.sign(&mut x);
            assert!(v.verify_with(&x, Some(&memo)).is_ok());
        }
        assert_eq!(memo.len(), crate::verify_memo::MEMO_BLOCKS);
    }

    #[test]
    fn signed_block_verifies_and_tampering_is_caught() {
        let key = OriginKey::generate().unwrap();
        let verifier = OriginVerifier::new(key.public_key());
        let mut b = Block::new(
            ChannelId(1),
            7,
            Timestamp(5),
            true,
            Bytes::from_static(b"abc"),
        );
        key.sign(&mut b);
        verifier.verify(&b).unwrap();

        let mut altered = b.clone();
        altered.payload = Bytes::from_static(b"abd");
        assert!(verifier.verify(&altered).is_err());
        let mut reseq = b.clone();
        reseq.seq = 8;
        assert!(verifier.verify(&reseq).is_err());

        let other = OriginKey::generate().unwrap();
        assert!(OriginVerifier::new(other.public_key()).verify(&b).is_err());
    }

    #[test]
    fn key_round_trips_through_pkcs8() {
        let key = OriginKey::generate().unwrap();
        let again = OriginKey::from_pkcs8(key.pkcs8()).unwrap();
        assert_eq!(key.public_key(), again.public_key());
        assert!(OriginKey::from_pkcs8(b"garbage").is_err());
    }
}
