//! The client-facing endpoints the gateway serves, recognised from method and path.

use crate::error::{ApiError, ClientApi};

/// What a client request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `GET /v1/models`: answered by the gateway from its config.
    ListModels,
    /// `GET /v1/models/{id}`: answered by the gateway from its config.
    RetrieveModel,
    /// `POST /v1/chat/completions`.
    ChatCompletions,
    /// `POST /v1/completions` (legacy text completions).
    Completions,
    /// `POST /v1/embeddings`.
    Embeddings,
    /// `POST /v1/messages` (Anthropic Messages).
    Messages,
    /// `POST /v1/messages/count_tokens` (Anthropic).
    CountTokens,
}

impl Operation {
    /// True for operations forwarded to a provider (they carry a JSON body with `model`).
    pub fn is_proxied(self) -> bool {
        !matches!(self, Operation::ListModels | Operation::RetrieveModel)
    }

    /// The API shape the client speaks for this operation.
    pub fn client_api(self) -> ClientApi {
        match self {
            Operation::Messages | Operation::CountTokens => ClientApi::Anthropic,
            _ => ClientApi::OpenAi,
        }
    }

    /// The path below the provider's base URL, e.g. `/chat/completions`.
    pub fn provider_suffix(self) -> Option<&'static str> {
        match self {
            Operation::ChatCompletions => Some("/chat/completions"),
            Operation::Completions => Some("/completions"),
            Operation::Embeddings => Some("/embeddings"),
            Operation::ListModels
            | Operation::RetrieveModel
            | Operation::Messages
            | Operation::CountTokens => None,
        }
    }

    /// Whether `stream: true` is meaningful for this operation.
    pub fn can_stream(self) -> bool {
        matches!(
            self,
            Operation::ChatCompletions | Operation::Completions | Operation::Messages
        )
    }
}

/// A recognised request: the operation and, for `/v1/models/{id}`, the id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint<'a> {
    pub op: Operation,
    pub model_id: Option<&'a str>,
}

/// Maps method and path (query string allowed) to an endpoint, or the client error.
pub fn classify<'a>(method: &str, path: &'a str) -> Result<Endpoint<'a>, ApiError> {
    let path_only = path.split_once('?').map_or(path, |(p, _)| p);
    let op = match path_only {
        "/v1/models" => Operation::ListModels,
        "/v1/chat/completions" => Operation::ChatCompletions,
        "/v1/completions" => Operation::Completions,
        "/v1/embeddings" => Operation::Embeddings,
        "/v1/messages" => Operation::Messages,
        "/v1/messages/count_tokens" => Operation::CountTokens,
        p if p.starts_with("/v1/models/") && p.len() > "/v1/models/".len() => {
            let id = &p["/v1/models/".len()..];
            return match method {
                "GET" => Ok(Endpoint { op: Operation::RetrieveModel, model_id: Some(id) }),
                _ => Err(ApiError::method_not_allowed(method, path_only)),
            };
        }
        _ => {
            return Err(ApiError::not_found(
                "unknown_url",
                format!("Unknown request URL: {method} {path_only}. The gateway serves /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/models and /v1/messages."),
            ))
        }
    };
    let expected = if op.is_proxied() { "POST" } else { "GET" };
    if method != expected {
        return Err(ApiError::method_not_allowed(method, path_only));
    }
    Ok(Endpoint { op, model_id: None })
}

/// True when a `Content-Type` value names JSON (`application/json`, any parameters).
pub fn is_json_content_type(value: &str) -> bool {
    let media = value.split(';').next().unwrap_or("").trim();
    media.eq_ignore_ascii_case("application/json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_the_served_endpoints() {
        assert_eq!(
            classify("POST", "/v1/chat/completions").unwrap().op,
            Operation::ChatCompletions
        );
        assert_eq!(
            classify("POST", "/v1/chat/completions?x=1").unwrap().op,
            Operation::ChatCompletions
        );
        assert_eq!(
            classify("POST", "/v1/embeddings").unwrap().op,
            Operation::Embeddings
        );
        assert_eq!(
            classify("POST", "/v1/completions").unwrap().op,
            Operation::Completions
        );
        assert_eq!(
            classify("GET", "/v1/models").unwrap().op,
            Operation::ListModels
        );
        let e = classify("GET", "/v1/models/deepseek/deepseek-chat").unwrap();
        assert_eq!(e.op, Operation::RetrieveModel);
        assert_eq!(e.model_id, Some("deepseek/deepseek-chat"));
    }

    #[test]
    fn unknown_paths_are_404_and_wrong_methods_405() {
        let err = classify("POST", "/v1/files").unwrap_err();
        assert_eq!(err.status, 404);
        assert!(err.message.contains("/v1/files"));
        assert_eq!(
            classify("GET", "/v1/chat/completions").unwrap_err().status,
            405
        );
        assert_eq!(classify("POST", "/v1/models").unwrap_err().status, 405);
        assert_eq!(classify("GET", "/v1/models/").unwrap_err().status, 404);
    }

    #[test]
    fn json_content_types() {
        assert!(is_json_content_type("application/json"));
        assert!(is_json_content_type("Application/JSON; charset=utf-8"));
        assert!(!is_json_content_type("application/x-www-form-urlencoded"));
        assert!(!is_json_content_type("text/plain"));
        assert!(!is_json_content_type(""));
    }
}
