//! Configuration of the provider filter (upstream, one per provider cluster):
//! where the provider is, how to authenticate, and how each route's model is
//! named at this provider.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::url::BaseUrl;
use super::{is_valid_name, is_valid_route_id, ConfigErrors};
use crate::keypool::{fingerprint, PoolSettings, WhenAllDown};
use crate::keys::{KeyRing, ProviderKey, Secret};
use crate::provider::{anthropic, azure_openai, Provider, ProviderKind};
use crate::rewrite::ModelRewrite;

/// The provider filter's configuration in a fallback chain's (aggregate)
/// cluster: every provider of the chain, in the order they are tried. Each
/// attempt finds its provider in the metadata of the host Envoy picked
/// (`aigw.provider`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChainConfig {
    pub chain: Vec<ProviderConfig>,
    /// Whether a provider's refusal (429, 5xx) moves the request on. Then a
    /// provider with targets after it sends the request even when all its
    /// keys are out (with the key due back first), rather than answer 503
    /// itself, which Envoy would not retry.
    #[serde(default = "yes")]
    pub refusals_move_on: bool,
}

fn yes() -> bool {
    true
}

/// Either configuration of the provider filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterConfig {
    /// One provider's cluster.
    One(Box<ProviderConfig>),
    /// A fallback chain's cluster.
    Chain {
        providers: Vec<ProviderConfig>,
        refusals_move_on: bool,
    },
}

impl FilterConfig {
    /// Parses either shape: an object with `chain` is a chain.
    pub fn parse(bytes: &[u8]) -> Result<FilterConfig, ConfigErrors> {
        let is_chain = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(bytes)
            .map(|m| m.contains_key("chain"))
            .unwrap_or(false);
        if is_chain {
            let c: ChainConfig = super::parse_json(bytes)?;
            if c.chain.len() < 2 {
                let mut errs = ConfigErrors::default();
                errs.push("chain", "a chain has at least two providers");
                return Err(errs);
            }
            Ok(FilterConfig::Chain {
                providers: c.chain,
                refusals_move_on: c.refusals_move_on,
            })
        } else {
            super::parse_json(bytes).map(|c| FilterConfig::One(Box::new(c)))
        }
    }

    /// The providers, in order.
    pub fn providers(&self) -> &[ProviderConfig] {
        match self {
            FilterConfig::One(p) => std::slice::from_ref(p.as_ref()),
            FilterConfig::Chain { providers, .. } => providers,
        }
    }
}

/// The metadata namespace and key of a provider cluster's endpoint that name
/// its provider (`filter_metadata.aigw.provider`).
pub const HOST_METADATA_NAMESPACE: &str = "aigw";
pub const HOST_METADATA_PROVIDER: &str = "provider";

/// The provider filter's JSON configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProviderConfig {
    /// Provider name, used in logs, errors and the `x-aigw-provider` header.
    pub name: String,
    pub kind: ProviderKind,
    /// Base URL as the provider's own SDK takes it, e.g.
    /// `https://api.openai.com/v1`. Defaults for `anthropic` and `gemini`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Keys, used in turn. Empty for servers that need no key.
    #[serde(default)]
    pub keys: Vec<KeyConfig>,
    /// Ask the provider for a usage chunk on streams the client did not ask
    /// usage for (removed again before the client sees it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_usage: Option<bool>,
    /// `azure-openai` only: the `api-version` query parameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// `anthropic` only: `anthropic-version` sent when the client sent none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anthropic_version: Option<String>,
    /// `anthropic` only: `max_tokens` sent when an OpenAI client gave none
    /// (Anthropic requires it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_max_tokens: Option<u32>,
    /// How the keys share traffic and recover from failures.
    #[serde(default)]
    pub key_pool: KeyPoolConfig,
    /// The Envoy cluster of this provider (for the active health check).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Per route id: the model name at this provider.
    #[serde(default)]
    pub routes: BTreeMap<String, RouteModel>,
}

/// A key given inline (`value`) or by environment variable (`env`), which the
/// VM receives through `vm_config.environment_variables.host_env_keys`.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyConfig {
    /// Stable id, safe to log and to use as a metric label.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// Share of the traffic relative to the provider's other keys.
    #[serde(default = "one")]
    pub weight: u32,
}

fn one() -> u32 {
    1
}

