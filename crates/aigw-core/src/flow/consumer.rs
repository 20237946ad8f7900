//! The router filter's decisions about consumers: who is calling, whether it
//! may use the model, how many tokens to reserve, how to refuse, what to tell
//! the client about its budget, and what to charge when the request ends.

use crate::api::Operation;
use crate::config::router::RouterPlan;
use crate::consumer::{Consumer, Identity};
use crate::error::ApiError;
use crate::quota::{reset_text, Denial, DenyReason, Period, RateStatus};
use crate::schema::openai::RequestSummary;
use crate::usage::Usage;

/// The caller of a request: `Ok(None)` when the gateway has no consumers
/// (open), the consumer's index when its key is known, else 401.
pub fn authenticate(
    plan: &RouterPlan,
    custom: Option<&str>,
    authorization: Option<&str>,
    x_api_key: Option<&str>,
) -> Result<Option<usize>, ApiError> {
    if !plan.consumers.required() {
        return Ok(None);
    }
    match plan.consumers.identify(custom, authorization, x_api_key) {
        Identity::Consumer(i, _) => Ok(Some(i)),
        Identity::NoKey => Err(ApiError::new(
            401,
            "invalid_request_error",
            "missing_api_key",
            "You didn't provide an API key. Send it as `Authorization: Bearer <key>` or `x-api-key: <key>`.",
        )),
        // Never echo the key, not even in part.
        Identity::UnknownKey => Err(ApiError::new(
            401,
            "invalid_request_error",
            "invalid_api_key",
            "Incorrect API key provided.",
        )),
    }
}

/// 403 unless the consumer may use `model`.
pub fn check_model(consumer: &Consumer, model: &str) -> Result<(), ApiError> {
    if consumer.allows(model) {
        Ok(())
    } else {
        Err(ApiError::new(
            403,
            "invalid_request_error",
            "model_not_allowed",
            format!("This key is not allowed to use the model `{model}`."),
        )
        .with_param("model"))
    }
}

/// Tokens a request reserves: its estimated prompt plus the output it may
/// produce (its own limit times its choices, or the configured default).
/// Token counting itself is free.
pub fn reservation_tokens(plan: &RouterPlan, op: Operation, summary: &RequestSummary) -> u64 {
    let output = summary
        .max_output_tokens
        .unwrap_or(plan.consumers.default_max_tokens())
        .saturating_mul(summary.choices);
    match op {
        Operation::CountTokens | Operation::ListModels | Operation::RetrieveModel => 0,
        Operation::Embeddings => summary.prompt_tokens,
        Operation::ChatCompletions | Operation::Completions | Operation::Messages => {
            summary.prompt_tokens.saturating_add(output)
        }
    }
}

/// The 429 for a refused request, in OpenAI's terms (`type` says which kind
/// of limit; `insufficient_quota` for a spent budget).
pub fn denial_error(consumer: &str, d: &Denial) -> ApiError {
    let per = |p: Period| match p {
        Period::Minute => "per minute",
        Period::Hour => "per hour",
        Period::Day => "per day",
        Period::Month => "per month",
        Period::Total => "in total",
    };
    match d.reason {
        DenyReason::Requests(p) => ApiError::new(
            429,
            "requests",
            "rate_limit_exceeded",
            format!(
                "Rate limit reached for consumer {consumer} on requests {}: limit {}.",
                per(p),
                d.limit
            ),
        ),
        DenyReason::Tokens(Period::Total) => ApiError::new(
            429,
            "insufficient_quota",
            "insufficient_quota",
            format!(
                "Consumer {consumer} has used its token quota ({} tokens in total); this request needs {}.",
                d.limit, d.requested
            ),
        ),
        DenyReason::Tokens(p) => ApiError::new(
            429,
            "tokens",
            "rate_limit_exceeded",
            format!(
                "Rate limit reached for consumer {consumer} on tokens {}: limit {}, requested {} (prompt estimate plus max_tokens).",
                per(p),
                d.limit,
                d.requested
            ),
        ),
        DenyReason::Held(p) => ApiError::new(
            429,
            "tokens",
            "rate_limit_exceeded",
            format!(
                "Rate limit reached for consumer {consumer} on tokens {}: limit {}, requested {}; requests in flight hold the rest until they end.",
                per(p),
                d.limit,
                d.requested
            ),
        ),
        DenyReason::TooLarge(p) => ApiError::new(
            429,
            "tokens",
            "rate_limit_exceeded",
            format!(
                "Request too large for consumer {consumer} on tokens {}: limit {}, requested {} (prompt estimate plus max_tokens). Lower max_tokens or the prompt.",
                per(p),
                d.limit,
                d.requested
            ),
        ),
        DenyReason::Concurrency => ApiError::new(
            429,
            "requests",
            "concurrency_limit_exceeded",
            format!(
                "Consumer {consumer} already has {} requests in flight, its limit.",
                d.limit
            ),
        ),
    }
}

