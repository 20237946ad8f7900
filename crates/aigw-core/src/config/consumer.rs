//! Consumers in the router filter's configuration: who may call the gateway
//! with which virtual keys, which models each may use, and its limits.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::{is_valid_name, ConfigErrors};
use crate::apikey::{KeyHash, MIN_KEY_LEN};
use crate::consumer::{Consumer, Consumers};
use crate::glob::Glob;
use crate::quota::{Limit, Limits, Measure, Period};

/// Output tokens reserved for a request that sets no output limit.
pub const DEFAULT_RESERVE_OUTPUT_TOKENS: u64 = 4_096;

/// How callers present their keys, and reservation defaults.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthConfig {
    /// A header carrying the key, checked before `Authorization: Bearer`
    /// and `x-api-key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_header: Option<String>,
    /// Output tokens a request reserves when it sets no `max_tokens`.
    #[serde(default = "default_reserve_output")]
    pub default_max_tokens: u64,
}

fn default_reserve_output() -> u64 {
    DEFAULT_RESERVE_OUTPUT_TOKENS
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            key_header: None,
            default_max_tokens: DEFAULT_RESERVE_OUTPUT_TOKENS,
        }
    }
}

/// One consumer: an application, a team or a person.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsumerConfig {
    pub name: String,
    pub keys: Vec<ConsumerKeyConfig>,
    /// Model names and patterns this consumer may use; absent: every model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<String>>,
    #[serde(default)]
    pub limits: LimitsConfig,
}

/// A virtual key: its SHA-256 hash, or (for local use) the key itself.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsumerKeyConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

impl std::fmt::Debug for ConsumerKeyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerKeyConfig")
            .field("sha256", &self.sha256)
            .field("value", &self.value.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LimitsConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_minute: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrent_requests: Option<u64>,
    /// Token budgets per period (at most one per period).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub token_quotas: Vec<TokenQuotaConfig>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenQuotaConfig {
    pub period: Period,
    pub tokens: u64,
}

impl LimitsConfig {
    fn compile(&self, at: &str, errs: &mut ConfigErrors) -> Limits {
        let mut windows = Vec::new();
        let positive = |errs: &mut ConfigErrors, field: &str, v: u64| {
            if v == 0 {
                errs.push(
                    format!("{at}.{field}"),
                    "must be at least 1 (remove the limit to lift it)",
                );
            }
        };
        if let Some(n) = self.requests_per_minute {
            positive(errs, "requestsPerMinute", n);
            windows.push(Limit {
                measure: Measure::Requests,
                period: Period::Minute,
                max: n,
            });
        }
        if let Some(n) = self.tokens_per_minute {
            positive(errs, "tokensPerMinute", n);
            windows.push(Limit {
                measure: Measure::Tokens,
                period: Period::Minute,
                max: n,
            });
        }
        if let Some(n) = self.concurrent_requests {
            positive(errs, "concurrentRequests", n);
        }
        for (i, q) in self.token_quotas.iter().enumerate() {
            positive(errs, &format!("tokenQuotas[{i}].tokens"), q.tokens);
            if windows
                .iter()
                .any(|l| l.measure == Measure::Tokens && l.period == q.period)
            {
                let also = if q.period == Period::Minute && self.tokens_per_minute.is_some() {
                    " (tokensPerMinute is one already)"
                } else {
                    ""
                };
                errs.push(
                    format!("{at}.tokenQuotas[{i}].period"),
                    format!("a token quota per {} is set twice{also}", q.period.as_str()),
                );
                continue;
            }
            windows.push(Limit {
                measure: Measure::Tokens,
                period: q.period,
                max: q.tokens,
            });
        }
        Limits {
            windows,
            concurrent: self.concurrent_requests,
        }
    }
}

/// True for a header a key may be read from: a lowercase token that is not
/// one of the gateway's own (those are removed from every request).
fn is_valid_key_header(name: &str) -> bool {
    !name.is_empty()
        && !crate::headers::is_internal(name)
        && !name.starts_with(':')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Compiles the consumers; `warnings` receives findings that are allowed
/// but worth telling the operator (plain keys).
pub fn compile(
    auth: &AuthConfig,
    consumers: &[ConsumerConfig],
    errs: &mut ConfigErrors,
    warnings: &mut Vec<String>,
) -> Consumers {
    if let Some(h) = &auth.key_header {
        if !is_valid_key_header(h) {
            errs.push(
                "auth.keyHeader",
                format!("{h:?} is not a usable header name (lowercase letters, digits, -, _; not x-aigw-*)"),
            );
        }
    }
    let mut names = HashSet::new();
    let mut seen_keys: Vec<(KeyHash, String)> = Vec::new();
    let mut compiled = Vec::new();
    let mut keys = Vec::new();
    for (i, c) in consumers.iter().enumerate() {
        let at = format!("consumers[{i}]");
        if !is_valid_name(&c.name) {
            errs.push(
                format!("{at}.name"),
                format!(
                    "{:?} is not a valid name (letters, digits, - _ . ; at most 64)",
                    c.name
                ),
            );
        } else if !names.insert(c.name.as_str()) {
            errs.push(
                format!("{at}.name"),
                format!("consumer {:?} is declared twice", c.name),
            );
        }
        if c.keys.is_empty() {
            errs.push(format!("{at}.keys"), "at least one key is required");
        }
        for (j, k) in c.keys.iter().enumerate() {
            let kat = format!("{at}.keys[{j}]");
            let hash = match (&k.sha256, &k.value) {
                (Some(h), None) => match KeyHash::parse(h) {
                    Ok(h) => h,
                    Err(e) => {
                        errs.push(format!("{kat}.sha256"), e);
                        continue;
                    }
                },
                (None, Some(v)) => {
                    if v.trim().len() < MIN_KEY_LEN || v.trim() != v {
                        errs.push(
                            format!("{kat}.value"),
                            format!("a key must have at least {MIN_KEY_LEN} characters and no surrounding spaces"),
                        );
                        continue;
                    }
                    warnings.push(format!(
                        "{kat}: consumer {}'s key is given in plain text; store its hash (`aigw key hash`) instead outside local use",
                        c.name
                    ));
                    KeyHash::of(v)
                }
                _ => {
                    errs.push(kat, "set exactly one of `sha256` or `value`");
                    continue;
                }
            };
            if let Some((_, other)) = seen_keys.iter().find(|(h, _)| *h == hash) {
                errs.push(
                    kat,
                    format!("this key is already a key of consumer {other:?}"),
                );
                continue;
            }
            seen_keys.push((hash, c.name.clone()));
            keys.push((hash, compiled.len()));
        }
        let allow = c.models.as_ref().map(|models| {
            if models.is_empty() {
                errs.push(
                    format!("{at}.models"),
                    "an empty list allows nothing; omit `models` to allow every model",
                );
            }
            models
                .iter()
                .enumerate()
                .filter_map(|(j, m)| {
                    if m.trim().is_empty() {
                        errs.push(format!("{at}.models[{j}]"), "must not be empty");
                        None
                    } else {
                        Some(Glob::new(m))
                    }
                })
                .collect()
        });
        let limits = c.limits.compile(&format!("{at}.limits"), errs);
        compiled.push(Consumer::new(&c.name, allow, limits));
    }
    Consumers::new(
        compiled,
        keys,
        auth.key_header.clone(),
        auth.default_max_tokens,
    )
}
