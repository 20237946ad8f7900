//! The admin API under `/__mock/`: recorded requests, queued rules, health.

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;
use serde_json::Value;

use crate::program::Rule;
use crate::record::RecordedRequest;
use crate::service::{full, json_error, read_body, ResponseBody, State};

const PREFIX: &str = "/__mock/";

/// Admin paths are never matched by the provider routes.
pub fn is_admin_path(path: &str) -> bool {
    path.starts_with(PREFIX) || path == "/__mock"
}

pub async fn handle(state: &State, req: Request<Incoming>) -> Response<ResponseBody> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    match (&method, path.strip_prefix(PREFIX).unwrap_or("")) {
        (&Method::GET, "health") => full(
            StatusCode::OK,
            "text/plain; charset=utf-8",
            Bytes::from_static(b"ok"),
        ),
        (&Method::GET, "requests") => {
            let snapshot = state.requests.snapshot();
            let requests: Vec<&RecordedRequest> = snapshot.iter().map(AsRef::as_ref).collect();
            json(StatusCode::OK, &requests)
        }
        (&Method::DELETE, "requests") => {
            state.requests.clear();
            json(StatusCode::OK, &serde_json::json!({"cleared": true}))
        }
        (&Method::GET, "rules") => json(StatusCode::OK, &state.rules.list()),
        (&Method::POST, "rules") => add_rules(state, req).await,
        (&Method::DELETE, "rules") => {
            state.rules.clear();
            json(StatusCode::OK, &serde_json::json!({"cleared": true}))
        }
        (_, "health" | "requests" | "rules") => json_error(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("mock-provider: {method} is not allowed on {path}"),
        ),
        _ => json_error(
            StatusCode::NOT_FOUND,
            &format!("mock-provider: no admin endpoint {path}"),
        ),
    }
}

/// `POST /__mock/rules`: a JSON array of rules (a single rule object is accepted too).
async fn add_rules(state: &State, req: Request<Incoming>) -> Response<ResponseBody> {
    let body = match read_body(req.into_body()).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let rules = match parse_rules(&body) {
        Ok(rules) => rules,
        Err(message) => return json_error(StatusCode::BAD_REQUEST, &message),
    };
    match state.rules.add(rules) {
        Ok(added) => json(StatusCode::OK, &serde_json::json!({"added": added})),
        Err(message) => json_error(
            StatusCode::BAD_REQUEST,
            &format!("mock-provider: {message}"),
        ),
    }
}

fn parse_rules(body: &[u8]) -> Result<Vec<Rule>, String> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| format!("mock-provider: rules body is not JSON: {e}"))?;
    let result = if value.is_object() {
        serde_json::from_value(value).map(|rule| vec![rule])
    } else {
        serde_json::from_value(value)
    };
    result.map_err(|e| format!("mock-provider: invalid rules: {e}"))
}

fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response<ResponseBody> {
    match serde_json::to_vec(value) {
        Ok(body) => full(status, "application/json", Bytes::from(body)),
        Err(e) => json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("mock-provider: could not serialize the answer: {e}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_paths_are_recognized() {
        assert!(is_admin_path("/__mock/requests"));
        assert!(is_admin_path("/__mock"));
        assert!(!is_admin_path("/v1/__mock/requests"));
        assert!(!is_admin_path("/__mockery"));
    }

    #[test]
    fn rules_body_is_an_array_or_one_rule() {
        assert_eq!(
            parse_rules(br#"[{"status":429},{"status":500}]"#)
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            parse_rules(br#"{"status":429}"#).unwrap()[0].status,
            Some(429)
        );
        assert!(parse_rules(br#"[{"status":"x"}]"#).is_err());
        assert!(parse_rules(b"nope").is_err());
    }
}