/// `Retry-After` (whole seconds, at least 1) for a refusal that waiting cures.
pub fn retry_after(d: &Denial) -> Option<String> {
    d.retry_after_ms
        .map(|ms| ms.div_ceil(1_000).max(1).to_string())
}

/// The OpenAI-style headers that tell a client what is left of its budget.
pub fn rate_limit_headers(status: &RateStatus) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some(r) = status.requests {
        out.push(("x-ratelimit-limit-requests", r.limit.to_string()));
        out.push(("x-ratelimit-remaining-requests", r.remaining.to_string()));
        if let Some(ms) = r.reset_ms {
            out.push(("x-ratelimit-reset-requests", reset_text(ms)));
        }
    }
    if let Some(t) = status.tokens {
        out.push(("x-ratelimit-limit-tokens", t.limit.to_string()));
        out.push(("x-ratelimit-remaining-tokens", t.remaining.to_string()));
        if let Some(ms) = t.reset_ms {
            out.push(("x-ratelimit-reset-tokens", reset_text(ms)));
        }
    }
    out
}

/// True for a provider's own rate-limit header: it describes the gateway's
/// provider account, not the consumer, and is replaced by the consumer's.
pub fn is_provider_rate_limit_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.starts_with("x-ratelimit-") || name.starts_with("anthropic-ratelimit-")
}

/// How a request ended, as the router filter saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending<'a> {
    /// No response started (the client left, or the request was reset first).
    NoResponse,
    /// The response had this status.
    Responded {
        status: u16,
        /// The usage the response reported, if any.
        usage: Option<&'a Usage>,
        /// Whether the response reached its proper end (a JSON body read
        /// whole, `[DONE]`, `message_stop`): a stream's usage before its end
        /// may be partial (Anthropic reports output tokens as it goes).
        complete: bool,
        /// Envoy's response code details (`via_upstream`: the provider
        /// answered; `upstream_response_timeout`, `upstream_reset_…`: Envoy
        /// answered after the request went out).
        details: &'a str,
    },
}

