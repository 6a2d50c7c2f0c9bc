//! Signed, expiring, read-only links to one lead's transcript, so a notification can link to the
//! dashboard without a login.
//!
//! A token is `{payload}.{signature}`, both base64url without padding (RFC 4648 §5):
//! the payload is 17 bytes, a version byte (1), the lead id and the expiry (Unix seconds), each
//! an i64 big-endian; the signature is HMAC-SHA256(key, payload bytes). 23 + 1 + 43 = 67
//! characters, safe in a URL path. The key must be secret, random and at least 32 bytes; whoever
//! has it can mint links to any lead. Changing the key revokes every link issued.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use thiserror::Error;

type HmacSha256 = Hmac<Sha256>;

/// First payload byte: the token format.
const VERSION: u8 = 1;
const PAYLOAD_BYTES: usize = 17;
const SIGNATURE_BYTES: usize = 32;
/// Longest text looked at; a real token is 67 characters.
const MAX_TOKEN_CHARS: usize = 128;

/// Why a transcript link was refused. The messages are for the person who opened the link.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TokenError {
    #[error(
        "this transcript link is damaged or incomplete: open the link from the notification \
         again, or find the lead on the dashboard"
    )]
    Malformed,
    #[error(
        "this transcript link is not valid (it was changed, or the box's link key was \
         changed since it was sent): find the lead on the dashboard"
    )]
    BadSignature,
    #[error(
        "this transcript link expired {} ago: find the lead on the dashboard",
        describe_seconds(now.saturating_sub(*expired_at))
    )]
    Expired { expired_at: i64, now: i64 },
}

/// Issuing and checking transcript tokens.
pub struct TranscriptToken;

impl TranscriptToken {
    /// A token for `lead_id` valid until `expires_at_unix` (exclusive).
    pub fn issue(key: &[u8], lead_id: i64, expires_at_unix: i64) -> String {
        let payload = payload(lead_id, expires_at_unix);
        // HMAC takes a key of any length (RFC 2104 §3), so `mac` always gives one; without it
        // the token gets a zero signature, which `verify` refuses in the same case.
        let signature = mac(key, &payload)
            .map(|mac| mac.finalize().into_bytes().to_vec())
            .unwrap_or_else(|| vec![0; SIGNATURE_BYTES]);
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(signature)
        )
    }

    /// The lead id of a token signed with `key` that has not expired at `now_unix`. The
    /// signature is checked (in constant time) before anything in the payload is believed.
    pub fn verify(key: &[u8], token: &str, now_unix: i64) -> Result<i64, TokenError> {
        if token.len() > MAX_TOKEN_CHARS {
            return Err(TokenError::Malformed);
        }
        let (payload_text, signature_text) = token.split_once('.').ok_or(TokenError::Malformed)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload_text)
            .map_err(|_| TokenError::Malformed)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature_text)
            .map_err(|_| TokenError::Malformed)?;
        if payload.len() != PAYLOAD_BYTES || signature.len() != SIGNATURE_BYTES {
            return Err(TokenError::Malformed);
        }
        mac(key, &payload)
            .ok_or(TokenError::BadSignature)?
            .verify_slice(&signature)
            .map_err(|_| TokenError::BadSignature)?;
        let (version, lead_id, expires_at) = parse_payload(&payload)?;
        if version != VERSION {
            return Err(TokenError::Malformed);
        }
        if now_unix >= expires_at {
            return Err(TokenError::Expired {
                expired_at: expires_at,
                now: now_unix,
            });
        }
        Ok(lead_id)
    }
}

/// The transcript page for a token: `{public_url without trailing '/'}/t/{token}`.
pub fn transcript_url(public_url: &str, token: &str) -> String {
    format!("{}/t/{token}", public_url.trim_end_matches('/'))
}

fn payload(lead_id: i64, expires_at: i64) -> [u8; PAYLOAD_BYTES] {
    let mut payload = [0u8; PAYLOAD_BYTES];
    payload[0] = VERSION;
    payload[1..9].copy_from_slice(&lead_id.to_be_bytes());
    payload[9..].copy_from_slice(&expires_at.to_be_bytes());
    payload
}

fn parse_payload(payload: &[u8]) -> Result<(u8, i64, i64), TokenError> {
    let [version, rest @ ..] = payload else {
        return Err(TokenError::Malformed);
    };
    let (lead, expiry) = rest.split_at_checked(8).ok_or(TokenError::Malformed)?;
    let lead_id = i64::from_be_bytes(lead.try_into().map_err(|_| TokenError::Malformed)?);
    let expires_at = i64::from_be_bytes(expiry.try_into().map_err(|_| TokenError::Malformed)?);
    Ok((*version, lead_id, expires_at))
}

/// HMAC-SHA256 keyed with `key`, fed the payload. `None` only if the hmac crate refused the
/// key, which it does not for HMAC (any length is allowed).
fn mac(key: &[u8], payload: &[u8]) -> Option<HmacSha256> {
    let mut mac = HmacSha256::new_from_slice(key).ok()?;
    mac.update(payload);
    Some(mac)
}

