//! Configuration of the provider filter (upstream, one per provider cluster):
//! where the provider is, how to authenticate, and how each route's model is
//! named at this provider.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::url::BaseUrl;
use super::{is_valid_name, is_valid_route_id, ConfigErrors};
use crate::keys::{KeyRing, ProviderKey, Secret};
use crate::provider::{anthropic, azure_openai, Provider, ProviderKind};
use crate::rewrite::ModelRewrite;

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
    #[serde(default = "yes")]
    pub stream_usage: bool,
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
    /// Per route id: the model name at this provider.
    #[serde(default)]
    pub routes: BTreeMap<String, RouteModel>,
}

fn yes() -> bool {
    true
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
                    errs.push(at, "set either `value` or `env`, not both");
                    (None, None)
                }
                (None, None) => {
                    errs.push(at, "set `value` or `env`");
                    (None, None)
                }
            };
            keys.push(ProviderKey {
                id: k.id.clone(),
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
        let stream_usage = self.stream_usage && provider.supports_stream_usage();
        errs.into_result(ProviderPlan {
            name: self.name.clone(),
            provider,
            base_url,
            authority,
            keys: KeyRing::new(keys),
            stream_usage,
            routes,
        })
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
        let cfg: ProviderConfig = parse_json(br#"{"name":"z","kind":"azure-openai"}"#).unwrap();
        assert!(cfg
            .compile(&env)
            .unwrap_err()
            .to_string()
            .contains("baseUrl: is required for kind azure-openai"));
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
            id: "k".into(),
            value: Some("sk-secret".into()),
            env: None,
        };
        assert!(!format!("{k:?}").contains("sk-secret"));
    }
}
