//! Provider identity: how each kind of provider is addressed and
//! authenticated, and which wire protocol it speaks. Format conversion lives
//! in `convert`; this is only who the provider is.

use serde::{Deserialize, Serialize};

use crate::api::Operation;

pub mod anthropic;
pub mod azure_openai;
pub mod gemini;
pub mod openai_compatible;

/// The kinds of provider, as named in configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderKind {
    /// OpenAI and every server speaking its API: DeepSeek, Qwen (DashScope
    /// compatible mode), Moonshot, Zhipu, Groq, Mistral, OpenRouter, vLLM, Ollama...
    OpenaiCompatible,
    /// Azure OpenAI: deployments in the path, `api-version`, `api-key`.
    AzureOpenai,
    /// Anthropic's Messages API.
    Anthropic,
    /// Google's Gemini API (`generateContent`).
    Gemini,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::OpenaiCompatible => "openai-compatible",
            ProviderKind::AzureOpenai => "azure-openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Gemini => "gemini",
        }
    }

    /// The base URL used when the configuration gives none.
    pub fn default_base_url(self) -> Option<&'static str> {
        match self {
            ProviderKind::OpenaiCompatible | ProviderKind::AzureOpenai => None,
            ProviderKind::Anthropic => Some(anthropic::DEFAULT_BASE_URL),
            ProviderKind::Gemini => Some(gemini::DEFAULT_BASE_URL),
        }
    }
}

/// The wire protocol of a provider: what its request and response bodies,
/// streams and errors look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    OpenAi,
    Anthropic,
    Gemini,
}

/// A provider with its kind-specific settings. A closed set, matched
/// exhaustively: each kind's behaviour is spelled out in its own module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provider {
    OpenaiCompatible,
    AzureOpenai {
        api_version: String,
    },
    Anthropic {
        version: String,
        default_max_tokens: u32,
    },
    Gemini,
}

impl Provider {
    pub fn kind(&self) -> ProviderKind {
        match self {
            Provider::OpenaiCompatible => ProviderKind::OpenaiCompatible,
            Provider::AzureOpenai { .. } => ProviderKind::AzureOpenai,
            Provider::Anthropic { .. } => ProviderKind::Anthropic,
            Provider::Gemini => ProviderKind::Gemini,
        }
    }

    pub fn protocol(&self) -> Protocol {
        match self {
            Provider::OpenaiCompatible | Provider::AzureOpenai { .. } => Protocol::OpenAi,
            Provider::Anthropic { .. } => Protocol::Anthropic,
            Provider::Gemini => Protocol::Gemini,
        }
    }

    /// The header that carries the provider key, and its value.
    pub fn auth_header(&self, key: &str) -> (&'static str, String) {
        match self {
            Provider::OpenaiCompatible => openai_compatible::auth_header(key),
            Provider::AzureOpenai { .. } => azure_openai::auth_header(key),
            Provider::Anthropic { .. } => anthropic::auth_header(key),
            Provider::Gemini => gemini::auth_header(key),
        }
    }

    /// Headers every request to this provider carries, unless the client set
    /// them (e.g. `anthropic-version`).
    pub fn default_headers(&self) -> Vec<(&'static str, String)> {
        match self {
            Provider::Anthropic { version, .. } => vec![("anthropic-version", version.clone())],
            Provider::OpenaiCompatible | Provider::AzureOpenai { .. } | Provider::Gemini => vec![],
        }
    }

    /// The provider's operation for a client operation, or `None` when the
    /// provider does not offer it in any shape the gateway can translate.
    pub fn operation_for(&self, client: Operation) -> Option<Operation> {
        use Operation::*;
        match (self.protocol(), client) {
            (_, ListModels | RetrieveModel) => None,
            (Protocol::OpenAi, ChatCompletions | Messages) => Some(ChatCompletions),
            (Protocol::OpenAi, Completions) => Some(Completions),
            (Protocol::OpenAi, Embeddings) => Some(Embeddings),
            (Protocol::OpenAi, CountTokens) => None,
            (Protocol::Anthropic, ChatCompletions | Messages) => Some(Messages),
            (Protocol::Anthropic, CountTokens) => Some(CountTokens),
            (Protocol::Anthropic, Completions | Embeddings) => None,
            (Protocol::Gemini, ChatCompletions | Messages) => Some(ChatCompletions),
            (Protocol::Gemini, Completions | Embeddings | CountTokens) => None,
        }
    }

