//! The gateway file: one YAML document describing a whole gateway.
//! Loading is two stages: parse the shape (unknown fields rejected, with their
//! location), then check meaning, reporting every problem with the field path
//! and the offending value.

use std::collections::{BTreeMap, HashSet};

use aigw_core::config::consumer::{self, AuthConfig, ConsumerConfig};
use aigw_core::config::provider::{
    HealthCheckConfig, KeyConfig, KeyPoolConfig, ProviderConfig, RouteModel,
};
use aigw_core::config::router::{
    ModelRoute, ProviderPrefixRoute, RouterConfig, SplitRoute, StickyConfig,
    DEFAULT_MAX_REQUEST_BODY_BYTES, MAX_REQUEST_BODY_BYTES_LIMIT,
};
use aigw_core::config::url::BaseUrl;
use aigw_core::config::{is_valid_name, ConfigErrors};
use aigw_core::provider::ProviderKind;
use serde::Deserialize;

use crate::duration::Duration;
use crate::interpolate::{self, is_env_name};

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayFile {
    /// Address clients connect to.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Envoy's admin interface (stats, readiness). Keep it on loopback.
    #[serde(default = "default_admin")]
    pub admin: String,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub timeouts: Timeouts,
    #[serde(default)]
    pub tls: Tls,
    pub providers: Vec<ProviderEntry>,
    #[serde(default)]
    pub models: Vec<ModelEntry>,
    /// How consumers present their keys.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Callers with their virtual keys, allowed models and limits. When
    /// there are none, the gateway is open to anyone who can reach it.
    #[serde(default)]
    pub consumers: Vec<ConsumerConfig>,
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}

