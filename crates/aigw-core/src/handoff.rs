//! What the router filter hands to the provider filter of every attempt, as
//! one filter-state value (`wasm.aigw_handoff`), and for the first attempt
//! also as the internal header `x-aigw-handoff`.
//!
//! Filter state because Envoy re-sends the same header map on a retry or
//! fallback, with an earlier attempt's rewrites in it (the first attempt's
//! provider filter removes the header, as every internal header): the
//! hand-off keeps what the client sent and what the router decided. The
//! header because the provider filter reads the request headers anyway: the
//! first attempt (nearly every request) needs no read of filter state, which
//! costs Envoy more than a header.

use serde::{Deserialize, Serialize};

/// The router filter's decisions and the client's request as it came.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handoff {
    /// The route id (as in `x-aigw-route`).
    pub route: String,
    /// The stream mode (as in `x-aigw-stream`), for streamed requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// An id unique to this request (the client's `x-request-id` may be reused).
    pub request_id: String,
    /// The client's path, before any attempt rewrote it.
    pub client_path: String,
    /// The client's body length: an attempt that sends the body unchanged
    /// restores `content-length`.
    pub body_length: u64,
    /// The model the client asked for.
    pub model: String,
    /// The client's `anthropic-version` and `anthropic-beta`, for Anthropic
    /// providers (an attempt to another kind removes them from the headers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anthropic_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anthropic_beta: Option<String>,
}

impl Handoff {
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn parse(bytes: &[u8]) -> Option<Handoff> {
        serde_json::from_slice(bytes).ok()
    }

    /// The client's value of an Anthropic header.
    pub fn anthropic_header(&self, name: &str) -> Option<&str> {
        match name {
            "anthropic-version" => self.anthropic_version.as_deref(),
            "anthropic-beta" => self.anthropic_beta.as_deref(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let h = Handoff {
            route: "m0".into(),
            stream: Some("plain".into()),
            request_id: "abc-1".into(),
            client_path: "/v1/messages".into(),
            body_length: 42,
            model: "claude".into(),
            anthropic_version: Some("2023-06-01".into()),
            anthropic_beta: None,
        };
        assert_eq!(Handoff::parse(&h.to_bytes()), Some(h.clone()));
        assert_eq!(h.anthropic_header("anthropic-version"), Some("2023-06-01"));
        assert_eq!(h.anthropic_header("anthropic-beta"), None);
        assert_eq!(Handoff::parse(b"{"), None);
    }
}
