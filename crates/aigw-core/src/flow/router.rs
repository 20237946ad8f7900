//! Decisions of the router filter (downstream): answer locally, read the
//! body, or route the request to a model's route.

use crate::api::{classify, is_json_content_type, Operation};
use crate::config::router::{RouterPlan, StickyBy};
use crate::error::{ApiError, ClientApi};
use crate::flow::consumer::{check_model, reservation_tokens};
use crate::headers::StreamMode;
use crate::schema::openai::{
    model_body, summarize_request, summarize_request_with_estimate, ModelObject,
};

/// What to do with the request headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadersDecision {
    /// Answer with this JSON body and status.
    Reply { status: u16, body: Vec<u8> },
    /// Answer with this error, in this API's shape.
    Error(ApiError, ClientApi),
    /// Wait for the whole body, then route.
    ReadBody(Operation),
}

/// Decides on request headers.
pub fn on_request_headers(
    plan: &RouterPlan,
    consumer: Option<usize>,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    content_length: Option<&str>,
    end_of_stream: bool,
) -> HeadersDecision {
    let endpoint = match classify(method, path) {
        Ok(e) => e,
        Err(e) => return HeadersDecision::Error(e, api_of_path(path)),
    };
    let api = endpoint.op.client_api();
    match endpoint.op {
        Operation::ListModels => {
            return HeadersDecision::Reply {
                status: 200,
                body: plan.models_body_for(consumer).to_vec(),
            }
        }
        Operation::RetrieveModel => {
            let id = endpoint.model_id.unwrap_or_default();
            let allowed = consumer
                .and_then(|i| plan.consumers.get(i))
                .is_none_or(|c| c.allows(id));
            return match retrieve_model(plan, id).filter(|_| allowed) {
                Some(m) => HeadersDecision::Reply {
                    status: 200,
                    body: model_body(&m),
                },
                None => HeadersDecision::Error(model_not_found(id), api),
            };
        }
        Operation::ChatCompletions
        | Operation::Completions
        | Operation::Embeddings
        | Operation::Messages
        | Operation::CountTokens => {}
    }
    match content_type {
        Some(ct) if is_json_content_type(ct) => {}
        Some(ct) => {
            return HeadersDecision::Error(
                ApiError::bad_request(
                    "invalid_content_type",
                    format!("expected Content-Type: application/json, got {ct:?}"),
                ),
                api,
            )
        }
        None => {
            return HeadersDecision::Error(
                ApiError::bad_request(
                    "invalid_content_type",
                    "expected Content-Type: application/json",
                ),
                api,
            )
        }
    }
    if let Some(len) = content_length.and_then(|v| v.trim().parse::<usize>().ok()) {
        if len > plan.max_request_body_bytes {
            return HeadersDecision::Error(ApiError::too_large(plan.max_request_body_bytes), api);
        }
    }
    if end_of_stream {
        return HeadersDecision::Error(
            ApiError::bad_request("missing_body", "request body is required"),
            api,
        );
    }
    HeadersDecision::ReadBody(endpoint.op)
}

/// Checks the size of the body received so far.
pub fn check_body_size(plan: &RouterPlan, received: usize) -> Result<(), ApiError> {
    if received > plan.max_request_body_bytes {
        Err(ApiError::too_large(plan.max_request_body_bytes))
    } else {
        Ok(())
    }
}

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteDecision {
    pub op: Operation,
    pub model: String,
    pub route: String,
    pub stream: Option<StreamMode>,
    /// Tokens to reserve from the consumer's budget (0 without a consumer).
    pub reserve_tokens: u64,
    /// The prompt's estimated tokens.
    pub prompt_tokens: u64,
}

/// Decides on the complete request body.
pub fn route_body(
    plan: &RouterPlan,
    consumer: Option<usize>,
    op: Operation,
    body: &[u8],
    sticky_headers: &[(String, String)],
) -> Result<RouteDecision, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "missing_body",
            "request body is required",
        ));
    }
    let consumer = consumer.and_then(|i| plan.consumers.get(i));
    // The prompt's estimate walks its text: only for a consumer's token
    // budget. A response whose provider reports no usage is otherwise
    // estimated from the body's size (a quarter token per byte).
    let estimated = consumer.is_some_and(|c| c.limits.counts_tokens());
    let summary = if estimated {
        summarize_request_with_estimate(body)?
    } else {
        summarize_request(body)?
    };
    if let Some(c) = consumer {
        check_model(c, &summary.model)?;
    }
    let resolved = plan
        .table
        .resolve(&summary.model)
        .ok_or_else(|| model_not_found(&summary.model))?;
    let stream = match (op.can_stream(), op.client_api()) {
        (false, _) => None,
        (true, ClientApi::OpenAi) => summary.stream,
        // Anthropic streams always carry usage: nothing for the gateway to add or remove.
        (true, ClientApi::Anthropic) => summary.stream.map(|_| StreamMode::WithUsage),
    };
    let reserve_tokens = match consumer {
        Some(_) => reservation_tokens(plan, op, &summary),
        None => 0,
    };
    let route = match plan.splits.get(resolved.route) {
        None => resolved.route,
        Some(s) => {
            let sticky = match &s.sticky {
                None => None,
                Some(StickyBy::Consumer) => consumer.map(|c| c.name.as_str()),
                Some(StickyBy::Header(h)) => sticky_headers
                    .iter()
                    .find(|(name, _)| name == h)
                    .map(|(_, v)| v.as_str()),
            };
            s.split.pick(sticky).unwrap_or(resolved.route)
        }
    };
    Ok(RouteDecision {
        op,
        route: route.to_string(),
        model: summary.model,
        stream,
        reserve_tokens,
        prompt_tokens: if estimated {
            summary.prompt_tokens
        } else {
            u64::try_from(body.len()).unwrap_or(u64::MAX).div_ceil(4)
        },
    })
}

