//! Configuration of the router filter (downstream, in the listener's HTTP
//! filter chain): which models exist and which route serves each.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::consumer::{self, AuthConfig, ConsumerConfig};
use super::{is_valid_name, is_valid_route_id, ConfigErrors};
use crate::consumer::Consumers;
use crate::routing::ModelTable;
use crate::schema::openai::{model_list_body, ModelObject};
use crate::split::{Split, SplitTarget};

/// Default request body limit: 10 MiB.
pub const DEFAULT_MAX_REQUEST_BODY_BYTES: usize = 10 * 1024 * 1024;
/// Largest accepted request body limit: 256 MiB.
pub const MAX_REQUEST_BODY_BYTES_LIMIT: usize = 256 * 1024 * 1024;

/// The router filter's JSON configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouterConfig {
    /// Requests with a larger body get 413 before any provider is called.
    #[serde(default = "default_max_body")]
    pub max_request_body_bytes: usize,
    /// Model entries, in precedence order for patterns.
    #[serde(default)]
    pub models: Vec<ModelRoute>,
    /// Providers reachable as `provider/model`.
    #[serde(default)]
    pub provider_prefixes: Vec<ProviderPrefixRoute>,
    /// How consumers present their keys; used when `consumers` is not empty.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Callers and their virtual keys. None: the gateway is open to anyone
    /// who can reach it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consumers: Vec<ConsumerConfig>,
}

fn default_max_body() -> usize {
    DEFAULT_MAX_REQUEST_BODY_BYTES
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig {
            max_request_body_bytes: DEFAULT_MAX_REQUEST_BODY_BYTES,
            models: vec![],
            provider_prefixes: vec![],
            auth: AuthConfig::default(),
            consumers: vec![],
        }
    }
}

/// One model entry: an exact `name` (with `aliases`) or a `pattern`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModelRoute {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// Route id set in `x-aigw-route`; Envoy's route table matches on it.
    pub route: String,
    /// `owned_by` in `/v1/models`; `aigw` when absent (the `aigw` command
    /// sets it to the target provider's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owned_by: Option<String>,
    /// A canary split: each request goes to one of these routes, by weight,
    /// instead of `route`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub split: Vec<SplitRoute>,
    /// Keeps a caller on one target of the split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticky: Option<StickyConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SplitRoute {
    pub route: String,
    pub weight: u32,
    /// What sticky callers are hashed against (e.g. `provider/model`), so
    /// they keep their target when routes are renumbered; the route id when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// What keeps a caller on one split target: its consumer, or a request
/// header's value. Without the value (no consumer, no header), the request
/// follows the weighted rotation.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StickyConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub consumer: bool,
}

/// What a split's stickiness is keyed by, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StickyBy {
    Consumer,
    /// A lowercase header name.
    Header(String),
}