/// How the provider's keys share traffic and recover (durations in ms).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyPoolConfig {
    /// Cooldown of a key after a 429 without `Retry-After`.
    #[serde(default = "d_cooldown")]
    pub cooldown_ms: u64,
    /// Longest `Retry-After` honoured.
    #[serde(default = "d_max_cooldown")]
    pub max_cooldown_ms: u64,
    /// How long a key refused with 401/403 stays out.
    #[serde(default = "d_auth")]
    pub auth_failure_cooldown_ms: u64,
    /// Consecutive 5xx / connection failures that make a key unhealthy.
    #[serde(default = "d_threshold")]
    pub failure_threshold: u32,
    /// First backoff of an unhealthy key; doubles on each failed trial.
    #[serde(default = "d_backoff")]
    pub unhealthy_backoff_ms: u64,
    #[serde(default = "d_max_backoff")]
    pub max_backoff_ms: u64,
    /// `fail`: 503 with `Retry-After` when no key is usable; `try-oldest`: use
    /// the key due back first.
    #[serde(default)]
    pub when_all_down: WhenAllDownConfig,
    /// Keep requests with the same value of this header on the same healthy
    /// key (e.g. a session or user header), for providers' prompt caches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticky_header: Option<String>,
    /// Probe keys that are out with a cheap request (the provider's model
    /// list), so they come back as soon as they work. Needs `cluster`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheckConfig>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthCheckConfig {
    #[serde(default = "d_hc_interval")]
    pub interval_ms: u64,
    #[serde(default = "d_hc_timeout")]
    pub timeout_ms: u64,
}

fn d_hc_interval() -> u64 {
    30_000
}
fn d_hc_timeout() -> u64 {
    5_000
}

/// The active health check, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    pub interval_ms: u64,
    pub timeout_ms: u64,
    /// Envoy cluster the probes go to.
    pub cluster: String,
    pub path: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum WhenAllDownConfig {
    #[default]
    Fail,
    TryOldest,
}

fn d_cooldown() -> u64 {
    PoolSettings::default().cooldown_ms
}
fn d_max_cooldown() -> u64 {
    PoolSettings::default().max_cooldown_ms
}
fn d_auth() -> u64 {
    PoolSettings::default().auth_failure_cooldown_ms
}
fn d_threshold() -> u32 {
    PoolSettings::default().failure_threshold
}
fn d_backoff() -> u64 {
    PoolSettings::default().unhealthy_backoff_ms
}
fn d_max_backoff() -> u64 {
    PoolSettings::default().max_backoff_ms
}

impl Default for KeyPoolConfig {
    fn default() -> Self {
        KeyPoolConfig {
            cooldown_ms: d_cooldown(),
            max_cooldown_ms: d_max_cooldown(),
            auth_failure_cooldown_ms: d_auth(),
            failure_threshold: d_threshold(),
            unhealthy_backoff_ms: d_backoff(),
            max_backoff_ms: d_max_backoff(),
            when_all_down: WhenAllDownConfig::Fail,
            sticky_header: None,
            health_check: None,
        }
    }
}

impl std::fmt::Debug for KeyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyConfig")
            .field("id", &self.id)
            .field("value", &self.value.as_ref().map(|_| "<redacted>"))
            .field("env", &self.env)
            .finish()
    }
}

/// How one route's model is named at this provider.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteModel {
    /// Send this model name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Remove this prefix from the client's model (the `provider/model` form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strip_prefix: Option<String>,
}

/// The compiled provider configuration.
#[derive(Debug)]
pub struct ProviderPlan {
    pub name: String,
    pub provider: Provider,
    pub base_url: BaseUrl,
    /// `:authority` to send.
    pub authority: String,
    pub keys: KeyRing,
    pub pool: PoolSettings,
    /// Fingerprint of the key set: names the shared state of this pool.
    pub fingerprint: String,
    pub sticky_header: Option<String>,
    pub health_check: Option<HealthCheck>,
    pub stream_usage: bool,
    pub routes: HashMap<String, ModelRewrite>,
}

