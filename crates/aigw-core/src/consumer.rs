//! Consumers: the callers the gateway knows by their virtual keys, what each
//! may use, and the limits it is held to.

use crate::apikey::{find_key, presented_key, KeyHash, KeySource};
use crate::glob::Glob;
use crate::quota::Limits;

/// Prefix of a consumer's ledger in the quota store.
pub const LEDGER_PREFIX: &str = "aigw.quota.";

/// One compiled consumer.
#[derive(Debug, Clone)]
pub struct Consumer {
    pub name: String,
    /// Model names and patterns allowed; `None`: every model.
    allow: Option<Vec<Glob>>,
    pub limits: Limits,
    ledger_key: String,
}

impl Consumer {
    pub fn new(name: &str, allow: Option<Vec<Glob>>, limits: Limits) -> Consumer {
        Consumer {
            name: name.to_string(),
            allow,
            limits,
            ledger_key: format!("{LEDGER_PREFIX}{name}"),
        }
    }

    /// Whether this consumer may use `model` (the name as the client sent it).
    pub fn allows(&self, model: &str) -> bool {
        match &self.allow {
            None => true,
            Some(globs) => globs.iter().any(|g| g.matches(model)),
        }
    }

    /// Where this consumer's budget is kept in the quota store.
    pub fn ledger_key(&self) -> &str {
        &self.ledger_key
    }
}

/// Every consumer, with the lookup table of their key hashes.
#[derive(Debug, Clone, Default)]
pub struct Consumers {
    list: Vec<Consumer>,
    keys: Vec<(KeyHash, usize)>,
    key_header: Option<String>,
    default_max_tokens: u64,
}

impl Consumers {
    pub fn new(
        list: Vec<Consumer>,
        keys: Vec<(KeyHash, usize)>,
        key_header: Option<String>,
        default_max_tokens: u64,
    ) -> Consumers {
        Consumers {
            list,
            keys,
            key_header,
            default_max_tokens,
        }
    }

    /// Whether callers must present a key (some consumer is configured).
    pub fn required(&self) -> bool {
        !self.list.is_empty()
    }

    pub fn list(&self) -> &[Consumer] {
        &self.list
    }

    pub fn get(&self, index: usize) -> Option<&Consumer> {
        self.list.get(index)
    }

    /// The extra header a key may come in.
    pub fn key_header(&self) -> Option<&str> {
        self.key_header.as_deref()
    }

    /// Output tokens reserved for a request that sets no output limit.
    pub fn default_max_tokens(&self) -> u64 {
        self.default_max_tokens
    }

    /// The consumer whose key the request presents (in the configured
    /// header, `Authorization: Bearer`, or `x-api-key`).
    pub fn identify(
        &self,
        custom: Option<&str>,
        authorization: Option<&str>,
        x_api_key: Option<&str>,
    ) -> Identity {
        match presented_key(custom, authorization, x_api_key) {
            None => Identity::NoKey,
            Some((key, source)) => match find_key(&self.keys, key) {
                Some(i) => Identity::Consumer(i, source),
                None => Identity::UnknownKey,
            },
        }
    }
}