/// A split with its stickiness.
#[derive(Debug, Clone)]
pub struct CompiledSplit {
    pub split: Split,
    pub sticky: Option<StickyBy>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProviderPrefixRoute {
    pub provider: String,
    pub route: String,
}

/// The compiled router configuration.
#[derive(Debug, Clone)]
pub struct RouterPlan {
    pub max_request_body_bytes: usize,
    pub table: ModelTable,
    /// Precomputed `GET /v1/models` body.
    pub models_body: Vec<u8>,
    pub consumers: Consumers,
    /// `GET /v1/models` as each consumer sees it (same order as `consumers`).
    pub consumer_models: Vec<Vec<u8>>,
    /// Allowed but worth telling the operator.
    pub warnings: Vec<String>,
    /// Splits by the route id of their model entry.
    pub splits: HashMap<String, CompiledSplit>,
    /// Request headers some split is sticky on (lowercase).
    pub sticky_headers: Vec<String>,
}

impl RouterPlan {
    /// The `GET /v1/models` body for a caller.
    pub fn models_body_for(&self, consumer: Option<usize>) -> &[u8] {
        consumer
            .and_then(|i| self.consumer_models.get(i))
            .unwrap_or(&self.models_body)
    }
}

impl RouterConfig {
    pub fn compile(&self) -> Result<RouterPlan, ConfigErrors> {
        let mut errs = ConfigErrors::default();
        if self.max_request_body_bytes == 0
            || self.max_request_body_bytes > MAX_REQUEST_BODY_BYTES_LIMIT
        {
            errs.push(
                "maxRequestBodyBytes",
                format!(
                    "{} is out of range (1..={MAX_REQUEST_BODY_BYTES_LIMIT})",
                    self.max_request_body_bytes
                ),
            );
        }
        let mut builder = ModelTable::builder();
        let mut names: HashSet<&str> = HashSet::new();
        let mut splits = HashMap::new();
        let mut sticky_headers = Vec::new();
        for (i, m) in self.models.iter().enumerate() {
            let at = format!("models[{i}]");
            if !is_valid_route_id(&m.route) {
                errs.push(
                    format!("{at}.route"),
                    format!(
                        "{:?} is not a valid route id (letters, digits, - _ . :)",
                        m.route
                    ),
                );
            }
            let owned_by = m.owned_by.as_deref().unwrap_or("aigw");
            if let Some(split) = compile_split(m, &at, &mut errs, &mut sticky_headers) {
                splits.insert(m.route.clone(), split);
            }
            match (&m.name, &m.pattern) {
                (Some(name), None) => {
                    for (field, n) in std::iter::once(("name".to_string(), name)).chain(
                        m.aliases
                            .iter()
                            .enumerate()
                            .map(|(j, a)| (format!("aliases[{j}]"), a)),
                    ) {
                        if n.trim().is_empty() {
                            errs.push(format!("{at}.{field}"), "must not be empty");
                        } else if !names.insert(n.as_str()) {
                            errs.push(
                                format!("{at}.{field}"),
                                format!("model name {n:?} is declared twice"),
                            );
                        }
                    }
                    builder.model(name, &m.aliases, &m.route, owned_by);
                }
                (None, Some(pattern)) => {
                    if !m.aliases.is_empty() {
                        errs.push(
                            format!("{at}.aliases"),
                            "aliases are only allowed with `name`, not with `pattern`",
                        );
                    }
                    if !pattern.contains(['*', '?']) {
                        errs.push(
                            format!("{at}.pattern"),
                            format!("{pattern:?} has no wildcard (* or ?); use `name` for an exact model"),
                        );
                    }
                    builder.pattern(pattern, &m.route);
                }
                (Some(_), Some(_)) => errs.push(at, "set either `name` or `pattern`, not both"),
                (None, None) => errs.push(at, "set `name` or `pattern`"),
            }
        }
        let mut prefixes = HashSet::new();
        for (i, p) in self.provider_prefixes.iter().enumerate() {
            let at = format!("providerPrefixes[{i}]");
            if !is_valid_name(&p.provider) {
                errs.push(
                    format!("{at}.provider"),
                    format!("{:?} is not a valid provider name", p.provider),
                );
            }
            if !prefixes.insert(p.provider.as_str()) {
                errs.push(
                    format!("{at}.provider"),
                    format!("provider {:?} is listed twice", p.provider),
                );
            }
            if !is_valid_route_id(&p.route) {
                errs.push(
                    format!("{at}.route"),
                    format!("{:?} is not a valid route id", p.route),
                );
            }
            builder.provider_prefix(&p.provider, &p.route);
        }
        let table = builder.build();
        let models_body = model_list_body(table.listed());
        let mut warnings = Vec::new();
        let consumers = consumer::compile(&self.auth, &self.consumers, &mut errs, &mut warnings);
        let consumer_models = consumers
            .list()
            .iter()
            .map(|c| {
                let allowed: Vec<ModelObject> = table
                    .listed()
                    .iter()
                    .filter(|m| c.allows(&m.id))
                    .cloned()
                    .collect();
                model_list_body(&allowed)
            })
            .collect();
        errs.into_result(RouterPlan {
            max_request_body_bytes: self.max_request_body_bytes,
            table,
            models_body,
            consumers,
            consumer_models,
            warnings,
            splits,
            sticky_headers,
        })
    }
}

/// A model entry's split, checked; `None` without one (or when it is wrong).
fn compile_split(
    m: &ModelRoute,
    at: &str,
    errs: &mut ConfigErrors,
    sticky_headers: &mut Vec<String>,
) -> Option<CompiledSplit> {
    if m.split.is_empty() {
        if m.sticky.is_some() {
            errs.push(format!("{at}.sticky"), "applies to a `split` only");
        }
        return None;
    }
    let mut ok = true;
    let mut seen = HashSet::new();
    for (j, t) in m.split.iter().enumerate() {
        if !is_valid_route_id(&t.route) {
            errs.push(
                format!("{at}.split[{j}].route"),
                format!("{:?} is not a valid route id", t.route),
            );
            ok = false;
        } else if !seen.insert(t.route.as_str()) {
            errs.push(
                format!("{at}.split[{j}].route"),
                format!("route {:?} is listed twice", t.route),
            );
            ok = false;
        }
        if t.weight == 0 || t.weight > 10_000 {
            errs.push(
                format!("{at}.split[{j}].weight"),
                format!("{} is out of range (1..=10000)", t.weight),
            );
            ok = false;
        }
    }
    let sticky = match &m.sticky {
        None => None,
        Some(StickyConfig {
            header: Some(h),
            consumer: false,
        }) => {
            let h = h.to_ascii_lowercase();
            if h.is_empty()
                || crate::headers::is_internal(&h)
                || !h
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                errs.push(
                    format!("{at}.sticky.header"),
                    format!("{h:?} is not a usable header name"),
                );
                ok = false;
            }
            if !sticky_headers.contains(&h) {
                sticky_headers.push(h.clone());
            }
            Some(StickyBy::Header(h))
        }
        Some(StickyConfig {
            header: None,
            consumer: true,
        }) => Some(StickyBy::Consumer),
        Some(_) => {
            errs.push(
                format!("{at}.sticky"),
                "set exactly one of `header: <name>` or `consumer: true`",
            );
            ok = false;
            None
        }
    };
    ok.then(|| CompiledSplit {
        split: Split::new(
            m.split
                .iter()
                .map(|t| SplitTarget {
                    route: t.route.clone(),
                    key: t.key.clone().unwrap_or_else(|| t.route.clone()),
                    weight: t.weight,
                })
                .collect(),
        ),
        sticky,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_json;

    #[test]
    fn parses_and_compiles_a_full_config() {
        let cfg: RouterConfig = parse_json(
            br#"{"maxRequestBodyBytes":1024,
                 "models":[{"name":"gpt-4o-mini","aliases":["mini"],"route":"m0","ownedBy":"openai"},
                           {"pattern":"gpt-*","route":"m1"}],
                 "providerPrefixes":[{"provider":"deepseek","route":"p:deepseek"}]}"#,
        )
        .unwrap();
        let plan = cfg.compile().unwrap();
        assert_eq!(plan.max_request_body_bytes, 1024);
        assert_eq!(plan.table.resolve("mini").unwrap().route, "m0");
        assert_eq!(plan.table.resolve("gpt-5").unwrap().route, "m1");
        assert_eq!(
            plan.table.resolve("deepseek/x").unwrap().route,
            "p:deepseek"
        );
        let listed: serde_json::Value = serde_json::from_slice(&plan.models_body).unwrap();
        assert_eq!(listed["data"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn defaults_apply() {
        let cfg: RouterConfig = parse_json(b"{}").unwrap();
        assert_eq!(cfg.max_request_body_bytes, DEFAULT_MAX_REQUEST_BODY_BYTES);
        assert!(cfg.compile().is_ok());
    }

    #[test]
    fn unknown_fields_are_rejected_with_their_name() {
        let err = parse_json::<RouterConfig>(br#"{"modles":[]}"#).unwrap_err();
        assert!(err.to_string().contains("modles"), "{err}");
    }

    #[test]
    fn every_problem_is_reported_with_field_and_value() {
        let cfg: RouterConfig = parse_json(
            br#"{"maxRequestBodyBytes":0,
                 "models":[{"name":"a","route":"bad route"},
                           {"name":"a","route":"m1"},
                           {"pattern":"nowildcard","aliases":["x"],"route":"m2"},
                           {"route":"m3"},
                           {"name":"b","pattern":"b*","route":"m4"}],
                 "providerPrefixes":[{"provider":"p/x","route":"r"},{"provider":"p/x","route":"r"}]}"#,
        )
        .unwrap();
        let errs = cfg.compile().unwrap_err();
        let text = errs.to_string();
        for needle in [
            "maxRequestBodyBytes: 0 is out of range",
            "models[0].route: \"bad route\"",
            "models[1].name: model name \"a\" is declared twice",
            "models[2].aliases",
            "models[2].pattern: \"nowildcard\" has no wildcard",
            "models[3]: set `name` or `pattern`",
            "models[4]: set either",
            "providerPrefixes[0].provider: \"p/x\"",
            "providerPrefixes[1].provider: provider \"p/x\" is listed twice",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in {text}");
        }
    }
}
