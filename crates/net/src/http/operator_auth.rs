//! Operator requests to the coordinator API (`POST /policy`; C3, X3) are signed
//! with the cluster key, which never crosses the wire:
//!
//! `Authorization: Tiercast-HMAC t=<unix seconds>, mac=<64 hex>`
//!
//! where `mac` is HMAC-SHA256(cluster key, `tiercast-operator-v1\n` PATH `\n` t
//! `\n` BODY). The signature binds the path and the body, so it cannot be moved
//! to another request; `t` must be within [`MAX_SKEW_S`] of the coordinator's
//! clock, so a captured request can be replayed only briefly. Without a valid
//! signature the answer is `401`.

use crate::link::ClusterKey;
use ring::hmac;

/// The `Authorization` scheme.
pub const AUTH_SCHEME: &str = "Tiercast-HMAC";
/// Largest difference between the signer's clock and the coordinator's.
pub const MAX_SKEW_S: u64 = 300;
const DOMAIN: &[u8] = b"tiercast-operator-v1\n";

/// Why an operator request is refused (always `401`).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("operator request without Authorization: sign it with the cluster key (tiercast policy apply does)")]
    Missing,
    #[error("Authorization is not '{AUTH_SCHEME} t=<unix seconds>, mac=<hex>'")]
    Malformed,
    #[error("signature time is {0} s away from the coordinator's clock (at most {MAX_SKEW_S})")]
    Skew(u64),
    #[error("signature does not match: wrong cluster key, or the request was altered")]
    BadMac,
}

/// The `Authorization` value for a request to `path` with `body`, signed at `unix_s`.
pub fn sign(key: &ClusterKey, path: &str, unix_s: u64, body: &[u8]) -> String {
    let tag = hmac::sign(&hmac_key(key), &input(path, unix_s, body));
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("{AUTH_SCHEME} t={unix_s}, mac={hex}")
}

/// Checks an `Authorization` value for a request to `path` with `body`.
pub fn verify(
    key: &ClusterKey,
    header: Option<&str>,
    path: &str,
    now_unix_s: u64,
    body: &[u8],
) -> Result<(), AuthError> {
    let header = header.ok_or(AuthError::Missing)?;
    let (t, mac) = parse(header).ok_or(AuthError::Malformed)?;
    let skew = t.abs_diff(now_unix_s);
    if skew > MAX_SKEW_S {
        return Err(AuthError::Skew(skew));
    }
    hmac::verify(&hmac_key(key), &input(path, t, body), &mac).map_err(|_| AuthError::BadMac)
}

fn parse(header: &str) -> Option<(u64, Vec<u8>)> {
    let rest = header.trim().strip_prefix(AUTH_SCHEME)?.trim_start();
    let (mut t, mut mac) = (None, None);
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k.trim() {
            "t" => t = Some(v.trim().parse::<u64>().ok()?),
            "mac" => mac = Some(unhex(v.trim())?),
            _ => return None,
        }
    }
    Some((t?, mac?))
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

fn input(path: &str, unix_s: u64, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(DOMAIN.len() + path.len() + 24 + body.len());
    v.extend_from_slice(DOMAIN);
    v.extend_from_slice(path.as_bytes());
    v.push(b'\n');
    v.extend_from_slice(unix_s.to_string().as_bytes());
    v.push(b'\n');
    v.extend_from_slice(body);
    v
}

fn hmac_key(key: &ClusterKey) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA256, &key.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_request_verifies_and_any_change_is_refused() {
        let key = ClusterKey([7; 32]);
        let h = sign(&key, "/policy", 1000, b"body");
        assert_eq!(verify(&key, Some(&h), "/policy", 1000, b"body"), Ok(()));
        assert_eq!(verify(&key, Some(&h), "/policy", 1299, b"body"), Ok(()));
        assert_eq!(
            verify(&key, Some(&h), "/policy", 1301, b"body"),
            Err(AuthError::Skew(301))
        );
        assert_eq!(
            verify(&key, Some(&h), "/policy", 1000, b"bodY"),
            Err(AuthError::BadMac)
        );
        assert_eq!(
            verify(&key, Some(&h), "/other", 1000, b"body"),
            Err(AuthError::BadMac)
        );
        assert_eq!(
            verify(&ClusterKey([8; 32]), Some(&h), "/policy", 1000, b"body"),
            Err(AuthError::BadMac)
        );
        assert_eq!(
            verify(&key, None, "/policy", 1000, b"body"),
            Err(AuthError::Missing)
        );
        for bad in [
            "Bearer x",
            "Tiercast-HMAC t=1000",
            "Tiercast-HMAC t=x, mac=00",
            "Tiercast-HMAC t=1000, mac=zz",
            "Tiercast-HMAC t=1000, mac=é",
            "Tiercast-HMAC t=1000, mac=00, extra=1",
        ] {
            assert_eq!(
                verify(&key, Some(bad), "/policy", 1000, b"body"),
                Err(AuthError::Malformed),
                "{bad}"
            );
        }
    }

    proptest::proptest! {
        /// An `Authorization` header is outside input: any text is refused or
        /// accepted, never a panic, and never accepted without the key's mac.
        #[test]
        fn any_header_is_refused_without_a_panic(header in "\\PC{0,120}") {
            let key = ClusterKey([9; 32]);
            proptest::prop_assert!(verify(&key, Some(&header), "/policy", 1000, b"x").is_err());
            let with_scheme = format!("{AUTH_SCHEME} {header}");
            proptest::prop_assert!(verify(&key, Some(&with_scheme), "/policy", 1000, b"x").is_err());
        }
    }
}