/// "3 minutes", "2 hours", "5 days".
fn describe_seconds(seconds: i64) -> String {
    let (count, unit) = match seconds.max(0) {
        seconds @ ..=119 => (seconds, "second"),
        seconds @ ..=7_199 => (seconds / 60, "minute"),
        seconds @ ..=172_799 => (seconds / 3_600, "hour"),
        seconds => (seconds / 86_400, "day"),
    };
    if count == 1 {
        format!("1 {unit}")
    } else {
        format!("{count} {unit}s")
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
    const NOW: i64 = 1_750_000_000;

    #[test]
    fn round_trip() {
        let token = TranscriptToken::issue(KEY, 42, NOW + 3600);
        assert_eq!(token.len(), 67);
        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        );
        assert_eq!(TranscriptToken::verify(KEY, &token, NOW), Ok(42));
        assert_eq!(TranscriptToken::verify(KEY, &token, NOW + 3599), Ok(42));
        let negative = TranscriptToken::issue(KEY, i64::MIN, i64::MAX);
        assert_eq!(TranscriptToken::verify(KEY, &negative, NOW), Ok(i64::MIN));
    }

    #[test]
    fn expired() {
        let token = TranscriptToken::issue(KEY, 42, NOW);
        let error = TranscriptToken::verify(KEY, &token, NOW + 600).unwrap_err();
        assert_eq!(
            error,
            TokenError::Expired {
                expired_at: NOW,
                now: NOW + 600
            }
        );
        assert!(
            error.to_string().contains("expired 10 minutes ago"),
            "{error}"
        );
        assert!(matches!(
            TranscriptToken::verify(KEY, &token, NOW),
            Err(TokenError::Expired { .. })
        ));
    }

    #[test]
    fn wrong_key() {
        let token = TranscriptToken::issue(KEY, 42, NOW + 3600);
        assert_eq!(
            TranscriptToken::verify(b"another key of thirty-two bytes!", &token, NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn tampered_payload() {
        let token = TranscriptToken::issue(KEY, 42, NOW + 3600);
        let (_, signature) = token.split_once('.').unwrap();
        let other = URL_SAFE_NO_PAD.encode(payload(43, NOW + 3600));
        assert_eq!(
            TranscriptToken::verify(KEY, &format!("{other}.{signature}"), NOW),
            Err(TokenError::BadSignature)
        );
        let later = URL_SAFE_NO_PAD.encode(payload(42, i64::MAX));
        assert_eq!(
            TranscriptToken::verify(KEY, &format!("{later}.{signature}"), NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn tampered_signature() {
        let token = TranscriptToken::issue(KEY, 42, NOW + 3600);
        let mut bytes = token.into_bytes();
        // Flip a character in the middle of the signature, staying in the alphabet.
        let index = bytes.len() - 10;
        bytes[index] = if bytes[index] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        assert_eq!(
            TranscriptToken::verify(KEY, &tampered, NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn other_version_is_malformed() {
        let mut other = payload(42, NOW + 3600);
        other[0] = 2;
        let signature = mac(KEY, &other).unwrap().finalize().into_bytes();
        let token = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(other),
            URL_SAFE_NO_PAD.encode(signature)
        );
        assert_eq!(
            TranscriptToken::verify(KEY, &token, NOW),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn garbage() {
        let token = TranscriptToken::issue(KEY, 42, NOW + 3600);
        let garbage = [
            String::new(),
            ".".to_string(),
            "..".to_string(),
            "abc".to_string(),
            "abc.def".to_string(),
            format!("{token}="),
            format!("{token}.x"),
            format!("x{token}"),
            token.replace('.', ""),
            token.replace('.', ".."),
            format!("{}.", token.split_once('.').unwrap().0),
            "é.é".to_string(),
            "a".repeat(10_000),
        ];
        for text in garbage {
            assert_eq!(
                TranscriptToken::verify(KEY, &text, NOW),
                Err(TokenError::Malformed),
                "{text:?}"
            );
        }
    }

    #[test]
    fn padding_and_standard_alphabet_are_refused() {
        let token = TranscriptToken::issue(KEY, 42, NOW + 3600);
        let (payload, signature) = token.split_once('.').unwrap();
        let padded = format!("{payload}=.{signature}=");
        assert_eq!(
            TranscriptToken::verify(KEY, &padded, NOW),
            Err(TokenError::Malformed)
        );
        let standard = token.replace('-', "+").replace('_', "/");
        if standard != token {
            assert_eq!(
                TranscriptToken::verify(KEY, &standard, NOW),
                Err(TokenError::Malformed)
            );
        }
    }

    #[test]
    fn urls() {
        assert_eq!(
            transcript_url("https://box.example", "abc.def"),
            "https://box.example/t/abc.def"
        );
        assert_eq!(
            transcript_url("https://box.example/leads//", "abc.def"),
            "https://box.example/leads/t/abc.def"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(describe_seconds(-5), "0 seconds");
        assert_eq!(describe_seconds(1), "1 second");
        assert_eq!(describe_seconds(90), "90 seconds");
        assert_eq!(describe_seconds(600), "10 minutes");
        assert_eq!(describe_seconds(7_200), "2 hours");
        assert_eq!(describe_seconds(200_000), "2 days");
    }

    proptest! {
        #[test]
        fn never_panics(text in ".{0,200}", now in any::<i64>()) {
            let _ = TranscriptToken::verify(KEY, &text, now);
        }

        #[test]
        fn never_panics_on_token_like_text(text in "[A-Za-z0-9_.=+/-]{0,100}", now in any::<i64>()) {
            let _ = TranscriptToken::verify(KEY, &text, now);
        }

        #[test]
        fn round_trips(lead in any::<i64>(), expires in any::<i64>(), now in any::<i64>()) {
            let token = TranscriptToken::issue(KEY, lead, expires);
            let result = TranscriptToken::verify(KEY, &token, now);
            if now < expires {
                prop_assert_eq!(result, Ok(lead));
            } else {
                prop_assert_eq!(result, Err(TokenError::Expired { expired_at: expires, now }));
            }
        }
    }
}