/// Tokens to charge when a request ends:
/// - an error status the provider or a filter answered, or a connection
///   that never reached the provider: nothing (providers do not bill those);
/// - a complete response with usage: the reported total;
/// - otherwise the cost is unknown (a success without a count, a stream cut
///   before its end, a timeout or reset after the request went out, a client
///   that left while waiting): the whole reservation, or the reported usage
///   if that is already more.
pub fn settled_tokens(reserved: u64, ending: Ending<'_>) -> u64 {
    let Ending::Responded {
        status,
        usage,
        complete,
        details,
    } = ending
    else {
        return reserved;
    };
    if status >= 400 {
        let reached_provider_unanswered = (details.contains("timeout")
            || details.contains("reset"))
            && !details.contains("connection_failure");
        return if reached_provider_unanswered {
            reserved
        } else {
            0
        };
    }
    let reported = usage.and_then(
        |u| match (u.total_tokens, u.input_tokens, u.output_tokens) {
            (Some(t), _, _) => Some(t),
            (None, Some(i), Some(o)) => Some(i.saturating_add(o)),
            _ => None,
        },
    );
    match reported {
        Some(t) if complete => t,
        Some(t) => t.max(reserved),
        None => reserved,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::consumer::{AuthConfig, ConsumerConfig};
    use crate::config::router::{ModelRoute, RouterConfig};
    use crate::quota::{Ledger, Limit, Limits, Measure};

    fn plan(consumers: &str) -> RouterPlan {
        let consumers: Vec<ConsumerConfig> = serde_json::from_str(consumers).unwrap();
        RouterConfig {
            models: vec![
                ModelRoute {
                    name: Some("gpt-4o-mini".into()),
                    route: "m0".into(),
                    ..Default::default()
                },
                ModelRoute {
                    name: Some("claude-sonnet-4-5".into()),
                    route: "m1".into(),
                    ..Default::default()
                },
            ],
            auth: AuthConfig {
                key_header: Some("x-team-key".into()),
                default_max_tokens: 1000,
            },
            consumers,
            ..Default::default()
        }
        .compile()
        .unwrap()
    }

    const TWO: &str = r#"[{"name":"web","keys":[{"value":"sk-aigw-web-000000000"}],"models":["gpt-*"]},
                          {"name":"ops","keys":[{"value":"sk-aigw-ops-000000000"}]}]"#;

    #[test]
    fn no_consumers_means_open() {
        let p = plan("[]");
        assert_eq!(authenticate(&p, None, None, None), Ok(None));
    }

    #[test]
    fn callers_are_known_by_key_or_refused_with_401() {
        let p = plan(TWO);
        assert_eq!(
            authenticate(&p, None, Some("Bearer sk-aigw-ops-000000000"), None),
            Ok(Some(1))
        );
        assert_eq!(
            authenticate(&p, Some("sk-aigw-web-000000000"), None, None),
            Ok(Some(0))
        );
        let e = authenticate(&p, None, None, None).unwrap_err();
        assert_eq!((e.status, e.code), (401, "missing_api_key"));
        let e = authenticate(&p, None, None, Some("sk-aigw-guess-0000000")).unwrap_err();
        assert_eq!((e.status, e.code), (401, "invalid_api_key"));
        assert!(!e.message.contains("guess"));
    }

    #[test]
    fn allow_lists_refuse_with_403_and_filter_the_model_list() {
        let p = plan(TWO);
        let web = p.consumers.get(0).unwrap();
        assert!(check_model(web, "gpt-4o-mini").is_ok());
        let e = check_model(web, "claude-sonnet-4-5").unwrap_err();
        assert_eq!((e.status, e.code), (403, "model_not_allowed"));
        let ids = |body: &[u8]| -> Vec<String> {
            let v: serde_json::Value = serde_json::from_slice(body).unwrap();
            v["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["id"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(ids(p.models_body_for(Some(0))), ["gpt-4o-mini"]);
        assert_eq!(
            ids(p.models_body_for(Some(1))),
            ["gpt-4o-mini", "claude-sonnet-4-5"]
        );
        assert_eq!(ids(p.models_body_for(None)).len(), 2);
    }

    #[test]
    fn reservations_cover_the_prompt_and_the_possible_output() {
        let p = plan(TWO);
        let summary = |max, n| RequestSummary {
            model: "m".into(),
            stream: None,
            prompt_tokens: 50,
            max_output_tokens: max,
            choices: n,
        };
        assert_eq!(
            reservation_tokens(&p, Operation::ChatCompletions, &summary(Some(100), 1)),
            150
        );
        assert_eq!(
            reservation_tokens(&p, Operation::ChatCompletions, &summary(Some(100), 3)),
            350
        );
        assert_eq!(
            reservation_tokens(&p, Operation::Messages, &summary(None, 1)),
            1050
        );
        assert_eq!(
            reservation_tokens(&p, Operation::Embeddings, &summary(None, 1)),
            50
        );
        assert_eq!(
            reservation_tokens(&p, Operation::CountTokens, &summary(None, 1)),
            0
        );
    }

    #[test]
    fn refusals_are_429_with_retry_after_and_budget_headers() {
        let limits = Limits {
            windows: vec![
                Limit {
                    measure: Measure::Requests,
                    period: Period::Minute,
                    max: 1,
                },
                Limit {
                    measure: Measure::Tokens,
                    period: Period::Day,
                    max: 100,
                },
            ],
            concurrent: None,
        };
        let mut ledger = Ledger::default();
        let now = 59_500;
        let g = ledger.reserve(&limits, 40, now).unwrap();
        let headers = rate_limit_headers(&g.status);
        let get = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(get("x-ratelimit-remaining-requests").as_deref(), Some("0"));
        assert_eq!(get("x-ratelimit-limit-tokens").as_deref(), Some("100"));
        assert_eq!(get("x-ratelimit-remaining-tokens").as_deref(), Some("60"));
        assert_eq!(get("x-ratelimit-reset-requests").as_deref(), Some("500ms"));
        let d = ledger.reserve(&limits, 40, now).unwrap_err();
        let e = denial_error("web", &d);
        assert_eq!(
            (e.status, e.kind, e.code),
            (429, "requests", "rate_limit_exceeded")
        );
        assert_eq!(retry_after(&d).as_deref(), Some("1"));
        let d = ledger.reserve(&limits, 400, now + 1_000).unwrap_err();
        let e = denial_error("web", &d);
        assert_eq!((e.kind, retry_after(&d)), ("tokens", None));
        assert!(e.message.contains("Request too large"), "{}", e.message);
    }

    #[test]
    fn settlement_charges_what_was_used_or_what_is_unknown() {
        let reported = Usage {
            input_tokens: Some(12),
            output_tokens: Some(30),
            total_tokens: Some(42),
            ..Usage::default()
        };
        let ended = |status, usage, complete, details| Ending::Responded {
            status,
            usage,
            complete,
            details,
        };
        let ok = |usage| ended(200, usage, true, "via_upstream");
        assert_eq!(settled_tokens(500, ok(Some(&reported))), 42);
        assert_eq!(settled_tokens(500, ok(None)), 500);
        let partial = Usage {
            input_tokens: Some(12),
            ..Usage::default()
        };
        assert_eq!(settled_tokens(500, ok(Some(&partial))), 500);
        // A stream cut before its end: its usage so far may be partial.
        let cut = |usage| ended(200, usage, false, "via_upstream");
        assert_eq!(settled_tokens(500, cut(Some(&reported))), 500);
        assert_eq!(settled_tokens(5, cut(Some(&reported))), 42);
        // The provider's error answers, and requests that never reached it, cost nothing.
        assert_eq!(
            settled_tokens(500, ended(429, None, true, "via_upstream")),
            0
        );
        let refused = "upstream_reset_before_response_started{connection_failure}";
        assert_eq!(settled_tokens(500, ended(503, None, true, refused)), 0);
        // Timeouts and resets after the request went out may have been billed.
        let timeout = "upstream_response_timeout";
        assert_eq!(settled_tokens(500, ended(504, None, true, timeout)), 500);
        let reset = "upstream_reset_before_response_started{remote_reset}";
        assert_eq!(settled_tokens(500, ended(503, None, true, reset)), 500);
        assert_eq!(settled_tokens(500, Ending::NoResponse), 500);
        assert!(is_provider_rate_limit_header(
            "X-RateLimit-Remaining-Tokens"
        ));
        assert!(is_provider_rate_limit_header(
            "anthropic-ratelimit-tokens-limit"
        ));
        assert!(!is_provider_rate_limit_header("retry-after"));
    }
}