fn default_admin() -> String {
    "127.0.0.1:9901".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Limits {
    #[serde(default = "default_max_body")]
    pub max_request_body_bytes: usize,
}

fn default_max_body() -> usize {
    DEFAULT_MAX_REQUEST_BODY_BYTES
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_body_bytes: DEFAULT_MAX_REQUEST_BODY_BYTES,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Timeouts {
    /// Whole request, until the response (stream included) has ended. `0s`: none.
    #[serde(default = "default_request_timeout")]
    pub request: Duration,
    /// TCP (and TLS) connection to a provider.
    #[serde(default = "default_connect_timeout")]
    pub connect: Duration,
    /// No byte in either direction for this long ends the request.
    #[serde(default = "default_idle_timeout")]
    pub idle: Duration,
}

fn default_request_timeout() -> Duration {
    Duration::from_secs(600)
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_idle_timeout() -> Duration {
    Duration::from_secs(300)
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            request: default_request_timeout(),
            connect: default_connect_timeout(),
            idle: default_idle_timeout(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tls {
    /// CA bundle that verifies providers' certificates.
    #[serde(default = "default_ca_file")]
    pub ca_file: String,
}

fn default_ca_file() -> String {
    "/etc/ssl/certs/ca-certificates.crt".into()
}

impl Default for Tls {
    fn default() -> Self {
        Tls {
            ca_file: default_ca_file(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProviderEntry {
    pub name: String,
    pub kind: ProviderKind,
    /// Required for `openai-compatible` and `azure-openai`; defaults for
    /// `anthropic` and `gemini`.
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default)]
    pub keys: Vec<KeyEntry>,
    /// `azure-openai`: the `api-version` query parameter.
    #[serde(default)]
    pub api_version: Option<String>,
    /// `anthropic`: `anthropic-version` sent when the client sent none.
    #[serde(default)]
    pub anthropic_version: Option<String>,
    /// `anthropic`: `max_tokens` sent when an OpenAI client gave none.
    #[serde(default)]
    pub default_max_tokens: Option<u32>,
    /// `openai-compatible` / `azure-openai`: ask for a usage chunk on every
    /// stream (hidden from clients that did not ask). Default true.
    #[serde(default)]
    pub stream_usage: Option<bool>,
    /// Serve `name/<model>` for any model of this provider.
    #[serde(default = "yes")]
    pub provider_prefix: bool,
    /// Overrides `timeouts.request` for this provider.
    #[serde(default)]
    pub timeout: Option<Duration>,
    #[serde(default)]
    pub key_pool: Option<KeyPool>,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyEntry {
    /// Defaults to `<provider>-<index>`.
    #[serde(default)]
    pub id: Option<String>,
    /// The key itself. Prefer `env`: an inline key is written into the rendered Envoy config.
    #[serde(default)]
    pub value: Option<String>,
    /// Name of an environment variable holding the key, read by Envoy's VM.
    #[serde(default)]
    pub env: Option<String>,
    /// Share of the provider's traffic (relative to its other keys).
    #[serde(default = "weight_one")]
    pub weight: u32,
}

fn weight_one() -> u32 {
    1
}

/// How a provider's keys share traffic and recover from failures.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyPool {
    /// Cooldown after a 429 without `Retry-After`.
    #[serde(default)]
    pub cooldown: Option<Duration>,
    /// Longest `Retry-After` honoured.
    #[serde(default)]
    pub max_cooldown: Option<Duration>,
    /// How long a key refused with 401/403 stays out.
    #[serde(default)]
    pub auth_failure_cooldown: Option<Duration>,
    /// Consecutive 5xx / connection failures that make a key unhealthy.
    #[serde(default)]
    pub failure_threshold: Option<u32>,
    /// First backoff of an unhealthy key (doubles on each failed trial).
    #[serde(default)]
    pub unhealthy_backoff: Option<Duration>,
    #[serde(default)]
    pub max_backoff: Option<Duration>,
    /// `fail` (503 with Retry-After) or `try-oldest`.
    #[serde(default)]
    pub when_all_down: Option<aigw_core::config::provider::WhenAllDownConfig>,
    /// Keep requests with the same value of this header on one healthy key.
    #[serde(default)]
    pub sticky_header: Option<String>,
    /// Extra attempts on other keys after a 429, 401/403, 5xx or connection
    /// failure. Default: one per other key, at most 3.
    #[serde(default)]
    pub retries: Option<u32>,
    /// Probe keys that are out with a cheap request (the provider's model
    /// list), from one worker, so they come back as soon as they work.
    #[serde(default)]
    pub health_check: Option<HealthCheckEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthCheckEntry {
    /// How often keys that are out are probed. Default 30s.
    #[serde(default)]
    pub interval: Option<Duration>,
    /// How long a probe may take. Default 5s.
    #[serde(default)]
    pub timeout: Option<Duration>,
}

impl std::fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyEntry")
            .field("id", &self.id)
            .field("value", &self.value.as_ref().map(|_| "<redacted>"))
            .field("env", &self.env)
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModelEntry {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub pattern: Option<String>,
    /// The provider (and model) serving the entry; or `split`.
    #[serde(default)]
    pub target: Option<Target>,
    /// A canary split between targets, by weight; instead of `target`.
    #[serde(default)]
    pub split: Vec<SplitEntry>,
    /// Keeps a caller on one target of the split.
    #[serde(default)]
    pub sticky: Option<StickyConfig>,
    /// Targets tried in order when the one before fails.
    #[serde(default)]
    pub fallback: Vec<Target>,
    /// What moves a request to the next target. Default: all of them.
    #[serde(default)]
    pub fallback_on: Option<Vec<FallbackOn>>,
    /// How long a target has to start answering before the next is tried.
    #[serde(default)]
    pub per_try_timeout: Option<Duration>,
}

/// One target of a canary split.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SplitEntry {
    pub provider: String,
    #[serde(default)]
    pub model: Option<String>,
    pub weight: u32,
}

/// A failure that moves a request to the next target of its chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FallbackOn {
    /// The provider answered 500, 502, 503, 504 or 529 (a key it refused
    /// included: the provider filter answers that as 502).
    ServerError,
    /// The provider answered 429.
    RateLimited,
    /// The connection failed or the stream was refused.
    Unreachable,
    /// No answer within `perTryTimeout`, or a reset before the answer started.
    Timeout,
}

impl FallbackOn {
    pub const ALL: [FallbackOn; 4] = [
        FallbackOn::ServerError,
        FallbackOn::RateLimited,
        FallbackOn::Unreachable,
        FallbackOn::Timeout,
    ];
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Target {
    pub provider: String,
    /// The model name sent to the provider; the client's by default.
    #[serde(default)]
    pub model: Option<String>,
}

/// A checked gateway, ready to render.
#[derive(Debug, Clone)]
pub struct Gateway {
    pub file: GatewayFile,
    pub listen: SocketAddr,
    pub admin: SocketAddr,
    pub providers: Vec<CompiledProvider>,
    pub routes: Vec<RouteSpec>,
    pub router: RouterConfig,
    /// Non-fatal findings for the operator.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct CompiledProvider {
    pub entry: ProviderEntry,
    pub url: BaseUrl,
    pub cluster: String,
    pub filter: ProviderConfig,
    pub env_keys: Vec<String>,
}

/// One Envoy route: what `x-aigw-route` value goes to which cluster.
#[derive(Debug, Clone)]
pub struct RouteSpec {
    pub id: String,
    /// What the route serves, for humans reading the rendered config.
    pub describes: String,
    /// The providers (indices into `Gateway::providers`) tried in order:
    /// one, or a fallback chain.
    pub members: Vec<usize>,
    pub timeout: Duration,
    pub fallback_on: Vec<FallbackOn>,
    pub per_try_timeout: Option<Duration>,
}

impl RouteSpec {
    /// The cluster of a fallback chain (an aggregate of its providers' clusters).
    pub fn chain_cluster(&self) -> String {
        format!("aigw-chain-{}", self.id)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketAddr {
    pub host: String,
    pub port: u16,
}

impl SocketAddr {
    pub fn parse(text: &str) -> Result<SocketAddr, String> {
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (h, p) = rest
                .split_once("]:")
                .ok_or_else(|| format!("{text:?} is not host:port"))?;
            (h, p)
        } else {
            text.rsplit_once(':')
                .ok_or_else(|| format!("{text:?} is not host:port"))?
        };
        let port = port
            .parse::<u16>()
            .map_err(|_| format!("{text:?} has an invalid port"))?;
        if host.parse::<std::net::IpAddr>().is_err() {
            return Err(format!(
                "{text:?}: the host must be an IP address (e.g. 127.0.0.1 or 0.0.0.0)"
            ));
        }
        Ok(SocketAddr {
            host: host.to_string(),
            port,
        })
    }
}

/// Reads, expands and checks a gateway file's text.
pub fn load(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Gateway, ConfigErrors> {
    let expanded = interpolate::expand(text, env).map_err(|e| one("", e))?;
    let file: GatewayFile =
        serde_saphyr::from_str(&expanded).map_err(|e| one("", format!("{e}")))?;
    compile(file, env)
}

/// The gateway file's name of a provider filter field (durations there are
/// written `cooldown: 30s`, not `cooldownMs: 30000`).
fn gateway_field(field: &str) -> String {
    field
        .replace("healthCheck.intervalMs", "healthCheck.interval")
        .replace("healthCheck.timeoutMs", "healthCheck.timeout")
        .replace("Ms", "")
}

fn gateway_message(message: &str) -> String {
    message
        .replace("unhealthyBackoffMs", "unhealthyBackoff")
        .replace("intervalMs", "interval (ms)")
        .replace("timeoutMs", "timeout (ms)")
}

/// The provider filter's key-pool settings from the gateway file's.
fn key_pool_config(pool: Option<&KeyPool>) -> KeyPoolConfig {
    let mut c = KeyPoolConfig::default();
    let Some(p) = pool else { return c };
    let ms = |d: Option<Duration>, default: u64| d.map_or(default, |d| d.millis);
    c.cooldown_ms = ms(p.cooldown, c.cooldown_ms);
    c.max_cooldown_ms = ms(p.max_cooldown, c.max_cooldown_ms);
    c.auth_failure_cooldown_ms = ms(p.auth_failure_cooldown, c.auth_failure_cooldown_ms);
    c.failure_threshold = p.failure_threshold.unwrap_or(c.failure_threshold);
    c.unhealthy_backoff_ms = ms(p.unhealthy_backoff, c.unhealthy_backoff_ms);
    c.max_backoff_ms = ms(p.max_backoff, c.max_backoff_ms);
    c.when_all_down = p.when_all_down.unwrap_or(c.when_all_down);
    c.sticky_header = p.sticky_header.clone();
    c.health_check = p.health_check.as_ref().map(|hc| HealthCheckConfig {
        interval_ms: hc.interval.map_or(30_000, |d| d.millis),
        timeout_ms: hc.timeout.map_or(5_000, |d| d.millis),
    });
    c
}

/// A consumer as the router filter gets it: plain keys replaced by their
/// hashes, so no consumer key is written into the rendered Envoy config (or
/// shown by its admin's config dump).
fn hashed_keys(c: &ConsumerConfig) -> ConsumerConfig {
    let mut c = c.clone();
    for k in &mut c.keys {
        if let Some(v) = k.value.take() {
            k.sha256 = Some(aigw_core::apikey::KeyHash::of(&v).to_hex());
        }
    }
    c
}

/// The cluster the active health check of a provider uses.
pub fn health_check_cluster(provider: &str) -> String {
    format!("aigw-provider-{provider}-healthcheck")
}

impl ProviderEntry {
    /// Extra attempts Envoy makes on other keys of this provider.
    pub fn key_retries(&self) -> u32 {
        let others = u32::try_from(self.keys.len().saturating_sub(1)).unwrap_or(u32::MAX);
        self.key_pool
            .as_ref()
            .and_then(|k| k.retries)
            .unwrap_or(others.min(3))
            .min(10)
    }
}

fn one(field: &str, message: String) -> ConfigErrors {
    let mut e = ConfigErrors::default();
    e.push(field, message);
    e
}

pub fn compile(
    file: GatewayFile,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Gateway, ConfigErrors> {
    let mut errs = ConfigErrors::default();
    let mut warnings = Vec::new();
    let listen = SocketAddr::parse(&file.listen)
        .map_err(|e| errs.push("listen", e))
        .ok();
    let admin = SocketAddr::parse(&file.admin)
        .map_err(|e| errs.push("admin", e))
        .ok();
    if let (Some(l), Some(a)) = (&listen, &admin) {
        if l.port == a.port
            && l.port != 0
            && (l.host == a.host || l.host == "0.0.0.0" || a.host == "0.0.0.0")
        {
            errs.push(
                "admin",
                format!(
                    "{:?} uses the same port as listen {:?}",
                    file.admin, file.listen
                ),
            );
        }
    }
    let body = file.limits.max_request_body_bytes;
    if body == 0 || body > MAX_REQUEST_BODY_BYTES_LIMIT {
        errs.push(
            "limits.maxRequestBodyBytes",
            format!("{body} is out of range (1..={MAX_REQUEST_BODY_BYTES_LIMIT})"),
        );
    }
    if file.timeouts.connect.millis == 0 {
        errs.push("timeouts.connect", "must be more than 0s");
    }
    if file.providers.is_empty() {
        errs.push("providers", "at least one provider is required");
    }

    let mut providers = Vec::new();
    let mut provider_index = BTreeMap::new();
    for (i, p) in file.providers.iter().enumerate() {
        let at = format!("providers[{i}]");
        if !is_valid_name(&p.name) {
            errs.push(
                format!("{at}.name"),
                format!(
                    "{:?} is not a valid name (letters, digits, - _ . ; at most 64)",
                    p.name
                ),
            );
        } else if provider_index.insert(p.name.clone(), i).is_some() {
            errs.push(
                format!("{at}.name"),
                format!("provider {:?} is declared twice", p.name),
            );
        }
        let mut keys = Vec::new();
        let mut env_keys = Vec::new();
        for (j, k) in p.keys.iter().enumerate() {
            let kat = format!("{at}.keys[{j}]");
            let id = k.id.clone().unwrap_or_else(|| format!("{}-{j}", p.name));
            match (&k.value, &k.env) {
                (Some(v), None) if !v.trim().is_empty() => warnings.push(format!(
                    "{kat}: key {id} is given inline; it will be written into the rendered Envoy config (use `env` for real keys)"
                )),
                (None, Some(var)) if !is_env_name(var) => {
                    errs.push(format!("{kat}.env"), format!("{var:?} is not a valid environment variable name"));
                }
                (None, Some(var)) => {
                    if env(var).filter(|v| !v.is_empty()).is_none() {
                        warnings.push(format!(
                            "{kat}: environment variable {var} is not set; provider {} answers 503 until it is",
                            p.name
                        ));
                    }
                    if !env_keys.contains(var) {
                        env_keys.push(var.clone());
                    }
                }
                _ => {} // reported by the provider's own checks below
            }
            keys.push(KeyConfig {
                id,
                value: k.value.clone(),
                env: k.env.clone(),
                weight: k.weight,
            });
        }
        if let Some(t) = p.timeout {
            if t.millis == 0 && file.timeouts.request.millis != 0 {
                warnings.push(format!(
                    "{at}.timeout: 0s disables the request timeout for provider {}",
                    p.name
                ));
            }
        }
        let filter = ProviderConfig {
            name: p.name.clone(),
            kind: p.kind,
            base_url: p.base_url.clone(),
            keys,
            stream_usage: p.stream_usage,
            api_version: p.api_version.clone(),
            anthropic_version: p.anthropic_version.clone(),
            default_max_tokens: p.default_max_tokens,
            key_pool: key_pool_config(p.key_pool.as_ref()),
            // Probes go through a twin of the provider's cluster without the
            // aigw filter: a call from the filter's own VM into its own
            // filter chain would re-enter it.
            cluster: p
                .key_pool
                .as_ref()
                .and_then(|k| k.health_check.as_ref())
                .map(|_| health_check_cluster(&p.name)),
            routes: BTreeMap::new(),
        };
        if let Some(r) = p.key_pool.as_ref().and_then(|k| k.retries) {
            if r > 10 {
                errs.push(
                    format!("{at}.keyPool.retries"),
                    format!("{r} is out of range (0..=10)"),
                );
            }
        }
        // The provider filter's own checks, reported at this entry's path.
        match filter.compile(&|_| None) {
            Ok(plan) => providers.push(CompiledProvider {
                entry: p.clone(),
                url: plan.base_url,
                cluster: format!("aigw-provider-{}", p.name),
                filter,
                env_keys,
            }),
            Err(e) => {
                for err in e.0 {
                    if err.field == "name" && !is_valid_name(&p.name) {
                        continue; // reported above
                    }
                    errs.push(
                        if err.field.is_empty() {
                            at.clone()
                        } else {
                            format!("{at}.{}", gateway_field(&err.field))
                        },
                        gateway_message(&err.message),
                    );
                }
            }
        }
    }
    // Index by name into `providers` (which skips entries whose URL failed).
    let by_name: BTreeMap<String, usize> = providers
        .iter()
        .enumerate()
        .map(|(i, p)| (p.entry.name.clone(), i))
        .collect();

    let mut routes = Vec::new();
    // Consumers are checked here, with the gateway file's field names (the
    // router filter uses the same ones).
    consumer::compile(&file.auth, &file.consumers, &mut errs, &mut warnings);
    let mut router = RouterConfig {
        max_request_body_bytes: body,
        models: vec![],
        provider_prefixes: vec![],
        auth: file.auth.clone(),
        consumers: file.consumers.iter().map(hashed_keys).collect(),
    };
    let mut names = HashSet::new();
    for (i, m) in file.models.iter().enumerate() {
        let at = format!("models[{i}]");
        let id = format!("m{i}");
        match (&m.name, &m.pattern) {
            (Some(_), Some(_)) => errs.push(at.clone(), "set either `name` or `pattern`, not both"),
            (None, None) => errs.push(at.clone(), "set `name` or `pattern`"),
            (None, Some(pat)) => {
                if !pat.contains(['*', '?']) {
                    errs.push(
                        format!("{at}.pattern"),
                        format!("{pat:?} has no wildcard (* or ?); use `name` for one model"),
                    );
                }
                if !m.aliases.is_empty() {
                    errs.push(
                        format!("{at}.aliases"),
                        "aliases go with `name`, not `pattern`",
                    );
                }
            }
            (Some(_), None) => {}
        }
        let all_names = m.name.iter().map(|n| ("name".to_string(), n)).chain(
            m.aliases
                .iter()
                .enumerate()
                .map(|(j, a)| (format!("aliases[{j}]"), a)),
        );
        for (field, n) in all_names {
            if n.trim().is_empty() {
                errs.push(format!("{at}.{field}"), "must not be empty");
            } else if !names.insert(n.clone()) {
                errs.push(
                    format!("{at}.{field}"),
                    format!("model {n:?} is declared twice"),
                );
            }
        }
        // The chains this entry routes to: one, or one per split target.
        let chains: Vec<(String, Vec<(Target, String)>)> = match (&m.target, m.split.is_empty()) {
            (Some(_), false) => {
                errs.push(at.clone(), "set either `target` or `split`, not both");
                continue;
            }
            (None, true) => {
                errs.push(at.clone(), "set `target` (or `split`)");
                continue;
            }
            (Some(t), true) => {
                let mut chain = vec![(t.clone(), format!("{at}.target"))];
                chain.extend(
                    m.fallback
                        .iter()
                        .enumerate()
                        .map(|(k, f)| (f.clone(), format!("{at}.fallback[{k}]"))),
                );
                vec![(id.clone(), chain)]
            }
            (None, false) => m
                .split
                .iter()
                .enumerate()
                .map(|(j, t)| {
                    let first = Target {
                        provider: t.provider.clone(),
                        model: t.model.clone(),
                    };
                    let mut chain = vec![(first, format!("{at}.split[{j}]"))];
                    // A split target's own provider is not its own fallback.
                    chain.extend(
                        m.fallback
                            .iter()
                            .enumerate()
                            .filter(|(_, f)| f.provider != t.provider)
                            .map(|(k, f)| (f.clone(), format!("{at}.fallback[{k}]"))),
                    );
                    (format!("{id}.{j}"), chain)
                })
                .collect(),
        };
        for (j, t) in m.split.iter().enumerate() {
            if t.weight == 0 || t.weight > 10_000 {
                errs.push(
                    format!("{at}.split[{j}].weight"),
                    format!("{} is out of range (1..=10000)", t.weight),
                );
            }
        }
        if m.split.is_empty() && m.sticky.is_some() {
            errs.push(format!("{at}.sticky"), "applies to a `split` only");
        }
        if m.fallback.is_empty() {
            if m.fallback_on.is_some() {
                errs.push(format!("{at}.fallbackOn"), "applies to a `fallback` only");
            }
            if m.per_try_timeout.is_some() {
                errs.push(
                    format!("{at}.perTryTimeout"),
                    "applies to a `fallback` only",
                );
            }
        }
        if let Some(on) = &m.fallback_on {
            if on.is_empty() {
                errs.push(
                    format!("{at}.fallbackOn"),
                    "an empty list never falls back; omit `fallbackOn` for every failure",
                );
            }
        }
        if let Some(t) = m.per_try_timeout {
            if t.millis == 0 {
                errs.push(format!("{at}.perTryTimeout"), "must be more than 0s");
            }
            if m.fallback_on
                .as_ref()
                .is_some_and(|on| !on.contains(&FallbackOn::Timeout))
            {
                warnings.push(format!(
                    "{at}.perTryTimeout: `timeout` is not in fallbackOn, so a target that does not answer in time ends the request with 504 instead of moving on"
                ));
            }
        }
        if m.sticky.as_ref().is_some_and(|s| s.consumer) && file.consumers.is_empty() {
            warnings.push(format!(
                "{at}.sticky: there are no consumers, so every request follows the weighted rotation"
            ));
        }
        let mut entry_ok = true;
        let mut specs = Vec::new();
        for (route_id, chain) in &chains {
            let mut members: Vec<usize> = Vec::new();
            let mut seen: Vec<&str> = Vec::new();
            for (t, tat) in chain {
                if seen.contains(&t.provider.as_str()) {
                    errs.push(
                        format!("{tat}.provider"),
                        format!(
                            "provider {:?} is already in this chain: a chain tries each provider once, so it would loop",
                            t.provider
                        ),
                    );
                    entry_ok = false;
                    continue;
                }
                seen.push(&t.provider);
                if let Some(model) = &t.model {
                    if model.trim().is_empty() {
                        errs.push(format!("{tat}.model"), "must not be empty");
                    }
                }
                match by_name.get(&t.provider) {
                    Some(&pi) => members.push(pi),
                    None => {
                        if !provider_index.contains_key(&t.provider) {
                            errs.push(
                                format!("{tat}.provider"),
                                format!("unknown provider {:?}", t.provider),
                            );
                        }
                        entry_ok = false;
                    }
                }
            }
            specs.push((route_id.clone(), chain.clone(), members));
        }
        if !entry_ok {
            continue;
        }
        let describes = m
            .name
            .clone()
            .or_else(|| m.pattern.clone())
            .unwrap_or_default();
        for (route_id, chain, members) in specs {
            for ((t, _), &pi) in chain.iter().zip(&members) {
                providers[pi].filter.routes.insert(
                    route_id.clone(),
                    RouteModel {
                        model: t.model.clone(),
                        strip_prefix: None,
                    },
                );
            }
            let timeout = members
                .iter()
                .map(|&pi| providers[pi].entry.timeout.unwrap_or(file.timeouts.request))
                .max_by_key(|d| if d.millis == 0 { u64::MAX } else { d.millis })
                .unwrap_or(file.timeouts.request);
            let chain_text: Vec<String> = chain
                .iter()
                .map(|(t, _)| match &t.model {
                    Some(model) => format!("{}/{model}", t.provider),
                    None => t.provider.clone(),
                })
                .collect();
            routes.push(RouteSpec {
                id: route_id,
                describes: format!("{describes} -> {}", chain_text.join(" -> ")),
                members,
                timeout,
                fallback_on: m
                    .fallback_on
                    .clone()
                    .unwrap_or_else(|| FallbackOn::ALL.to_vec()),
                per_try_timeout: m.per_try_timeout,
            });
        }
        let owned_by = m
            .target
            .as_ref()
            .map(|t| t.provider.clone())
            .or_else(|| m.split.first().map(|t| t.provider.clone()));
        router.models.push(ModelRoute {
            name: m.name.clone(),
            aliases: m.aliases.clone(),
            pattern: m.pattern.clone(),
            route: id.clone(),
            owned_by,
            split: m
                .split
                .iter()
                .enumerate()
                .map(|(j, t)| SplitRoute {
                    route: format!("{id}.{j}"),
                    weight: t.weight,
                    key: Some(format!(
                        "{}/{}",
                        t.provider,
                        t.model.as_deref().unwrap_or("")
                    )),
                })
                .collect(),
            sticky: m.sticky.clone(),
        });
    }
    for (pi, p) in providers.iter_mut().enumerate() {
        if !p.entry.provider_prefix {
            continue;
        }
        let id = format!("provider:{}", p.entry.name);
        p.filter.routes.insert(
            id.clone(),
            RouteModel {
                model: None,
                strip_prefix: Some(format!("{}/", p.entry.name)),
            },
        );
        routes.push(RouteSpec {
            id: id.clone(),
            describes: format!("{}/*", p.entry.name),
            members: vec![pi],
            timeout: p.entry.timeout.unwrap_or(file.timeouts.request),
            fallback_on: vec![],
            per_try_timeout: None,
        });
        router.provider_prefixes.push(ProviderPrefixRoute {
            provider: p.entry.name.clone(),
            route: id,
        });
    }
    if file.models.is_empty() && providers.iter().all(|p| !p.entry.provider_prefix) {
        warnings.push("no models and no provider prefixes: every chat request will get 404".into());
    }

    // The filters' own checks are a safety net: an error here is a bug in the
    // checks above, but it must not go unnoticed.
    if errs.is_empty() {
        if let Err(e) = router.compile() {
            for err in e.0 {
                errs.push(format!("(router filter) {}", err.field), err.message);
            }
        }
        for p in &providers {
            if let Err(e) = p.filter.compile(&|_| None) {
                for err in e.0 {
                    errs.push(
                        format!("(provider filter {}) {}", p.entry.name, err.field),
                        err.message,
                    );
                }
            }
        }
    }
    let (Some(listen), Some(admin)) = (listen, admin) else {
        return Err(errs);
    };
    errs.into_result(Gateway {
        file,
        listen,
        admin,
        providers,
        routes,
        router,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "SET").then(|| "value".to_string())
    }

    const GOOD: &str = r#"
listen: 127.0.0.1:8080
admin: 127.0.0.1:9901
providers:
  - name: mock
    kind: openai-compatible
    baseUrl: http://127.0.0.1:9101/v1
    keys:
      - value: sk-mock
      - env: SET
        id: main
  - name: openai
    kind: openai-compatible
    baseUrl: https://api.openai.com/v1
    keys: [{env: UNSET_KEY}]
    providerPrefix: false
models:
  - name: gpt-4o-mini
    aliases: [mini]
    target: {provider: mock}
  - name: fast
    target: {provider: openai, model: gpt-4o}
  - pattern: "gpt-*"
    target: {provider: openai}
"#;

    #[test]
    fn compiles_routes_and_filter_configs() {
        let g = load(GOOD, &env).unwrap();
        assert_eq!(
            g.listen,
            SocketAddr {
                host: "127.0.0.1".into(),
                port: 8080
            }
        );
        let ids: Vec<_> = g.routes.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["m0", "m1", "m2", "provider:mock"]);
        let mock = &g.providers[0];
        assert_eq!(mock.cluster, "aigw-provider-mock");
        assert_eq!(mock.env_keys, ["SET"]);
        assert_eq!(mock.filter.keys[0].id, "mock-0");
        assert_eq!(mock.filter.keys[1].id, "main");
        assert_eq!(
            mock.filter.routes["provider:mock"].strip_prefix.as_deref(),
            Some("mock/")
        );
        let openai = &g.providers[1];
        assert_eq!(openai.filter.routes["m1"].model.as_deref(), Some("gpt-4o"));
        assert!(g.warnings.iter().any(|w| w.contains("UNSET_KEY")));
        assert!(g.warnings.iter().any(|w| w.contains("inline")));
        assert_eq!(g.router.provider_prefixes.len(), 1);
    }

    #[test]
    fn unknown_fields_are_reported_with_their_name() {
        let text = GOOD.replace(
            "baseUrl: https://api.openai.com/v1",
            "baseURL: https://api.openai.com/v1",
        );
        let err = load(&text, &env).unwrap_err().to_string();
        assert!(err.contains("baseURL"), "{err}");
    }

    #[test]
    fn every_error_is_reported_with_field_and_value() {
        let text = r#"
listen: localhost:8080
admin: 127.0.0.1:99999
limits: {maxRequestBodyBytes: 0}
providers:
  - name: bad/name
    kind: openai-compatible
    baseUrl: ftp://x
  - name: ok
    kind: openai-compatible
    baseUrl: http://h/v1
    keys: [{value: a, env: B}, {env: "1BAD"}, {}, {id: dup, value: x}, {id: dup, value: y}]
  - name: ok
    kind: openai-compatible
    baseUrl: http://h2/v1
models:
  - name: a
    target: {provider: ghost}
  - name: a
    pattern: "b*"
    target: {provider: ok}
  - pattern: exact
    target: {provider: ok}
  - name: a
    target: {provider: ok}
"#;
        let err = load(text, &env).unwrap_err().to_string();
        for needle in [
            "listen: \"localhost:8080\": the host must be an IP address",
            "admin: \"127.0.0.1:99999\" has an invalid port",
            "limits.maxRequestBodyBytes: 0 is out of range",
            "providers[0].name: \"bad/name\"",
            "providers[0].baseUrl: \"ftp://x\"",
            "providers[1].keys[0]: set either",
            "providers[1].keys[1].env: \"1BAD\"",
            "providers[1].keys[2]: set `value` or `env`",
            "providers[1].keys[4].id: key id \"dup\" is used twice",
            "providers[2].name: provider \"ok\" is declared twice",
            "models[0].target.provider: unknown provider \"ghost\"",
            "models[1]: set either `name` or `pattern`",
            "models[2].pattern: \"exact\" has no wildcard",
            "models[3].name: model \"a\" is declared twice",
        ] {
            assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
        }
    }

    #[test]
    fn provider_kinds_with_their_settings() {
        let text = r#"
providers:
  - name: claude
    kind: anthropic
    keys: [{env: ANTHROPIC_API_KEY}]
    defaultMaxTokens: 2048
  - name: google
    kind: gemini
    keys: [{env: GEMINI_API_KEY}]
  - name: azure
    kind: azure-openai
    baseUrl: https://res.openai.azure.com
    apiVersion: 2025-01-01-preview
    keys: [{env: AZURE_OPENAI_API_KEY}]
models:
  - name: claude-sonnet-4-5
    target: {provider: claude}
  - name: gpt-4o
    target: {provider: azure, model: prod-gpt4o}
"#;
        let g = load(text, &env).unwrap();
        assert_eq!(g.providers[0].url.host, "api.anthropic.com");
        assert_eq!(g.providers[1].url.path, "/v1beta");
        assert_eq!(
            g.providers[2].filter.api_version.as_deref(),
            Some("2025-01-01-preview")
        );
        assert_eq!(g.providers[0].filter.default_max_tokens, Some(2048));
    }

    #[test]
    fn settings_of_another_kind_and_missing_urls_are_errors() {
        let text = r#"
providers:
  - name: a
    kind: openai-compatible
    baseUrl: http://h/v1
    apiVersion: "2024-10-21"
  - name: b
    kind: azure-openai
  - name: c
    kind: gemini
    anthropicVersion: "2023-06-01"
"#;
        let err = load(text, &env).unwrap_err().to_string();
        for needle in [
            "providers[0].apiVersion: applies to kind azure-openai only, not openai-compatible",
            "providers[1].baseUrl: is required for kind azure-openai",
            "providers[2].anthropicVersion: applies to kind anthropic only, not gemini",
        ] {
            assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
        }
    }

    #[test]
    fn key_pool_errors_name_the_gateway_files_fields() {
        let text = r#"
providers:
  - name: p
    kind: openai-compatible
    baseUrl: http://h/v1
    keys: [{value: a}, {value: b}]
    keyPool: {cooldown: 0s, unhealthyBackoff: 10s, maxBackoff: 1s}
"#;
        let err = load(text, &env).unwrap_err().to_string();
        assert!(
            err.contains("providers[0].keyPool.cooldown: must be more than 0"),
            "{err}"
        );
        assert!(
            err.contains("providers[0].keyPool.maxBackoff: 1000 is below unhealthyBackoff"),
            "{err}"
        );
        assert!(!err.contains("Ms:"), "{err}");
    }

    #[test]
    fn yaml_syntax_errors_have_a_location() {
        let err = load("providers: [\n  - name: x", &env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("line") || err.contains(':'), "{err}");
    }

    const CHAINS: &str = r#"
providers:
  - {name: a, kind: openai-compatible, baseUrl: "http://127.0.0.1:1/v1", timeout: 30s}
  - {name: b, kind: anthropic, baseUrl: "http://127.0.0.1:2"}
  - {name: c, kind: openai-compatible, baseUrl: "http://127.0.0.1:3/v1"}
models:
  - name: chat
    target: {provider: a}
    fallback: [{provider: b, model: claude-x}, {provider: c}]
    fallbackOn: [rate-limited, timeout]
    perTryTimeout: 5s
  - name: canary
    split: [{provider: a, weight: 9}, {provider: b, model: claude-y, weight: 1}]
    sticky: {consumer: true}
    fallback: [{provider: a}, {provider: c}]
"#;

    #[test]
    fn fallback_chains_and_splits_compile_to_routes_and_renames() {
        let g = load(CHAINS, &env).unwrap();
        let route = |id: &str| g.routes.iter().find(|r| r.id == id).unwrap();
        let names = |r: &RouteSpec| -> Vec<String> {
            r.members
                .iter()
                .map(|&i| g.providers[i].entry.name.clone())
                .collect()
        };
        let chat = route("m0");
        assert_eq!(names(chat), ["a", "b", "c"]);
        assert_eq!(
            chat.fallback_on,
            [FallbackOn::RateLimited, FallbackOn::Timeout]
        );
        assert_eq!(chat.per_try_timeout.map(|d| d.millis), Some(5_000));
        // The longest timeout of its providers: a chain must not be cut short.
        assert_eq!(chat.timeout.millis, 600_000);
        // Each split target's chain skips its own provider among the fallbacks.
        assert_eq!(names(route("m1.0")), ["a", "c"]);
        assert_eq!(names(route("m1.1")), ["b", "a", "c"]);
        assert_eq!(route("m1.1").fallback_on, FallbackOn::ALL);
        // Renames per route and provider.
        let b = g.providers.iter().find(|p| p.entry.name == "b").unwrap();
        assert_eq!(b.filter.routes["m0"].model.as_deref(), Some("claude-x"));
        assert_eq!(b.filter.routes["m1.1"].model.as_deref(), Some("claude-y"));
        let canary = &g.router.models[1];
        assert_eq!(canary.route, "m1");
        assert_eq!(
            canary
                .split
                .iter()
                .map(|s| (s.route.as_str(), s.weight))
                .collect::<Vec<_>>(),
            [("m1.0", 9), ("m1.1", 1)]
        );
        assert!(g.router.compile().is_ok());
    }

    #[test]
    fn chain_and_split_errors_name_their_fields() {
        let text = r#"
providers:
  - {name: a, kind: openai-compatible, baseUrl: "http://127.0.0.1:1/v1"}
models:
  - {name: m0, target: {provider: a}, fallback: [{provider: a, model: other}]}
  - {name: m1, target: {provider: a}, fallback: [{provider: ghost}]}
  - {name: m2, target: {provider: a}, split: [{provider: a, weight: 1}]}
  - {name: m3}
  - {name: m4, split: [{provider: a, weight: 0}], sticky: {header: x-s, consumer: true}}
  - {name: m5, target: {provider: a}, fallbackOn: [timeout], perTryTimeout: 1s, sticky: {consumer: true}}
  - {name: m6, target: {provider: a}, fallback: [{provider: ghost2}], fallbackOn: [], perTryTimeout: 0s}
"#;
        let text = load(text, &env).unwrap_err().to_string();
        for needle in [
            "models[0].fallback[0].provider: provider \"a\" is already in this chain",
            "models[1].fallback[0].provider: unknown provider \"ghost\"",
            "models[2]: set either `target` or `split`, not both",
            "models[3]: set `target` (or `split`)",
            "models[4].split[0].weight: 0 is out of range",
            "models[5].fallbackOn: applies to a `fallback` only",
            "models[5].perTryTimeout: applies to a `fallback` only",
            "models[5].sticky: applies to a `split` only",
            "models[6].fallbackOn: an empty list never falls back",
            "models[6].perTryTimeout: must be more than 0s",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in {text}");
        }
        let unknown = load(
            "providers: [{name: a, kind: anthropic}]\nmodels: [{name: m, target: {provider: a}, fallbackOn: [sometimes], fallback: [{provider: a}]}]",
            &env,
        )
        .unwrap_err()
        .to_string();
        assert!(unknown.contains("sometimes"), "{unknown}");
    }

    #[test]
    fn plain_consumer_keys_reach_the_filter_only_as_hashes() {
        let text = format!(
            "{GOOD}\nconsumers:\n  - name: app\n    keys:\n      - value: sk-aigw-plain-key-0001\n"
        );
        let g = load(&text, &env).unwrap();
        assert!(g.warnings.iter().any(|w| w.contains("plain text")));
        let filter_config = serde_json::to_string(&g.router).unwrap();
        assert!(!filter_config.contains("sk-aigw-plain-key-0001"));
        assert!(filter_config
            .contains(&aigw_core::apikey::KeyHash::of("sk-aigw-plain-key-0001").to_hex()));
        // The filter accepts what it is given.
        assert!(g.router.compile().is_ok());
    }

    #[test]
    fn env_interpolation_applies_before_parsing() {
        let text = GOOD.replace(
            "http://127.0.0.1:9101/v1",
            "http://${MOCK_HOST:-10.1.2.3}:9101/v1",
        );
        let g = load(&text, &env).unwrap();
        assert_eq!(g.providers[0].url.host, "10.1.2.3");
    }
}
