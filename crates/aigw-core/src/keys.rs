//! Provider keys held by the upstream filter.
//!
//! A key's value never appears in `Debug` output, logs or errors: only its id.
//! Which key serves an attempt is decided by `keypool`.

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
    /// Share of the traffic relative to the provider's other keys.
    pub weight: u32,
    /// Why the secret is missing, for operators (e.g. the env var is unset).
    pub unavailable_reason: Option<String>,
}

/// The keys of one provider.
#[derive(Debug, Default)]
pub struct KeyRing {
    keys: Vec<ProviderKey>,
}

impl KeyRing {
    pub fn new(keys: Vec<ProviderKey>) -> Self {
        KeyRing { keys }
    }

    /// True when the provider is configured without keys (a local server).
    pub fn is_keyless(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn keys(&self) -> &[ProviderKey] {
        &self.keys
    }

    /// Each key's id and selection weight: a key without a value gets none.
    pub fn choices(&self) -> Vec<(&str, u32)> {
        self.keys
            .iter()
            .map(|k| (k.id.as_str(), if k.secret.is_some() { k.weight } else { 0 }))
            .collect()
    }

    /// True when at least one key has a value.
    pub fn any_usable(&self) -> bool {
        self.keys.iter().any(|k| k.secret.is_some() && k.weight > 0)
    }

    pub fn get(&self, i: usize) -> Option<&ProviderKey> {
        self.keys.get(i)
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
            weight: 2,
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
    fn keys_without_a_value_get_no_weight() {
        let ring = KeyRing::new(vec![key("a", Some("1111")), key("b", None)]);
        assert_eq!(ring.choices(), [("a", 2), ("b", 0)]);
        assert!(ring.any_usable());
        assert!(!KeyRing::new(vec![key("a", None)]).any_usable());
        assert!(KeyRing::new(vec![]).is_keyless());
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