impl ProviderConfig {
    /// Compiles; `env` looks up environment variables (the VM's, in the filter).
    pub fn compile(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ProviderPlan, ConfigErrors> {
        let mut errs = ConfigErrors::default();
        if !is_valid_name(&self.name) {
            errs.push(
                "name",
                format!(
                    "{:?} is not a valid provider name (letters, digits, - _ .)",
                    self.name
                ),
            );
        }
        let base_url = match self.base_url.as_deref().or(self.kind.default_base_url()) {
            Some(url) => match BaseUrl::parse(url) {
                Ok(u) => Some(u),
                Err(e) => {
                    errs.push("baseUrl", e);
                    None
                }
            },
            None => {
                errs.push(
                    "baseUrl",
                    format!("is required for kind {}", self.kind.as_str()),
                );
                None
            }
        };
        let provider = self.provider(&mut errs);
        let mut keys = Vec::with_capacity(self.keys.len());
        let mut ids = std::collections::HashSet::new();
        for (i, k) in self.keys.iter().enumerate() {
            let at = format!("keys[{i}]");
            if !is_valid_name(&k.id) {
                errs.push(
                    format!("{at}.id"),
                    format!("{:?} is not a valid key id", k.id),
                );
            } else if !ids.insert(k.id.as_str()) {
                errs.push(
                    format!("{at}.id"),
                    format!("key id {:?} is used twice", k.id),
                );
            }
            let (secret, reason) = match (&k.value, &k.env) {
                (Some(v), None) if !v.is_empty() => (Some(Secret::new(v.clone())), None),
                (Some(_), None) => {
                    errs.push(format!("{at}.value"), "must not be empty");
                    (None, None)
                }
                (None, Some(var)) => match env(var).filter(|v| !v.is_empty()) {
                    Some(v) => (Some(Secret::new(v)), None),
                    None => (None, Some(format!("environment variable {var} is not set"))),
                },
                (Some(_), Some(_)) => {
                    errs.push(at.clone(), "set either `value` or `env`, not both");
                    (None, None)
                }
                (None, None) => {
                    errs.push(at.clone(), "set `value` or `env`");
                    (None, None)
                }
            };
            if k.weight == 0 || k.weight > 1000 {
                errs.push(
                    format!("{at}.weight"),
                    format!("{} is out of range (1..=1000)", k.weight),
                );
            }
            keys.push(ProviderKey {
                id: k.id.clone(),
                weight: k.weight,
                secret,
                unavailable_reason: reason,
            });
        }
        let mut routes = HashMap::with_capacity(self.routes.len());
        for (id, r) in &self.routes {
            let at = format!("routes.{id}");
            if !is_valid_route_id(id) {
                errs.push(at.clone(), format!("{id:?} is not a valid route id"));
            }
            let rewrite = match (&r.model, &r.strip_prefix) {
                (Some(m), None) if !m.trim().is_empty() => ModelRewrite::Set(m.clone()),
                (Some(_), None) => {
                    errs.push(format!("{at}.model"), "must not be empty");
                    ModelRewrite::Keep
                }
                (None, Some(p)) if !p.is_empty() => ModelRewrite::StripPrefix(p.clone()),
                (None, Some(_)) => {
                    errs.push(format!("{at}.stripPrefix"), "must not be empty");
                    ModelRewrite::Keep
                }
                (None, None) => ModelRewrite::Keep,
                (Some(_), Some(_)) => {
                    errs.push(at, "set either `model` or `stripPrefix`, not both");
                    ModelRewrite::Keep
                }
            };
            routes.insert(id.clone(), rewrite);
        }
        let Some(base_url) = base_url else {
            return Err(errs);
        };
        let authority = base_url.authority();
        if self.stream_usage.is_some() && !provider.supports_stream_usage() {
            errs.push(
                "streamUsage",
                format!(
                    "applies to OpenAI-speaking kinds (openai-compatible, azure-openai) only, not {}: the others always report usage",
                    self.kind.as_str()
                ),
            );
        }
        let stream_usage = self.stream_usage.unwrap_or(true) && provider.supports_stream_usage();
        let pool = self.pool_settings(&mut errs);
        let health_check = self.key_pool.health_check.and_then(|hc| {
            if hc.interval_ms < 1000 || hc.timeout_ms == 0 || hc.timeout_ms > hc.interval_ms {
                errs.push(
                    "keyPool.healthCheck",
                    format!(
                        "intervalMs {} must be at least 1000 and timeoutMs {} between 1 and intervalMs",
                        hc.interval_ms, hc.timeout_ms
                    ),
                );
            }
            match &self.cluster {
                Some(cluster) if !cluster.is_empty() => Some(HealthCheck {
                    interval_ms: hc.interval_ms,
                    timeout_ms: hc.timeout_ms,
                    cluster: cluster.clone(),
                    path: provider.health_check_path(&base_url.path),
                }),
                _ => {
                    errs.push("keyPool.healthCheck", "needs `cluster`, the Envoy cluster of this provider");
                    None
                }
            }
        });
        let material: Vec<(&str, u32, &str)> = keys
            .iter()
            .map(|k: &ProviderKey| {
                (
                    k.id.as_str(),
                    k.weight,
                    k.secret.as_ref().map_or("", |s| s.expose()),
                )
            })
            .collect();
        let fingerprint = format!("{}:{}", self.name, fingerprint(&material));
        errs.into_result(ProviderPlan {
            name: self.name.clone(),
            provider,
            base_url,
            authority,
            keys: KeyRing::new(keys),
            pool,
            fingerprint,
            sticky_header: self
                .key_pool
                .sticky_header
                .as_ref()
                .map(|h| h.to_ascii_lowercase()),
            health_check,
            stream_usage,
            routes,
        })
    }

    fn pool_settings(&self, errs: &mut ConfigErrors) -> PoolSettings {
        let p = &self.key_pool;
        let positive = |errs: &mut ConfigErrors, field: &str, v: u64| {
            if v == 0 {
                errs.push(format!("keyPool.{field}"), "must be more than 0");
            }
        };
        positive(errs, "cooldownMs", p.cooldown_ms);
        positive(errs, "maxCooldownMs", p.max_cooldown_ms);
        positive(errs, "authFailureCooldownMs", p.auth_failure_cooldown_ms);
        positive(errs, "unhealthyBackoffMs", p.unhealthy_backoff_ms);
        positive(errs, "maxBackoffMs", p.max_backoff_ms);
        if p.failure_threshold == 0 {
            errs.push("keyPool.failureThreshold", "must be at least 1");
        }
        if p.max_backoff_ms < p.unhealthy_backoff_ms {
            errs.push(
                "keyPool.maxBackoffMs",
                format!(
                    "{} is below unhealthyBackoffMs ({})",
                    p.max_backoff_ms, p.unhealthy_backoff_ms
                ),
            );
        }
        if let Some(h) = &p.sticky_header {
            if h.is_empty()
                || !h
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                errs.push(
                    "keyPool.stickyHeader",
                    format!("{h:?} is not a header name"),
                );
            }
        }
        PoolSettings {
            cooldown_ms: p.cooldown_ms,
            max_cooldown_ms: p.max_cooldown_ms,
            auth_failure_cooldown_ms: p.auth_failure_cooldown_ms,
            failure_threshold: p.failure_threshold.max(1),
            unhealthy_backoff_ms: p.unhealthy_backoff_ms,
            max_backoff_ms: p.max_backoff_ms.max(p.unhealthy_backoff_ms),
            trial_timeout_ms: PoolSettings::default().trial_timeout_ms,
            when_all_down: match p.when_all_down {
                WhenAllDownConfig::Fail => WhenAllDown::Fail,
                WhenAllDownConfig::TryOldest => WhenAllDown::TryOldest,
            },
        }
    }

