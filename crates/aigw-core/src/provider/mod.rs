//! Provider identity: how each kind of provider is addressed and authenticated.
//! Format conversion lives elsewhere; this is only who the provider is.

use serde::{Deserialize, Serialize};

use crate::api::Operation;

pub mod openai_compatible;

/// The kinds of provider the gateway speaks to. A closed set: each kind's
/// behaviour is spelled out in its own module and matched exhaustively.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderKind {
    /// OpenAI and every server speaking its API: DeepSeek, Qwen (DashScope
    /// compatible mode), Moonshot, Groq, Mistral, OpenRouter, vLLM, Ollama...
    OpenaiCompatible,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::OpenaiCompatible => "openai-compatible",
        }
    }

    /// The header that carries the provider key, and its value.
    pub fn auth_header(self, key: &str) -> (&'static str, String) {
        match self {
            ProviderKind::OpenaiCompatible => openai_compatible::auth_header(key),
        }
    }

    /// The upstream path for `op`, below the provider's base path.
    pub fn path(self, base_path: &str, op: Operation) -> Option<String> {
        match self {
            ProviderKind::OpenaiCompatible => openai_compatible::path(base_path, op),
        }
    }

    /// Whether the provider understands `stream_options.include_usage`.
    pub fn supports_stream_usage(self) -> bool {
        match self {
            ProviderKind::OpenaiCompatible => true,
        }
    }

    /// The client operation a provider path came from (`/v1/chat/completions`).
    pub fn operation_of(client_path: &str) -> Option<Operation> {
        crate::api::classify("POST", client_path).ok().map(|e| e.op)
    }
}