    /// True when the path names the model, so the body must be read first.
    pub fn model_in_path(&self) -> bool {
        matches!(self, Provider::AzureOpenai { .. } | Provider::Gemini)
    }

    /// The upstream path (with query) for the provider's operation `op`.
    pub fn path(
        &self,
        base_path: &str,
        op: Operation,
        model: &str,
        stream: bool,
    ) -> Option<String> {
        match self {
            Provider::OpenaiCompatible => openai_compatible::path(base_path, op),
            Provider::AzureOpenai { api_version } => {
                azure_openai::path(base_path, op, model, api_version)
            }
            Provider::Anthropic { .. } => anthropic::path(base_path, op),
            Provider::Gemini => gemini::path(base_path, op, model, stream),
        }
    }

    /// A cheap request that proves a key works: listing the provider's models.
    pub fn health_check_path(&self, base_path: &str) -> String {
        let base = base_path.trim_end_matches('/');
        match self {
            Provider::OpenaiCompatible | Provider::Gemini => format!("{base}/models"),
            Provider::AzureOpenai { api_version } => {
                format!(
                    "{base}/openai/models?api-version={}",
                    encode_segment(api_version)
                )
            }
            Provider::Anthropic { .. } => format!("{base}/v1/models"),
        }
    }

    /// `max_tokens` to send when the client gave none and the provider needs it.
    pub fn default_max_tokens(&self) -> u32 {
        match self {
            Provider::Anthropic {
                default_max_tokens, ..
            } => *default_max_tokens,
            Provider::OpenaiCompatible | Provider::AzureOpenai { .. } | Provider::Gemini => {
                crate::convert::DEFAULT_MAX_TOKENS
            }
        }
    }

    /// Whether the provider understands `stream_options.include_usage`.
    pub fn supports_stream_usage(&self) -> bool {
        self.protocol() == Protocol::OpenAi
    }
}

/// Percent-encodes a path segment (RFC 3986 unreserved characters stay).
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_each_protocol_offers() {
        let anthropic = Provider::Anthropic {
            version: "2023-06-01".into(),
            default_max_tokens: 4096,
        };
        assert_eq!(
            anthropic.operation_for(Operation::ChatCompletions),
            Some(Operation::Messages)
        );
        assert_eq!(
            anthropic.operation_for(Operation::CountTokens),
            Some(Operation::CountTokens)
        );
        assert_eq!(anthropic.operation_for(Operation::Embeddings), None);
        assert_eq!(
            Provider::OpenaiCompatible.operation_for(Operation::Messages),
            Some(Operation::ChatCompletions)
        );
        assert_eq!(
            Provider::OpenaiCompatible.operation_for(Operation::CountTokens),
            None
        );
        assert_eq!(
            Provider::Gemini.operation_for(Operation::Messages),
            Some(Operation::ChatCompletions)
        );
        assert_eq!(Provider::Gemini.operation_for(Operation::Embeddings), None);
    }

    #[test]
    fn auth_headers_per_kind() {
        assert_eq!(
            Provider::OpenaiCompatible.auth_header("k").0,
            "authorization"
        );
        assert_eq!(
            Provider::AzureOpenai {
                api_version: "v".into()
            }
            .auth_header("k"),
            ("api-key", "k".to_string())
        );
        assert_eq!(
            Provider::Anthropic {
                version: "v".into(),
                default_max_tokens: 1
            }
            .auth_header("k"),
            ("x-api-key", "k".to_string())
        );
        assert_eq!(
            Provider::Gemini.auth_header("k"),
            ("x-goog-api-key", "k".to_string())
        );
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(encode_segment("gemini-2.5-flash"), "gemini-2.5-flash");
        assert_eq!(encode_segment("a/b c"), "a%2Fb%20c");
    }
}
