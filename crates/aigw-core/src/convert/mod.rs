//! Format converters between the client APIs the gateway serves and the
//! provider APIs it calls. One module per direction, named
//! `<client>_<provider>`; all pure: bytes in, bytes out.
//!
//! | module             | client speaks       | provider speaks          |
//! |--------------------|---------------------|--------------------------|
//! | `openai_anthropic` | OpenAI chat         | Anthropic Messages       |
//! | `openai_gemini`    | OpenAI chat         | Gemini generateContent   |
//! | `anthropic_openai` | Anthropic Messages  | OpenAI chat (compatible) |
//!
//! Every converter offers the same four things:
//! - `request(body, &RequestContext) -> Result<Vec<u8>, ApiError>`: the
//!   client's request body as the provider's request body. Input the provider
//!   cannot honour is rejected with a 400 naming the field, never silently
//!   misread; unknown fields are ignored (never a crash).
//! - `response(body, &ResponseContext) -> Result<Vec<u8>, ApiError>`: a
//!   complete (non-streamed) provider response as the client's response.
//! - `Stream` (implements [`StreamConverter`]): the provider's SSE stream as
//!   the client's SSE stream, fed in arbitrary pieces.
//! - `error(status, body) -> ProviderError`: the provider's error body, read.

use crate::error::ApiError;
use crate::usage::Usage;

pub mod anthropic_openai;
pub mod openai_anthropic;
pub mod openai_gemini;

/// `max_tokens` sent to providers that require it (Anthropic) when the client
/// gave none. Documented in the README.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// What a request converter needs besides the body.
#[derive(Debug, Clone)]
pub struct RequestContext<'a> {
    /// Model name to send to the provider (after the target's rename).
    pub model: &'a str,
    /// `max_tokens` to send when the client gave none and the provider requires it.
    pub default_max_tokens: u32,
}

/// What a response converter needs besides the body.
#[derive(Debug, Clone)]
pub struct ResponseContext<'a> {
    /// Model name reported to the client when the provider does not name one.
    pub model: &'a str,
    /// Unix time in seconds, for OpenAI's `created`.
    pub created: u64,
    /// Id for the response when the provider gives none (e.g. Gemini); a
    /// converter may prefix it (`chatcmpl-`, `msg_`).
    pub id: &'a str,
}

/// Converts a provider's SSE stream into the client's, as it arrives: output
/// for a provider event is produced as soon as that event is complete, and
/// nothing is held back but an incomplete event.
pub trait StreamConverter {
    /// Converts the bytes just received; returns the bytes for the client
    /// (possibly empty).
    fn push(&mut self, bytes: &[u8]) -> Vec<u8>;
    /// The provider's stream ended. Returns the client's closing bytes. When
    /// the provider stream ended cleanly, this closes the client stream
    /// properly (e.g. `data: [DONE]`, `message_stop`); when it ended before
    /// its natural end (the provider closed the body early), it must NOT
    /// pretend a clean end: it ends with an explicit error event in the
    /// client's shape instead. (A connection reset mid-stream never reaches
    /// `finish`: Envoy resets the client's stream, which the client sees as
    /// an incomplete response.)
    fn finish(&mut self) -> Vec<u8>;
    /// Usage reported by the provider so far.
    fn usage(&self) -> Option<&Usage>;
}

/// A provider's error, read from its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderError {
    pub status: u16,
    /// The provider's error type or status word, if it gave one.
    pub kind: Option<String>,
    pub message: Option<String>,
    pub code: Option<String>,
    pub param: Option<String>,
}

/// The Anthropic error type for an HTTP status.
pub fn anthropic_error_type(status: u16) -> &'static str {
    match status {
        400 | 409 | 415 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    }
}

/// Anthropic's error envelope: `{"type":"error","error":{"type","message"}}`.
pub fn anthropic_error_body(kind: &str, message: &str) -> Vec<u8> {
    serde_json::to_vec(
        &serde_json::json!({"type": "error", "error": {"type": kind, "message": message}}),
    )
    .unwrap_or_else(|_| {
        br#"{"type":"error","error":{"type":"api_error","message":"internal gateway error"}}"#
            .to_vec()
    })
}

/// The OpenAI error type for an HTTP status.
pub fn openai_error_type(status: u16) -> &'static str {
    match status {
        400 | 404 | 409 | 413 | 415 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        429 => "rate_limit_error",
        500..=599 => "server_error",
        _ => "api_error",
    }
}

/// Helper for converters: a 400 in the client's terms for a field the
/// provider cannot honour.
pub fn unsupported(param: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::bad_request("unsupported_parameter", message).with_param(param)
}
