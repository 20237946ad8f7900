//! Errors the gateway answers itself, in the client's API shape.

use serde::Serialize;

/// Which API shape the client speaks; decides the error envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientApi {
    /// OpenAI: `{"error":{"message","type","param","code"}}`.
    #[default]
    OpenAi,
    /// Anthropic: `{"type":"error","error":{"type","message"}}`.
    Anthropic,
}

impl ClientApi {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientApi::OpenAi => "openai",
            ClientApi::Anthropic => "anthropic",
        }
    }
}

/// An error the gateway returns to the client without (or instead of) a provider response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    /// OpenAI's `error.type`, e.g. `invalid_request_error`.
    pub kind: &'static str,
    /// OpenAI's `error.code`, a stable machine-readable string.
    pub code: &'static str,
    pub message: String,
    /// The request field at fault, when there is one.
    pub param: Option<&'static str>,
}

impl ApiError {
    pub fn new(
        status: u16,
        kind: &'static str,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        ApiError {
            status,
            kind,
            code,
            message: message.into(),
            param: None,
        }
    }

    pub fn with_param(mut self, param: &'static str) -> Self {
        self.param = Some(param);
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(400, "invalid_request_error", code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(404, "invalid_request_error", code, message)
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "invalid_request_error",
            "request_too_large",
            format!("request body exceeds the gateway limit of {limit} bytes"),
        )
    }

    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        Self::new(
            405,
            "invalid_request_error",
            "method_not_allowed",
            format!("method {method} is not allowed on {path}"),
        )
    }

    /// The provider cannot be reached or used by the gateway.
    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(503, "server_error", code, message)
    }

    /// The provider answered in a way the gateway could not use.
    pub fn bad_gateway(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(502, "server_error", code, message)
    }

    /// The JSON body in the client's API shape.
    pub fn body(&self, api: ClientApi) -> Vec<u8> {
        match api {
            ClientApi::OpenAi => {
                openai_error_body(self.kind, &self.message, self.param, Some(self.code))
            }
            ClientApi::Anthropic => crate::convert::anthropic_error_body(
                crate::convert::anthropic_error_type(self.status),
                &self.message,
            ),
        }
    }
}

#[derive(Serialize)]
struct OpenAiEnvelope<'a> {
    error: OpenAiError<'a>,
}

#[derive(Serialize)]
struct OpenAiError<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: Option<&'a str>,
}

/// `{"error":{"message","type","param","code"}}`, exactly as OpenAI sends it.
pub fn openai_error_body(
    kind: &str,
    message: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Vec<u8> {
    let envelope = OpenAiEnvelope {
        error: OpenAiError {
            message,
            kind,
            param,
            code,
        },
    };
    // Serializing a struct of strings cannot fail; fall back to a fixed body anyway.
    serde_json::to_vec(&envelope).unwrap_or_else(|_| {
        br#"{"error":{"message":"internal gateway error","type":"server_error","param":null,"code":null}}"#.to_vec()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_envelope_has_all_four_fields() {
        let err = ApiError::bad_request("invalid_json", "body is not \"JSON\"").with_param("model");
        let v: serde_json::Value = serde_json::from_slice(&err.body(ClientApi::OpenAi)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"error": {"message": "body is not \"JSON\"", "type": "invalid_request_error", "param": "model", "code": "invalid_json"}})
        );
    }

    #[test]
    fn anthropic_envelope_by_status() {
        let err = ApiError::not_found("model_not_found", "no such model");
        let v: serde_json::Value = serde_json::from_slice(&err.body(ClientApi::Anthropic)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type": "error", "error": {"type": "not_found_error", "message": "no such model"}})
        );
        let v: serde_json::Value =
            serde_json::from_slice(&ApiError::too_large(9).body(ClientApi::Anthropic)).unwrap();
        assert_eq!(v["error"]["type"], "request_too_large");
    }

    #[test]
    fn too_large_names_the_limit() {
        let err = ApiError::too_large(1024);
        assert_eq!(err.status, 413);
        assert!(err.message.contains("1024"));
    }
}