/// The API shape to answer in when the path is not one the gateway serves.
pub fn api_of_path(path: &str) -> ClientApi {
    if path.starts_with("/v1/messages") {
        ClientApi::Anthropic
    } else {
        ClientApi::OpenAi
    }
}

/// OpenAI's answer for a model that is not served.
pub fn model_not_found(model: &str) -> ApiError {
    ApiError::not_found(
        "model_not_found",
        format!("The model `{model}` does not exist or you do not have access to it."),
    )
    .with_param("model")
}

fn retrieve_model(plan: &RouterPlan, id: &str) -> Option<ModelObject> {
    if let Some(m) = plan.table.listed().iter().find(|m| m.id == id) {
        return Some(m.clone());
    }
    plan.table.resolve(id).map(|_| ModelObject::new(id, "aigw"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::router::{ModelRoute, RouterConfig};

    fn plan() -> RouterPlan {
        RouterConfig {
            max_request_body_bytes: 100,
            models: vec![
                ModelRoute {
                    name: Some("gpt-4o-mini".into()),
                    route: "m0".into(),
                    owned_by: Some("openai".into()),
                    ..Default::default()
                },
                ModelRoute {
                    pattern: Some("qwen-*".into()),
                    route: "m1".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
        .compile()
        .unwrap()
    }

    const JSON: Option<&str> = Some("application/json");

    #[test]
    fn models_are_answered_locally() {
        let p = plan();
        match on_request_headers(&p, None, "GET", "/v1/models", None, None, true) {
            HeadersDecision::Reply { status: 200, body } => assert_eq!(body, p.models_body),
            d => panic!("{d:?}"),
        }
        match on_request_headers(&p, None, "GET", "/v1/models/qwen-max", None, None, true) {
            HeadersDecision::Reply { status: 200, body } => {
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(v["id"], "qwen-max");
            }
            d => panic!("{d:?}"),
        }
        match on_request_headers(&p, None, "GET", "/v1/models/nope", None, None, true) {
            HeadersDecision::Error(e, ClientApi::OpenAi) => {
                assert_eq!((e.status, e.code), (404, "model_not_found"))
            }
            d => panic!("{d:?}"),
        }
    }

    #[test]
    fn header_errors() {
        let p = plan();
        let err = |d| match d {
            HeadersDecision::Error(e, _) => (e.status, e.code),
            d => panic!("{d:?}"),
        };
        assert_eq!(
            err(on_request_headers(
                &p,
                None,
                "POST",
                "/v1/chat/completions",
                Some("text/plain"),
                None,
                false
            )),
            (400, "invalid_content_type")
        );
        assert_eq!(
            err(on_request_headers(
                &p,
                None,
                "POST",
                "/v1/chat/completions",
                None,
                None,
                false
            )),
            (400, "invalid_content_type")
        );
        assert_eq!(
            err(on_request_headers(
                &p,
                None,
                "POST",
                "/v1/chat/completions",
                JSON,
                Some("101"),
                false
            )),
            (413, "request_too_large")
        );
        assert_eq!(
            err(on_request_headers(
                &p,
                None,
                "POST",
                "/v1/chat/completions",
                JSON,
                None,
                true
            )),
            (400, "missing_body")
        );
        assert_eq!(
            err(on_request_headers(
                &p, None, "POST", "/v2/x", JSON, None, false
            )),
            (404, "unknown_url")
        );
        assert_eq!(
            on_request_headers(
                &p,
                None,
                "POST",
                "/v1/chat/completions",
                JSON,
                Some("100"),
                false
            ),
            HeadersDecision::ReadBody(Operation::ChatCompletions)
        );
    }

    #[test]
    fn anthropic_paths_get_anthropic_errors() {
        let p = plan();
        match on_request_headers(
            &p,
            None,
            "POST",
            "/v1/messages",
            Some("text/plain"),
            None,
            false,
        ) {
            HeadersDecision::Error(e, ClientApi::Anthropic) => assert_eq!(e.status, 400),
            d => panic!("{d:?}"),
        }
        match on_request_headers(&p, None, "POST", "/v1/messages/batches", JSON, None, false) {
            HeadersDecision::Error(e, ClientApi::Anthropic) => assert_eq!(e.status, 404),
            d => panic!("{d:?}"),
        }
        assert_eq!(
            on_request_headers(&p, None, "POST", "/v1/messages", JSON, None, false),
            HeadersDecision::ReadBody(Operation::Messages)
        );
        let d = route_body(
            &p,
            None,
            Operation::Messages,
            br#"{"model":"gpt-4o-mini","max_tokens":5,"stream":true}"#,
            &[],
        )
        .unwrap();
        assert_eq!(d.stream, Some(StreamMode::WithUsage));
        let d = route_body(
            &p,
            None,
            Operation::CountTokens,
            br#"{"model":"gpt-4o-mini","stream":true}"#,
            &[],
        )
        .unwrap();
        assert_eq!(d.stream, None);
    }

    #[test]
    fn a_split_model_goes_to_its_targets_by_weight_or_by_sticky_header() {
        use crate::config::router::{SplitRoute, StickyConfig};
        let p = RouterConfig {
            models: vec![ModelRoute {
                name: Some("chat".into()),
                route: "m0".into(),
                split: vec![
                    SplitRoute {
                        route: "m0.0".into(),
                        weight: 3,
                        key: None,
                    },
                    SplitRoute {
                        route: "m0.1".into(),
                        weight: 1,
                        key: None,
                    },
                ],
                sticky: Some(StickyConfig {
                    header: Some("X-Session".into()),
                    consumer: false,
                }),
                ..Default::default()
            }],
            ..Default::default()
        }
        .compile()
        .unwrap();
        assert_eq!(p.sticky_headers, ["x-session"]);
        let body = br#"{"model":"chat"}"#;
        let routes: Vec<String> = (0..8)
            .map(|_| {
                route_body(&p, None, Operation::ChatCompletions, body, &[])
                    .unwrap()
                    .route
            })
            .collect();
        assert_eq!(routes.iter().filter(|r| *r == "m0.0").count(), 6);
        assert_eq!(routes.iter().filter(|r| *r == "m0.1").count(), 2);
        let session = [("x-session".to_string(), "abc".to_string())];
        let first = route_body(&p, None, Operation::ChatCompletions, body, &session)
            .unwrap()
            .route;
        for _ in 0..10 {
            let again = route_body(&p, None, Operation::ChatCompletions, body, &session).unwrap();
            assert_eq!(again.route, first);
        }
    }

    #[test]
    fn split_errors_name_the_field() {
        use crate::config::router::{SplitRoute, StickyConfig};
        let errs = RouterConfig {
            models: vec![ModelRoute {
                name: Some("chat".into()),
                route: "m0".into(),
                split: vec![
                    SplitRoute {
                        route: "m0.0".into(),
                        weight: 0,
                        key: None,
                    },
                    SplitRoute {
                        route: "m0.0".into(),
                        weight: 1,
                        key: None,
                    },
                ],
                sticky: Some(StickyConfig {
                    header: Some("x-a".into()),
                    consumer: true,
                }),
                ..Default::default()
            }],
            ..Default::default()
        }
        .compile()
        .unwrap_err()
        .to_string();
        for needle in [
            "models[0].split[0].weight: 0 is out of range",
            "models[0].split[1].route: route \"m0.0\" is listed twice",
            "models[0].sticky: set exactly one",
        ] {
            assert!(errs.contains(needle), "missing {needle:?} in {errs}");
        }
    }

    #[test]
    fn body_routes_by_model() {
        let p = plan();
        let d = route_body(
            &p,
            None,
            Operation::ChatCompletions,
            br#"{"model":"gpt-4o-mini","stream":true}"#,
            &[],
        )
        .unwrap();
        assert_eq!(
            d,
            RouteDecision {
                op: Operation::ChatCompletions,
                model: "gpt-4o-mini".into(),
                route: "m0".into(),
                stream: Some(StreamMode::Plain),
                reserve_tokens: 0,
                // No token-limited consumer: a quarter token per body byte (37).
                prompt_tokens: 10,
            }
        );
        let d = route_body(
            &p,
            None,
            Operation::Embeddings,
            br#"{"model":"qwen-emb","stream":true}"#,
            &[],
        )
        .unwrap();
        assert_eq!((d.route.as_str(), d.stream), ("m1", None));
        let e = route_body(
            &p,
            None,
            Operation::ChatCompletions,
            br#"{"model":"nope"}"#,
            &[],
        )
        .unwrap_err();
        assert_eq!(
            (e.status, e.code, e.param),
            (404, "model_not_found", Some("model"))
        );
        assert_eq!(
            route_body(&p, None, Operation::ChatCompletions, b"{", &[])
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(check_body_size(&p, 101).unwrap_err().status, 413);
        assert!(check_body_size(&p, 100).is_ok());
    }
}
