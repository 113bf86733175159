//! Request signatures of the generic webhook channel, both ways: HMAC-SHA256 over
//! `"<unix seconds>.<body>"` with the account's secret, sent as
//! `X-Jobers-Timestamp: <unix seconds>` and `X-Jobers-Signature: sha256=<hex>`.
//! A timestamp more than five minutes away is refused (replays of old requests).

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const TIMESTAMP_HEADER: &str = "x-jobers-timestamp";
pub const SIGNATURE_HEADER: &str = "x-jobers-signature";
/// How far the timestamp may be from now, in seconds.
pub const MAX_SKEW_SECS: i64 = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the request is not signed (X-Jobers-Signature and X-Jobers-Timestamp)")]
    Missing,
    #[error("the request timestamp is not a number")]
    BadTimestamp,
    #[error("the request timestamp is too far from now (more than 5 minutes)")]
    Stale,
    #[error("the request signature does not match")]
    Mismatch,
}

fn mac(secret: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The signature header value for `body` at `timestamp`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
    )
}

/// Checks a request's headers against `body` (constant-time comparison).
pub fn verify(
    secret: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_secs: i64,
) -> Result<(), VerifyError> {
    let (Some(ts), Some(sig)) = (timestamp, signature) else {
        return Err(VerifyError::Missing);
    };
    let ts: i64 = ts.trim().parse().map_err(|_| VerifyError::BadTimestamp)?;
    if now_secs.abs_diff(ts) > MAX_SKEW_SECS as u64 {
        return Err(VerifyError::Stale);
    }
    let Some(hex_sig) = sig.trim().strip_prefix("sha256=") else {
        return Err(VerifyError::Mismatch);
    };
    let Ok(given) = hex::decode(hex_sig) else {
        return Err(VerifyError::Mismatch);
    };
    mac(secret, ts, body)
        .verify_slice(&given)
        .map_err(|_| VerifyError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_body_verifies_and_any_change_does_not() {
        let sig = sign("s3cret", 1_000, b"{\"a\":1}");
        assert_eq!(
            verify("s3cret", Some("1000"), Some(&sig), b"{\"a\":1}", 1_010),
            Ok(())
        );
        assert_eq!(
            verify("s3cret", Some("1000"), Some(&sig), b"{\"a\":2}", 1_010),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify("other", Some("1000"), Some(&sig), b"{\"a\":1}", 1_010),
            Err(VerifyError::Mismatch)
        );
        // The timestamp is part of what is signed.
        assert_eq!(
            verify("s3cret", Some("1001"), Some(&sig), b"{\"a\":1}", 1_010),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify("s3cret", Some("1000"), Some(&sig), b"{\"a\":1}", 2_000),
            Err(VerifyError::Stale)
        );
        assert_eq!(
            verify("s3cret", None, Some(&sig), b"{\"a\":1}", 1_010),
            Err(VerifyError::Missing)
        );
        assert_eq!(
            verify(
                "s3cret",
                Some(&i64::MIN.to_string()),
                Some(&sig),
                b"",
                1_010
            ),
            Err(VerifyError::Stale),
            "no overflow on absurd timestamps"
        );
        assert_eq!(
            verify("s3cret", Some("x"), Some(&sig), b"", 1_010),
            Err(VerifyError::BadTimestamp)
        );
        assert_eq!(
            verify("s3cret", Some("1000"), Some("sha1=00"), b"", 1_010),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn a_vector_computed_by_openssl() {
        // echo -n '1700000000.hello' | openssl dgst -sha256 -hmac key
        assert_eq!(
            sign("key", 1_700_000_000, b"hello"),
            "sha256=4d583a269f4f276a3fa80ff31b5a01879a848096983222a17893d198418939aa"
        );
    }
}
