//! Provider keys held by the upstream filter.
//!
//! A key's value never appears in `Debug` output, logs or errors: only its id.
//! Selection here is plain round robin; health, cooldown and weights belong to
//! the key-pool logic that builds on this type.

use std::cell::Cell;
use std::fmt;

/// A secret string whose `Debug` and `Display` never show the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that puts it on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// One provider key: a stable id (safe to log) and the secret, if it resolved.
#[derive(Debug, Clone)]
pub struct ProviderKey {
    pub id: String,
    pub secret: Option<Secret>,
    /// Why the secret is missing, for operators (e.g. the env var is unset).
    pub unavailable_reason: Option<String>,
}

/// The keys of one provider.
#[derive(Debug, Default)]
pub struct KeyRing {
    keys: Vec<ProviderKey>,
    cursor: Cell<usize>,
}

impl KeyRing {
    pub fn new(keys: Vec<ProviderKey>) -> Self {
        KeyRing {
            keys,
            cursor: Cell::new(0),
        }
    }

    /// True when the provider is configured without keys (a local server).
    pub fn is_keyless(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn keys(&self) -> &[ProviderKey] {
        &self.keys
    }

    /// The next usable key, round robin; `None` if no key has a value.
    pub fn pick(&self) -> Option<&ProviderKey> {
        let n = self.keys.len();
        for step in 0..n {
            let i = (self.cursor.get() + step) % n;
            if self.keys[i].secret.is_some() {
                self.cursor.set((i + 1) % n);
                return self.keys.get(i);
            }
        }
        None
    }

    /// Replaces every key value found in `text` (e.g. a provider's error
    /// message echoing the key) with `[redacted]`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for key in &self.keys {
            if let Some(secret) = &key.secret {
                if secret.0.len() >= 4 && out.contains(secret.expose()) {
                    out = out.replace(secret.expose(), "[redacted]");
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, v: Option<&str>) -> ProviderKey {
        ProviderKey {
            id: id.into(),
            secret: v.map(Secret::new),
            unavailable_reason: None,
        }
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let k = key("k0", Some("sk-very-secret"));
        assert!(!format!("{k:?}").contains("sk-very-secret"));
        assert!(format!("{k:?}").contains("k0"));
    }

    #[test]
    fn round_robin_skips_unresolved_keys() {
        let ring = KeyRing::new(vec![
            key("a", Some("1111")),
            key("b", None),
            key("c", Some("3333")),
        ]);
        let ids: Vec<_> = (0..4).map(|_| ring.pick().unwrap().id.clone()).collect();
        assert_eq!(ids, ["a", "c", "a", "c"]);
    }

    #[test]
    fn no_usable_key_is_none() {
        assert!(KeyRing::new(vec![key("a", None)]).pick().is_none());
        let empty = KeyRing::new(vec![]);
        assert!(empty.is_keyless());
        assert!(empty.pick().is_none());
    }

    #[test]
    fn redacts_echoed_keys() {
        let ring = KeyRing::new(vec![key("a", Some("sk-abcdef"))]);
        assert_eq!(
            ring.redact("Incorrect API key provided: sk-abcdef."),
            "Incorrect API key provided: [redacted]."
        );
    }
}
