//! Header names shared by the filters.
//!
//! Internal headers carry the downstream filter's decisions to Envoy's router
//! (route match) and to the upstream filter. They are stripped from every
//! client request before anything reads them, and from every request before it
//! leaves Envoy for a provider, so they can be neither spoofed nor leaked.

/// Every internal header starts with this prefix.
pub const INTERNAL_PREFIX: &str = "x-aigw-";

/// The route id chosen by the downstream filter; Envoy's routes match on it.
pub const ROUTE: &str = "x-aigw-route";

/// Set when the client asked for a stream: `plain`, or `usage` when it asked
/// for `stream_options.include_usage` itself.
pub const STREAM: &str = "x-aigw-stream";

/// The router filter's hand-off ([`crate::handoff::Handoff`], JSON) for the
/// first attempt's provider filter; later attempts read it from filter state.
pub const HANDOFF: &str = "x-aigw-handoff";

/// The client's Anthropic headers: kept for every attempt in the router
/// filter's hand-off (an attempt to another kind of provider removes them
/// from the shared header map), sent to Anthropic providers only.
pub const ANTHROPIC_HEADERS: [&str; 2] = ["anthropic-version", "anthropic-beta"];

/// Filter-state properties the router filter sets (Envoy keeps them as
/// `wasm.<name>`). Unlike request headers, which an upstream filter's edits
/// change for every later attempt (Envoy re-sends the same header map on a
/// retry), they keep the router's decisions intact across retries and
/// fallbacks; the access log reads some of them.
pub mod property {
    /// Everything the provider filter needs from the router filter, in one
    /// value ([`crate::handoff::Handoff`]): route, stream mode, request id,
    /// client path, body length, model, Anthropic headers.
    pub const HANDOFF: &str = "aigw_handoff";
    /// The client's request path, before any attempt rewrote it (access log).
    pub const CLIENT_PATH: &str = "aigw_client_path";
    /// The name of the consumer whose key the request presented (absent when
    /// the gateway has no consumers). For the access log and later filters;
    /// never sent to a provider.
    pub const CONSUMER: &str = "aigw_consumer";
    /// The model the client asked for (access log).
    pub const MODEL: &str = "aigw_model";
    /// Token counts of the response, for the access log (set when the
    /// response ends; `TOKENS_SOURCE` is `reported` or `estimated`).
    pub const INPUT_TOKENS: &str = "aigw_input_tokens";
    pub const OUTPUT_TOKENS: &str = "aigw_output_tokens";
    pub const TOTAL_TOKENS: &str = "aigw_total_tokens";
    pub const TOKENS_SOURCE: &str = "aigw_tokens_source";
    /// Milliseconds from the request to the first chunk with text of a
    /// streamed response, for the access log.
    pub const TTFT_MS: &str = "aigw_ttft_ms";
}

/// The API the client speaks (`openai` or `anthropic`), for Envoy's own
/// replies: copied into dynamic metadata (`aigw.client_api`) by Envoy's
/// header-to-metadata filter, where the local-reply mappers read it.
pub const CLIENT_API: &str = "x-aigw-api";

/// Response header naming the provider that served the request (documented,
/// kept on responses to the client).
pub const SERVED_BY: &str = "x-aigw-provider";

/// Response header naming the model the provider was asked for (after the
/// target's rename), with [`SERVED_BY`] the target that served the request.
pub const SERVED_MODEL: &str = "x-aigw-model";

/// Client credentials, and headers that would let a client choose how the
/// gateway's provider account is used (OpenAI's organization and project):
/// removed before a request leaves Envoy, so a client's key never reaches a
/// provider and the gateway's key is used only as configured.
pub const CLIENT_CREDENTIALS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "cookie",
    "openai-organization",
    "openai-project",
];

/// True for a header name (lowercase, as Envoy gives them) of the gateway's own.
pub fn is_internal(name: &str) -> bool {
    name.len() >= INTERNAL_PREFIX.len()
        && name[..INTERNAL_PREFIX.len()].eq_ignore_ascii_case(INTERNAL_PREFIX)
}

/// Value of [`STREAM`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamMode {
    /// `stream: true` without `stream_options.include_usage`.
    Plain,
    /// `stream: true` with `stream_options.include_usage: true`.
    WithUsage,
}

impl StreamMode {
    pub fn as_header(self) -> &'static str {
        match self {
            StreamMode::Plain => "plain",
            StreamMode::WithUsage => "usage",
        }
    }

    pub fn from_header(value: &str) -> Option<StreamMode> {
        match value {
            "plain" => Some(StreamMode::Plain),
            "usage" => Some(StreamMode::WithUsage),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_headers_are_recognised_case_insensitively() {
        assert!(is_internal("x-aigw-route"));
        assert!(is_internal("X-AIGW-anything"));
        assert!(!is_internal("x-aig"));
        assert!(!is_internal("authorization"));
    }

    #[test]
    fn stream_mode_round_trips() {
        for m in [StreamMode::Plain, StreamMode::WithUsage] {
            assert_eq!(StreamMode::from_header(m.as_header()), Some(m));
        }
        assert_eq!(StreamMode::from_header("yes"), None);
    }
}