    /// The kind with its settings; a setting of another kind is an error.
    fn provider(&self, errs: &mut ConfigErrors) -> Provider {
        let kind = self.kind.as_str();
        let only = |errs: &mut ConfigErrors, field: &str, set: bool, owner: &str| {
            if set {
                errs.push(field, format!("applies to kind {owner} only, not {kind}"));
            }
        };
        match self.kind {
            ProviderKind::AzureOpenai => {}
            _ => only(
                errs,
                "apiVersion",
                self.api_version.is_some(),
                "azure-openai",
            ),
        }
        match self.kind {
            ProviderKind::Anthropic => {}
            _ => {
                only(
                    errs,
                    "anthropicVersion",
                    self.anthropic_version.is_some(),
                    "anthropic",
                );
                only(
                    errs,
                    "defaultMaxTokens",
                    self.default_max_tokens.is_some(),
                    "anthropic",
                );
            }
        }
        match self.kind {
            ProviderKind::OpenaiCompatible => Provider::OpenaiCompatible,
            ProviderKind::AzureOpenai => {
                let api_version = self
                    .api_version
                    .clone()
                    .unwrap_or_else(|| azure_openai::DEFAULT_API_VERSION.into());
                if api_version.trim().is_empty() {
                    errs.push("apiVersion", "must not be empty");
                }
                Provider::AzureOpenai { api_version }
            }
            ProviderKind::Anthropic => {
                let version = self
                    .anthropic_version
                    .clone()
                    .unwrap_or_else(|| anthropic::DEFAULT_VERSION.into());
                if version.trim().is_empty() {
                    errs.push("anthropicVersion", "must not be empty");
                }
                let default_max_tokens = self
                    .default_max_tokens
                    .unwrap_or(crate::convert::DEFAULT_MAX_TOKENS);
                if default_max_tokens == 0 {
                    errs.push("defaultMaxTokens", "must be more than 0");
                }
                Provider::Anthropic {
                    version,
                    default_max_tokens,
                }
            }
            ProviderKind::Gemini => Provider::Gemini,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_config_lists_its_providers_in_order() {
        let one = r#"{"name":"a","kind":"openai-compatible","baseUrl":"http://h"}"#;
        let two = r#"{"name":"b","kind":"anthropic"}"#;
        match FilterConfig::parse(format!(r#"{{"chain":[{one},{two}]}}"#).as_bytes()).unwrap() {
            FilterConfig::Chain {
                providers,
                refusals_move_on,
            } => {
                assert_eq!(
                    providers
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>(),
                    ["a", "b"]
                );
                assert!(refusals_move_on);
            }
            c => panic!("{c:?}"),
        }
        assert!(matches!(
            FilterConfig::parse(one.as_bytes()).unwrap(),
            FilterConfig::One(_)
        ));
        let err = FilterConfig::parse(format!(r#"{{"chain":[{one}]}}"#).as_bytes()).unwrap_err();
        assert!(err.to_string().contains("at least two"));
        let err = FilterConfig::parse(format!(r#"{{"chain":[{one},{two}],"x":1}}"#).as_bytes())
            .unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }
    use crate::config::parse_json;

    fn env(name: &str) -> Option<String> {
        (name == "SET_KEY").then(|| "sk-from-env".to_string())
    }

    #[test]
    fn compiles_keys_routes_and_url() {
        let cfg: ProviderConfig = parse_json(
            br#"{"name":"openai","kind":"openai-compatible","baseUrl":"https://api.openai.com/v1",
                 "keys":[{"id":"k0","value":"sk-inline"},{"id":"k1","env":"SET_KEY"},{"id":"k2","env":"UNSET_KEY"}],
                 "routes":{"m0":{"model":"gpt-4o-mini"},"p:openai":{"stripPrefix":"openai/"},"m2":{}}}"#,
        )
        .unwrap();
        let plan = cfg.compile(&env).unwrap();
        assert_eq!(plan.authority, "api.openai.com");
        assert_eq!(plan.base_url.path, "/v1");
        assert!(plan.stream_usage);
        let keys = plan.keys.keys();
        assert_eq!(keys[0].secret.as_ref().unwrap().expose(), "sk-inline");
        assert_eq!(keys[1].secret.as_ref().unwrap().expose(), "sk-from-env");
        assert!(keys[2].secret.is_none());
        assert!(keys[2]
            .unavailable_reason
            .as_ref()
            .unwrap()
            .contains("UNSET_KEY"));
        assert_eq!(plan.routes["m0"], ModelRewrite::Set("gpt-4o-mini".into()));
        assert_eq!(
            plan.routes["p:openai"],
            ModelRewrite::StripPrefix("openai/".into())
        );
        assert_eq!(plan.routes["m2"], ModelRewrite::Keep);
    }

    #[test]
    fn kind_settings_and_default_base_urls() {
        let cfg: ProviderConfig =
            parse_json(br#"{"name":"a","kind":"anthropic","defaultMaxTokens":1024}"#).unwrap();
        let plan = cfg.compile(&env).unwrap();
        assert_eq!(plan.authority, "api.anthropic.com");
        assert_eq!(
            plan.provider,
            Provider::Anthropic {
                version: "2023-06-01".into(),
                default_max_tokens: 1024
            }
        );
        assert!(!plan.stream_usage);
        let cfg: ProviderConfig = parse_json(br#"{"name":"g","kind":"gemini"}"#).unwrap();
        let plan = cfg.compile(&env).unwrap();
        assert_eq!(
            (plan.authority.as_str(), plan.base_url.path.as_str()),
            ("generativelanguage.googleapis.com", "/v1beta")
        );
        let cfg: ProviderConfig = parse_json(
            br#"{"name":"z","kind":"azure-openai","baseUrl":"https://r.openai.azure.com"}"#,
        )
        .unwrap();
        assert_eq!(
            cfg.compile(&env).unwrap().provider,
            Provider::AzureOpenai {
                api_version: "2024-10-21".into()
            }
        );
    }

    #[test]
    fn settings_of_another_kind_are_rejected() {
        let cfg: ProviderConfig = parse_json(
            br#"{"name":"o","kind":"openai-compatible","baseUrl":"http://h","apiVersion":"x","anthropicVersion":"y","defaultMaxTokens":5}"#,
        )
        .unwrap();
        let text = cfg.compile(&env).unwrap_err().to_string();
        assert!(
            text.contains("apiVersion: applies to kind azure-openai only"),
            "{text}"
        );
        assert!(
            text.contains("anthropicVersion: applies to kind anthropic only"),
            "{text}"
        );
        assert!(
            text.contains("defaultMaxTokens: applies to kind anthropic only"),
            "{text}"
        );
        let cfg: ProviderConfig =
            parse_json(br#"{"name":"a","kind":"anthropic","streamUsage":false}"#).unwrap();
        assert!(cfg
            .compile(&env)
            .unwrap_err()
            .to_string()
            .contains("streamUsage: applies to OpenAI-speaking kinds"));
        let cfg: ProviderConfig = parse_json(br#"{"name":"z","kind":"azure-openai"}"#).unwrap();
        assert!(cfg
            .compile(&env)
            .unwrap_err()
            .to_string()
            .contains("baseUrl: is required for kind azure-openai"));
    }

    #[test]
    fn health_checks_need_the_cluster_and_probe_the_model_list() {
        let cfg: ProviderConfig = parse_json(
            br#"{"name":"a","kind":"anthropic","cluster":"c1","keyPool":{"healthCheck":{"intervalMs":10000}}}"#,
        )
        .unwrap();
        let hc = cfg.compile(&env).unwrap().health_check.unwrap();
        assert_eq!(
            (
                hc.cluster.as_str(),
                hc.path.as_str(),
                hc.interval_ms,
                hc.timeout_ms
            ),
            ("c1", "/v1/models", 10_000, 5_000)
        );
        let cfg: ProviderConfig =
            parse_json(br#"{"name":"a","kind":"openai-compatible","baseUrl":"http://h/v1","keyPool":{"healthCheck":{}}}"#).unwrap();
        assert!(cfg
            .compile(&env)
            .unwrap_err()
            .to_string()
            .contains("needs `cluster`"));
        let cfg: ProviderConfig = parse_json(
            br#"{"name":"a","kind":"openai-compatible","baseUrl":"http://h/v1","cluster":"c","keyPool":{"healthCheck":{"intervalMs":10}}}"#,
        )
        .unwrap();
        assert!(cfg
            .compile(&env)
            .unwrap_err()
            .to_string()
            .contains("intervalMs 10 must be at least 1000"));
    }

    #[test]
    fn unknown_kind_is_rejected_by_name() {
        let err = parse_json::<ProviderConfig>(
            br#"{"name":"x","kind":"openai-compatibel","baseUrl":"http://h"}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("openai-compatibel"), "{err}");
    }

    #[test]
    fn reports_every_problem() {
        let cfg: ProviderConfig = parse_json(
            br#"{"name":"bad name","kind":"openai-compatible","baseUrl":"api.openai.com",
                 "keys":[{"id":"k","value":""},{"id":"k","env":"X","value":"y"},{"id":"z"}],
                 "routes":{"bad route":{"model":"m","stripPrefix":"p"}}}"#,
        )
        .unwrap();
        let text = cfg.compile(&env).unwrap_err().to_string();
        for needle in [
            "name: \"bad name\"",
            "baseUrl: \"api.openai.com\" must start with",
            "keys[0].value: must not be empty",
            "keys[1].id: key id \"k\" is used twice",
            "keys[1]: set either",
            "keys[2]: set `value` or `env`",
            "routes.bad route: \"bad route\" is not a valid route id",
            "set either `model` or `stripPrefix`",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in {text}");
        }
    }

    #[test]
    fn inline_key_values_never_show_in_debug() {
        let k = KeyConfig {
            weight: 1,
            id: "k".into(),
            value: Some("sk-secret".into()),
            env: None,
        };
        assert!(!format!("{k:?}").contains("sk-secret"));
    }
}
