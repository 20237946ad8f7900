//! Virtual keys: the keys the gateway hands out to its consumers.
//!
//! The gateway stores only SHA-256 hashes of them. A presented key is hashed
//! and compared with every stored hash in constant time, without stopping at
//! the first match, so the time taken says nothing about which byte differed
//! or which consumer matched.

use sha2::{Digest, Sha256};

/// Prefix of the keys `aigw key create` makes (any string is accepted as a key).
pub const KEY_PREFIX: &str = "sk-aigw-";

/// Shortest key accepted in configuration as a plain value.
pub const MIN_KEY_LEN: usize = 16;

/// The SHA-256 digest of a key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KeyHash([u8; 32]);

impl std::fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyHash({})", self.to_hex())
    }
}

impl KeyHash {
    /// Hashes a key as presented by a client.
    pub fn of(key: &str) -> KeyHash {
        KeyHash(Sha256::digest(key.as_bytes()).into())
    }

    /// Parses 64 hex digits, optionally prefixed with `sha256:`.
    pub fn parse(text: &str) -> Result<KeyHash, String> {
        let hex = text.strip_prefix("sha256:").unwrap_or(text);
        if hex.len() != 64 {
            return Err(format!(
                "expected 64 hex digits (a SHA-256 hash), got {} characters",
                hex.len()
            ));
        }
        let mut out = [0u8; 32];
        for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
            let hi = hex_value(pair[0]);
            let lo = hex_value(pair[1]);
            match (hi, lo, out.get_mut(i)) {
                (Some(h), Some(l), Some(slot)) => *slot = (h << 4) | l,
                _ => return Err("is not a hex string".into()),
            }
        }
        Ok(KeyHash(out))
    }

    /// Lowercase hex, as `aigw key hash` prints it.
    pub fn to_hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(char::from(DIGITS[usize::from(b >> 4)]));
            s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
        }
        s
    }

    /// Equality that takes the same time whatever the contents.
    pub fn ct_eq(&self, other: &KeyHash) -> bool {
        let mut diff = 0u8;
        for (a, b) in self.0.iter().zip(other.0.iter()) {
            diff |= a ^ b;
        }
        // Keep the optimizer from turning the fold into an early exit.
        std::hint::black_box(diff) == 0
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Finds which of `hashes` a presented key matches: every entry is compared,
/// whatever matched first, and the result is taken without branching on it.
pub fn find_key<T: Copy>(hashes: &[(KeyHash, T)], presented: &str) -> Option<T> {
    let hash = KeyHash::of(presented);
    let mut found = None;
    for (h, value) in hashes {
        let hit = h.ct_eq(&hash);
        // Both arms are computed; only a completed scan is acted on.
        found = if hit { Some(*value) } else { found };
    }
    found
}

/// Where a client put its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// `Authorization: Bearer <key>` (OpenAI clients).
    Bearer,
    /// `x-api-key: <key>` (Anthropic clients).
    XApiKey,
    /// The header the operator configured.
    Custom,
}

/// The key a request presents: the configured header first, then
/// `Authorization: Bearer`, then `x-api-key`. Empty values count as absent.
pub fn presented_key<'a>(
    custom: Option<&'a str>,
    authorization: Option<&'a str>,
    x_api_key: Option<&'a str>,
) -> Option<(&'a str, KeySource)> {
    let nonempty = |v: &'a str| Some(v.trim()).filter(|v| !v.is_empty());
    if let Some(v) = custom.and_then(nonempty) {
        return Some((v, KeySource::Custom));
    }
    if let Some(v) = authorization.and_then(bearer).and_then(nonempty) {
        return Some((v, KeySource::Bearer));
    }
    x_api_key
        .and_then(nonempty)
        .map(|v| (v, KeySource::XApiKey))
}

/// The credential of `Authorization: Bearer <credential>` (scheme case-insensitive).
fn bearer(value: &str) -> Option<&str> {
    let value = value.trim_start();
    let (scheme, rest) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_sha256_in_hex() {
        // SHA-256("test"), a well-known vector.
        let h = KeyHash::of("test");
        assert_eq!(
            h.to_hex(),
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        );
        assert_eq!(KeyHash::parse(&h.to_hex()).unwrap(), h);
        assert_eq!(
            KeyHash::parse(&format!("sha256:{}", h.to_hex().to_uppercase())).unwrap(),
            h
        );
        assert!(KeyHash::parse("abc").is_err());
        assert!(KeyHash::parse(&"g".repeat(64)).is_err());
    }

    #[test]
    fn finds_the_matching_key_among_all() {
        let table = [
            (KeyHash::of("sk-aigw-one"), 0usize),
            (KeyHash::of("sk-aigw-two"), 1),
            (KeyHash::of("sk-aigw-three"), 1),
        ];
        assert_eq!(find_key(&table, "sk-aigw-two"), Some(1));
        assert_eq!(find_key(&table, "sk-aigw-one"), Some(0));
        assert_eq!(find_key(&table, "sk-aigw-thre"), None);
        assert_eq!(find_key(&table, ""), None);
        assert!(KeyHash::of("a").ct_eq(&KeyHash::of("a")));
        assert!(!KeyHash::of("a").ct_eq(&KeyHash::of("b")));
    }

    #[test]
    fn keys_are_taken_from_the_usual_headers() {
        assert_eq!(
            presented_key(None, Some("Bearer sk-1"), Some("sk-2")),
            Some(("sk-1", KeySource::Bearer))
        );
        assert_eq!(
            presented_key(None, Some("bearer  sk-1 "), None),
            Some(("sk-1", KeySource::Bearer))
        );
        assert_eq!(
            presented_key(None, Some("Basic abc"), Some("sk-2")),
            Some(("sk-2", KeySource::XApiKey))
        );
        assert_eq!(
            presented_key(Some("sk-3"), Some("Bearer sk-1"), None),
            Some(("sk-3", KeySource::Custom))
        );
        assert_eq!(presented_key(Some(" "), Some("Bearer "), Some("")), None);
        assert_eq!(presented_key(None, None, None), None);
    }
}