/// Who a request comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    NoKey,
    UnknownKey,
    /// The consumer at this index, and where its key was found.
    Consumer(usize, KeySource),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::consumer::{compile, AuthConfig, ConsumerConfig};
    use crate::config::ConfigErrors;

    fn consumers(json: &str) -> (Consumers, ConfigErrors, Vec<String>) {
        let list: Vec<ConsumerConfig> = serde_json::from_str(json).unwrap();
        let mut errs = ConfigErrors::default();
        let mut warnings = Vec::new();
        let c = compile(&AuthConfig::default(), &list, &mut errs, &mut warnings);
        (c, errs, warnings)
    }

    #[test]
    fn keys_identify_their_consumer_in_any_header() {
        let hash = KeyHash::of("sk-aigw-team-b-0000000").to_hex();
        let (c, errs, warnings) = consumers(&format!(
            r#"[{{"name":"a","keys":[{{"value":"sk-aigw-team-a-0000000"}}]}},
                {{"name":"b","keys":[{{"sha256":"{hash}"}}],"models":["gpt-*","claude-sonnet-4-5"]}}]"#
        ));
        assert!(errs.is_empty(), "{errs}");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("plain text"));
        assert!(!warnings[0].contains("sk-aigw-team-a"));
        assert_eq!(
            c.identify(None, Some("Bearer sk-aigw-team-b-0000000"), None),
            Identity::Consumer(1, KeySource::Bearer)
        );
        assert_eq!(
            c.identify(None, None, Some("sk-aigw-team-a-0000000")),
            Identity::Consumer(0, KeySource::XApiKey)
        );
        assert_eq!(
            c.identify(None, Some("Bearer nope"), None),
            Identity::UnknownKey
        );
        assert_eq!(c.identify(None, None, None), Identity::NoKey);
        let b = c.get(1).unwrap();
        assert!(b.allows("gpt-4o-mini"));
        assert!(b.allows("claude-sonnet-4-5"));
        assert!(!b.allows("claude-opus-4"));
        assert!(c.get(0).unwrap().allows("anything"));
        assert_eq!(b.ledger_key(), "aigw.quota.b");
    }

    #[test]
    fn consumer_errors_name_the_field() {
        let dup = KeyHash::of("sk-aigw-shared-000000").to_hex();
        let (_, errs, _) = consumers(&format!(
            r#"[{{"name":"a","keys":[{{"sha256":"{dup}"}},{{"sha256":"xyz"}},{{"value":"short"}},{{}}],"models":[]}},
                {{"name":"a","keys":[{{"sha256":"{dup}"}}],
                  "limits":{{"requestsPerMinute":0,"tokensPerMinute":5,"tokenQuotas":[{{"period":"minute","tokens":9}},{{"period":"day","tokens":1}},{{"period":"day","tokens":2}}]}}}},
                {{"name":"bad name","keys":[]}}]"#
        ));
        let text = errs.to_string();
        for needle in [
            "consumers[0].keys[1].sha256: expected 64 hex digits",
            "consumers[0].keys[2].value: a key must have at least 16",
            "consumers[0].keys[3]: set exactly one of `sha256` or `value`",
            "consumers[0].models: an empty list allows nothing",
            "consumers[1].name: consumer \"a\" is declared twice",
            "consumers[1].keys[0]: this key is already a key of consumer \"a\"",
            "consumers[1].limits.requestsPerMinute: must be at least 1",
            "consumers[1].limits.tokenQuotas[0].period: a token quota per minute is set twice (tokensPerMinute is one already)",
            "consumers[1].limits.tokenQuotas[2].period: a token quota per day is set twice",
            "consumers[2].name: \"bad name\" is not a valid name",
            "consumers[2].keys: at least one key is required",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in {text}");
        }
    }

    #[test]
    fn limits_compile_to_windows() {
        let (c, errs, _) = consumers(
            r#"[{"name":"a","keys":[{"value":"sk-aigw-0000000000000"}],
                 "limits":{"requestsPerMinute":60,"tokensPerMinute":1000,"concurrentRequests":2,
                           "tokenQuotas":[{"period":"month","tokens":100000},{"period":"total","tokens":500000}]}}]"#,
        );
        assert!(errs.is_empty(), "{errs}");
        let l = &c.get(0).unwrap().limits;
        assert_eq!(l.windows.len(), 4);
        assert_eq!(l.concurrent, Some(2));
    }

    #[test]
    fn the_key_header_must_be_a_plain_client_header() {
        let mut errs = ConfigErrors::default();
        for bad in ["x-aigw-key", "X-Key", ":authority", ""] {
            let auth = AuthConfig {
                key_header: Some(bad.into()),
                ..AuthConfig::default()
            };
            compile(&auth, &[], &mut errs, &mut Vec::new());
        }
        assert_eq!(errs.0.len(), 4, "{errs}");
    }
}
