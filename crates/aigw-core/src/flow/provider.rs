//! Decisions of the provider filter (upstream, once per attempt): where the
//! request goes, with which key and headers, in which shape; how the
//! response comes back in the client's shape; and how a provider's error
//! reaches the client.

use crate::api::{classify, Operation};
use crate::config::provider::ProviderPlan;
use crate::convert::{
    self, anthropic_error_body, anthropic_error_type, openai_error_type, ProviderError,
    RequestContext, ResponseContext, StreamConverter,
};
use crate::error::{openai_error_body, ApiError, ClientApi};
use crate::headers::StreamMode;
use crate::keypool::{Pick, PoolSettings, PoolState, Selector, WhenAllDown};
use crate::provider::Protocol;
use crate::rewrite::{rewrite_openai_request, ModelRewrite, RequestEdits};
use crate::schema::openai::summarize_request;

/// How a request and its response are carried between the client's API and
/// the provider's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Translation {
    /// Same API on both sides: the body goes as is (model renamed, usage
    /// option added when needed), and so does the response.
    Passthrough,
    OpenAiToAnthropic,
    OpenAiToGemini,
    AnthropicToOpenAi,
    /// Through the OpenAI shape: Anthropic → OpenAI → Gemini, and back.
    AnthropicToGemini,
}

impl Translation {
    pub fn between(client: ClientApi, provider: Protocol) -> Translation {
        match (client, provider) {
            (ClientApi::OpenAi, Protocol::OpenAi) | (ClientApi::Anthropic, Protocol::Anthropic) => {
                Translation::Passthrough
            }
            (ClientApi::OpenAi, Protocol::Anthropic) => Translation::OpenAiToAnthropic,
            (ClientApi::OpenAi, Protocol::Gemini) => Translation::OpenAiToGemini,
            (ClientApi::Anthropic, Protocol::OpenAi) => Translation::AnthropicToOpenAi,
            (ClientApi::Anthropic, Protocol::Gemini) => Translation::AnthropicToGemini,
        }
    }
}

/// How one attempt's request is sent, as far as the headers tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptPlan {
    pub client_op: Operation,
    pub provider_op: Operation,
    pub client_api: ClientApi,
    pub translation: Translation,
    pub stream: Option<StreamMode>,
    pub authority: String,
    /// Header and value carrying the provider key; `None` for keyless providers.
    pub auth: Option<(&'static str, String)>,
    /// Id of the key used, for logs and metrics.
    pub key_id: Option<String>,
    /// Headers to add when the client did not send them.
    pub default_headers: Vec<(&'static str, String)>,
    /// The upstream path, when it does not depend on the body.
    pub path: Option<String>,
    /// The body must be read before the request can go.
    pub read_body: bool,
}

impl AttemptPlan {
    pub fn is_stream(&self) -> bool {
        self.stream.is_some()
    }
}

/// Plans an attempt from the client's path and the router's decisions.
pub fn plan_attempt(
    plan: &ProviderPlan,
    client_path: &str,
    route: Option<&str>,
    stream: Option<StreamMode>,
    key: Option<usize>,
) -> Result<AttemptPlan, ApiError> {
    let client_op = classify("POST", client_path).map(|e| e.op).map_err(|_| {
        ApiError::not_found(
            "unknown_url",
            format!("provider {} does not serve {client_path}", plan.name),
        )
    })?;
    let client_api = client_op.client_api();
    let provider_op = plan.provider.operation_for(client_op).ok_or_else(|| {
        ApiError::bad_request(
            "unsupported_operation",
            format!(
                "the model is served by provider {} ({}), which does not offer {}",
                plan.name,
                plan.provider.kind().as_str(),
                client_path.split('?').next().unwrap_or(client_path)
            ),
        )
    })?;
    let translation = Translation::between(client_api, plan.provider.protocol());
    let stream = if client_op.can_stream() { stream } else { None };
    let (auth, key_id) = match key.and_then(|i| plan.keys.get(i)) {
        None if plan.keys.is_keyless() => (None, None),
        None => return Err(no_usable_key(plan)),
        Some(k) => {
            let secret = k.secret.as_ref().ok_or_else(|| no_usable_key(plan))?;
            (
                Some(plan.provider.auth_header(secret.expose())),
                Some(k.id.clone()),
            )
        }
    };
    let edits = passthrough_edits(plan, client_op, route, stream);
    let read_body =
        translation != Translation::Passthrough || plan.provider.model_in_path() || edits.needed();
    let path = if plan.provider.model_in_path() {
        None
    } else {
        plan.provider
            .path(&plan.base_url.path, provider_op, "", stream.is_some())
    };
    Ok(AttemptPlan {
        client_op,
        provider_op,
        client_api,
        translation,
        stream,
        authority: plan.authority.clone(),
        auth,
        key_id,
        default_headers: plan.provider.default_headers(),
        path,
        read_body,
    })
}

fn passthrough_edits<'a>(
    plan: &'a ProviderPlan,
    op: Operation,
    route: Option<&str>,
    stream: Option<StreamMode>,
) -> RequestEdits<'a> {
    RequestEdits {
        model: route.and_then(|r| plan.routes.get(r)),
        include_usage: op.client_api() == ClientApi::OpenAi
            && op.can_stream()
            && stream == Some(StreamMode::Plain)
            && plan.stream_usage,
    }
}

/// The request as it leaves for the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedRequest {
    /// The new body, or `None` to send the client's unchanged.
    pub body: Option<Vec<u8>>,
    pub path: String,
    /// The model the provider is asked for.
    pub model: String,
}

/// Turns the client's body into the provider's, and finds the path.
pub fn prepare_body(
    plan: &ProviderPlan,
    attempt: &AttemptPlan,
    route: Option<&str>,
    body: &[u8],
) -> Result<PreparedRequest, ApiError> {
    let client_model = summarize_request(body)?.model;
    let rewrite = route
        .and_then(|r| plan.routes.get(r))
        .unwrap_or(&ModelRewrite::Keep);
    let model = rewrite.apply(&client_model).unwrap_or(client_model);
    let ctx = RequestContext {
        model: &model,
        default_max_tokens: plan.provider.default_max_tokens(),
    };
    let new_body = match attempt.translation {
        Translation::Passthrough => rewrite_openai_request(
            body,
            &passthrough_edits(plan, attempt.client_op, route, attempt.stream),
        )?,
        Translation::OpenAiToAnthropic => Some(convert::openai_anthropic::request(body, &ctx)?),
        Translation::OpenAiToGemini => Some(convert::openai_gemini::request(body, &ctx)?),
        Translation::AnthropicToOpenAi => {
            let converted = convert::anthropic_openai::request(body, &ctx)?;
            Some(if plan.stream_usage {
                converted
            } else {
                without_stream_options(&converted)
            })
        }
        Translation::AnthropicToGemini => {
            let openai = convert::anthropic_openai::request(body, &ctx)?;
            Some(convert::openai_gemini::request(&openai, &ctx)?)
        }
    };
    let path = match &attempt.path {
        Some(p) => p.clone(),
        None => plan
            .provider
            .path(
                &plan.base_url.path,
                attempt.provider_op,
                &model,
                attempt.is_stream(),
            )
            .ok_or_else(|| {
                ApiError::bad_request(
                    "unsupported_operation",
                    "operation not offered by this provider",
                )
            })?,
    };
    Ok(PreparedRequest {
        body: new_body,
        path,
        model,
    })
}

/// Which key serves an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyChoice {
    /// The provider takes no key.
    Keyless,
    /// Use this key; `trial`: its first request after a cooldown, which
    /// decides whether it is back (record it in the shared state first).
    Use { index: usize, trial: bool },
    /// No key can serve: answer this error (503), with `Retry-After` seconds.
    Refuse {
        error: ApiError,
        retry_after_secs: Option<u64>,
    },
}

/// Chooses the key for an attempt from the pool's shared state.
///
/// `more_targets`: the attempt is part of a fallback chain with targets
/// after this one. Envoy does not retry a filter's own reply, so instead of
/// refusing when every key is out, the key due back first is used: the
/// provider's refusal (429, 401, 5xx) then moves the request on.
pub fn choose_key(
    plan: &ProviderPlan,
    state: &PoolState,
    selector: &mut Selector,
    tried: &[usize],
    sticky: Option<&str>,
    now_ms: u64,
    more_targets: bool,
) -> KeyChoice {
    if plan.keys.is_keyless() {
        return KeyChoice::Keyless;
    }
    if !plan.keys.any_usable() {
        return KeyChoice::Refuse {
            error: no_usable_key(plan),
            retry_after_secs: None,
        };
    }
    let keys = plan.keys.choices();
    let chained;
    let settings = if more_targets {
        chained = PoolSettings {
            when_all_down: WhenAllDown::TryOldest,
            ..plan.pool.clone()
        };
        &chained
    } else {
        &plan.pool
    };
    match selector.pick(state, &keys, tried, sticky, now_ms, settings) {
        Pick::Key(index) => KeyChoice::Use {
            index,
            trial: false,
        },
        Pick::Trial(index) => KeyChoice::Use { index, trial: true },
        Pick::AllDown { retry_after_ms } => {
            let secs = retry_after_ms.div_ceil(1000).max(1);
            KeyChoice::Refuse {
                error: ApiError::unavailable(
                    "provider_keys_exhausted",
                    format!(
                        "every key of provider {} is rate limited, unhealthy or refused; retry in {secs} s",
                        plan.name
                    ),
                ),
                retry_after_secs: Some(secs),
            }
        }
    }
}

/// A converted OpenAI request without `stream_options`, for servers that
/// reject it (`streamUsage: false`).
fn without_stream_options(body: &[u8]) -> Vec<u8> {
    match crate::schema::json_object::Members::parse(body) {
        Ok(m) => m.write(
            body.len(),
            |k, _| {
                if k == "stream_options" {
                    crate::schema::json_object::Edit::Drop
                } else {
                    crate::schema::json_object::Edit::Keep
                }
            },
            &[],
        ),
        Err(_) => body.to_vec(),
    }
}

fn no_usable_key(plan: &ProviderPlan) -> ApiError {
    ApiError::unavailable(
        "provider_key_unavailable",
        format!(
            "provider {} has no usable API key configured on the gateway",
            plan.name
        ),
    )
}

/// What to do with a provider's response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponsePlan {
    /// Forward as is.
    Pass,
    /// An error: hold the body and rewrite it into the client's error shape.
    RewriteError,
    /// A complete JSON body to convert to the client's shape (held whole).
    ConvertBody,
    /// A stream to convert event by event (never held).
    ConvertStream,
}

pub fn on_response_headers(
    attempt: &AttemptPlan,
    status: u16,
    content_type: Option<&str>,
) -> ResponsePlan {
    if status >= 400 {
        return ResponsePlan::RewriteError;
    }
    if attempt.translation == Translation::Passthrough {
        return ResponsePlan::Pass;
    }
    let is_sse = content_type.is_some_and(|ct| {
        ct.trim_start()
            .to_ascii_lowercase()
            .starts_with("text/event-stream")
    });
    if is_sse {
        ResponsePlan::ConvertStream
    } else {
        ResponsePlan::ConvertBody
    }
}

/// The content type of a converted response.
pub fn converted_content_type(plan: ResponsePlan) -> &'static str {
    match plan {
        ResponsePlan::ConvertStream => "text/event-stream",
        _ => "application/json",
    }
}

/// Converts a complete provider response body into the client's shape.
pub fn convert_body(
    attempt: &AttemptPlan,
    body: &[u8],
    ctx: &ResponseContext<'_>,
) -> Result<Vec<u8>, ApiError> {
    // The converters choose the status: 502 for a provider answer they cannot
    // read, a 4xx where the answer is the client's to act on (e.g. a prompt
    // the provider blocked).
    match attempt.translation {
        Translation::Passthrough => Ok(body.to_vec()),
        Translation::OpenAiToAnthropic => convert::openai_anthropic::response(body, ctx),
        Translation::OpenAiToGemini => convert::openai_gemini::response(body, ctx),
        Translation::AnthropicToOpenAi => convert::anthropic_openai::response(body, ctx),
        Translation::AnthropicToGemini => {
            let openai = convert::openai_gemini::response(body, ctx)?;
            convert::anthropic_openai::response(&openai, ctx)
        }
    }
}

/// A converter for the provider's stream, or `None` for passthrough.
pub fn stream_converter(
    attempt: &AttemptPlan,
    ctx: &ResponseContext<'_>,
) -> Option<Box<dyn StreamConverter>> {
    match attempt.translation {
        Translation::Passthrough => None,
        Translation::OpenAiToAnthropic => {
            Some(Box::new(convert::openai_anthropic::Stream::new(ctx)))
        }
        Translation::OpenAiToGemini => Some(Box::new(convert::openai_gemini::Stream::new(ctx))),
        Translation::AnthropicToOpenAi => {
            Some(Box::new(convert::anthropic_openai::Stream::new(ctx)))
        }
        Translation::AnthropicToGemini => Some(Box::new(Chain {
            first: Box::new(convert::openai_gemini::Stream::new(ctx)),
            second: Box::new(convert::anthropic_openai::Stream::new(ctx)),
        })),
    }
}

/// Two stream converters in a row; usage is the provider's, read by the first.
struct Chain {
    first: Box<dyn StreamConverter>,
    second: Box<dyn StreamConverter>,
}

impl StreamConverter for Chain {
    fn push(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mid = self.first.push(bytes);
        if mid.is_empty() {
            return Vec::new();
        }
        self.second.push(&mid)
    }

    fn finish(&mut self) -> Vec<u8> {
        let mid = self.first.finish();
        let mut out = if mid.is_empty() {
            Vec::new()
        } else {
            self.second.push(&mid)
        };
        out.extend(self.second.finish());
        out
    }

    fn usage(&self) -> Option<&crate::usage::Usage> {
        self.first.usage()
    }
}

/// A provider error, rewritten for the client: status and body in the
/// client's API shape. The provider's key never survives into the message.
pub fn rewrite_error(
    plan: &ProviderPlan,
    client_api: ClientApi,
    status: u16,
    content_type: Option<&str>,
    body: &[u8],
) -> (u16, Vec<u8>) {
    if status == 401 || status == 403 {
        // The provider rejected the gateway's key: not the client's fault, and
        // the provider's message may quote part of the key.
        let err = ApiError::bad_gateway(
            "provider_auth_failed",
            format!(
                "provider {} rejected the gateway's credentials (HTTP {status})",
                plan.name
            ),
        );
        return (502, err.body(client_api));
    }
    let mut read = match plan.provider.protocol() {
        Protocol::OpenAi => convert::anthropic_openai::error(status, body),
        Protocol::Anthropic => convert::openai_anthropic::error(status, body),
        Protocol::Gemini => convert::openai_gemini::error(status, body),
    };
    // A message is quoted only from a JSON error or plain text, never from an
    // HTML page or anything else a proxy in front of the provider may send.
    let is_json = serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok();
    if !is_json {
        read.message = plain_text(content_type, body);
    }
    read.message = read.message.map(|m| plan.keys.redact(&m));
    let message = read
        .message
        .clone()
        .unwrap_or_else(|| format!("provider {} returned HTTP {status}", plan.name));
    let body = match (client_api, plan.provider.protocol()) {
        (ClientApi::OpenAi, Protocol::OpenAi) => {
            let kind = read
                .kind
                .unwrap_or_else(|| openai_error_type(status).to_string());
            openai_error_body(&kind, &message, read.param.as_deref(), read.code.as_deref())
        }
        (ClientApi::OpenAi, _) => {
            openai_error_body(openai_error_type(status), &message, None, None)
        }
        (ClientApi::Anthropic, Protocol::Anthropic) => {
            let kind = read
                .kind
                .unwrap_or_else(|| anthropic_error_type(status).to_string());
            anthropic_error_body(&kind, &message)
        }
        // Worded as Anthropic does where it matters to agents (a prompt too long).
        (ClientApi::Anthropic, Protocol::OpenAi) => {
            convert::anthropic_openai::error_body(&ProviderError {
                message: Some(message),
                ..read
            })
        }
        (ClientApi::Anthropic, Protocol::Gemini) => {
            anthropic_error_body(anthropic_error_type(status), &message)
        }
    };
    (status, body)
}

/// Longest piece of a plain-text error body quoted to the client.
const MAX_QUOTED_TEXT: usize = 300;

fn plain_text(content_type: Option<&str>, body: &[u8]) -> Option<String> {
    let is_text = content_type.is_some_and(|ct| {
        ct.trim_start()
            .to_ascii_lowercase()
            .starts_with("text/plain")
    });
    if !is_text {
        return None;
    }
    let s = String::from_utf8_lossy(body);
    let s = s.trim();
    (!s.is_empty()).then(|| s.chars().take(MAX_QUOTED_TEXT).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_json;
    use crate::config::provider::ProviderConfig;
    use serde_json::Value;

    fn plan_of(json: &str) -> ProviderPlan {
        let cfg: ProviderConfig = parse_json(json.as_bytes()).unwrap();
        cfg.compile(&|_| None).unwrap()
    }

    /// The first key, as the pool would choose on a fresh state.
    fn k(p: &ProviderPlan) -> Option<usize> {
        match choose_key(
            p,
            &PoolState::fresh(&p.fingerprint, p.keys.keys().len()),
            &mut Selector::default(),
            &[],
            None,
            0,
            false,
        ) {
            KeyChoice::Use { index, .. } => Some(index),
            _ => None,
        }
    }

    fn plan(keys: &str) -> ProviderPlan {
        plan_of(&format!(
            r#"{{"name":"ds","kind":"openai-compatible","baseUrl":"http://127.0.0.1:9/api/v1",
                "keys":{keys},"routes":{{"m0":{{"model":"deepseek-chat"}},"m1":{{}}}}}}"#
        ))
    }

    #[test]
    fn plans_path_authority_and_key() {
        let p = plan(r#"[{"id":"k0","value":"sk-0"},{"id":"k1","value":"sk-1"}]"#);
        let a = plan_attempt(&p, "/v1/chat/completions", Some("m1"), None, k(&p)).unwrap();
        assert_eq!(a.path.as_deref(), Some("/api/v1/chat/completions"));
        assert_eq!(a.authority, "127.0.0.1:9");
        assert_eq!(a.auth, Some(("authorization", "Bearer sk-0".to_string())));
        assert_eq!(a.key_id.as_deref(), Some("k0"));
        assert_eq!(a.translation, Translation::Passthrough);
        assert!(!a.read_body);
        let b = plan_attempt(&p, "/v1/chat/completions", Some("m1"), None, Some(1)).unwrap();
        assert_eq!(b.key_id.as_deref(), Some("k1"));
    }

    #[test]
    fn body_is_read_only_when_needed() {
        let p = plan("[]");
        assert!(
            plan_attempt(&p, "/v1/chat/completions", Some("m0"), None, k(&p))
                .unwrap()
                .read_body
        );
        assert!(
            plan_attempt(
                &p,
                "/v1/chat/completions",
                Some("m1"),
                Some(StreamMode::Plain),
                k(&p)
            )
            .unwrap()
            .read_body
        );
        assert!(
            !plan_attempt(
                &p,
                "/v1/chat/completions",
                Some("m1"),
                Some(StreamMode::WithUsage),
                k(&p)
            )
            .unwrap()
            .read_body
        );
        assert!(
            !plan_attempt(
                &p,
                "/v1/embeddings",
                Some("m1"),
                Some(StreamMode::Plain),
                k(&p)
            )
            .unwrap()
            .read_body
        );
        let a = plan_attempt(
            &p,
            "/v1/chat/completions",
            Some("m0"),
            Some(StreamMode::Plain),
            k(&p),
        )
        .unwrap();
        let out = prepare_body(&p, &a, Some("m0"), br#"{"model":"fast","stream":true}"#).unwrap();
        assert_eq!(
            out.body.unwrap(),
            br#"{"model":"deepseek-chat","stream":true,"stream_options":{"include_usage":true}}"#
        );
        assert_eq!(out.model, "deepseek-chat");
        assert_eq!(out.path, "/api/v1/chat/completions");
    }

    #[test]
    fn keyless_providers_send_no_auth() {
        let a = plan_attempt(&plan("[]"), "/v1/embeddings", None, None, k(&plan("[]"))).unwrap();
        assert_eq!((a.auth, a.key_id), (None, None));
    }

    #[test]
    fn keys_are_chosen_by_weight_and_all_down_is_503_with_retry_after() {
        use crate::keypool::{record, Outcome};
        let p = plan(r#"[{"id":"k0","value":"sk-0","weight":3},{"id":"k1","value":"sk-1"}]"#);
        let mut state = PoolState::fresh(&p.fingerprint, 2);
        let mut sel = Selector::default();
        let picks: Vec<_> = (0..8)
            .map(|_| choose_key(&p, &state, &mut sel, &[], None, 0, false))
            .collect();
        assert_eq!(
            picks
                .iter()
                .filter(|c| **c
                    == KeyChoice::Use {
                        index: 0,
                        trial: false
                    })
                .count(),
            6
        );
        for i in 0..2 {
            record(
                &mut state.keys[i],
                Outcome::RateLimited {
                    retry_after_ms: Some(4_500),
                },
                0,
                &p.pool,
            );
        }
        match choose_key(&p, &state, &mut sel, &[], None, 1_000, false) {
            KeyChoice::Refuse {
                error,
                retry_after_secs,
            } => {
                assert_eq!(
                    (error.status, error.code, retry_after_secs),
                    (503, "provider_keys_exhausted", Some(4))
                );
                assert!(!error.message.contains("sk-"));
            }
            c => panic!("{c:?}"),
        }
        // With more targets after this one in a fallback chain, the request
        // still goes out, so the provider's refusal moves it on.
        assert!(matches!(
            choose_key(&p, &state, &mut sel, &[], None, 1_000, true),
            KeyChoice::Use { .. }
        ));
    }

    #[test]
    fn unresolved_keys_are_503() {
        let p = plan_of(
            r#"{"name":"x","kind":"openai-compatible","baseUrl":"http://h","keys":[{"id":"k","env":"UNSET"}]}"#,
        );
        let e = plan_attempt(&p, "/v1/chat/completions", None, None, k(&p)).unwrap_err();
        assert_eq!((e.status, e.code), (503, "provider_key_unavailable"));
    }

    #[test]
    fn azure_paths_name_the_deployment_from_the_body() {
        let p = plan_of(
            r#"{"name":"az","kind":"azure-openai","baseUrl":"https://r.openai.azure.com","keys":[{"id":"k","value":"azkey"}],
                "routes":{"m0":{"model":"prod-4o"},"m1":{}}}"#,
        );
        let a = plan_attempt(&p, "/v1/chat/completions", Some("m1"), None, k(&p)).unwrap();
        assert_eq!((a.path.as_ref(), a.read_body), (None, true));
        assert_eq!(a.auth, Some(("api-key", "azkey".to_string())));
        let out = prepare_body(&p, &a, Some("m1"), br#"{"model":"gpt-4o"}"#).unwrap();
        assert_eq!(
            out.path,
            "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(out.body, None);
        let a = plan_attempt(&p, "/v1/embeddings", Some("m0"), None, k(&p)).unwrap();
        let out = prepare_body(&p, &a, Some("m0"), br#"{"model":"emb","input":"x"}"#).unwrap();
        assert_eq!(
            out.path,
            "/openai/deployments/prod-4o/embeddings?api-version=2024-10-21"
        );
    }

    #[test]
    fn anthropic_clients_pass_through_to_anthropic_with_its_headers() {
        let p = plan_of(
            r#"{"name":"an","kind":"anthropic","keys":[{"id":"k","value":"ak"}],"routes":{"m0":{"model":"claude-x"}}}"#,
        );
        let a = plan_attempt(
            &p,
            "/v1/messages",
            Some("m0"),
            Some(StreamMode::WithUsage),
            k(&p),
        )
        .unwrap();
        assert_eq!(a.translation, Translation::Passthrough);
        assert_eq!(a.path.as_deref(), Some("/v1/messages"));
        assert_eq!(a.auth, Some(("x-api-key", "ak".to_string())));
        assert_eq!(
            a.default_headers,
            vec![("anthropic-version", "2023-06-01".to_string())]
        );
        let out = prepare_body(
            &p,
            &a,
            Some("m0"),
            br#"{"model":"sonnet","max_tokens":5,"stream":true}"#,
        )
        .unwrap();
        assert_eq!(
            out.body.unwrap(),
            br#"{"model":"claude-x","max_tokens":5,"stream":true}"#
        );
        let count = plan_attempt(&p, "/v1/messages/count_tokens", Some("m0"), None, k(&p)).unwrap();
        assert_eq!(count.path.as_deref(), Some("/v1/messages/count_tokens"));
    }

    #[test]
    fn anthropic_clients_streams_ask_for_usage_unless_the_provider_cannot_take_it() {
        let body = br#"{"model":"m","max_tokens":5,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
        for (stream_usage, expect) in [("true", true), ("false", false)] {
            let p = plan_of(&format!(
                r#"{{"name":"o","kind":"openai-compatible","baseUrl":"http://h/v1","streamUsage":{stream_usage}}}"#
            ));
            let a =
                plan_attempt(&p, "/v1/messages", None, Some(StreamMode::WithUsage), None).unwrap();
            let out = prepare_body(&p, &a, None, body).unwrap().body.unwrap();
            let v: Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(v.get("stream_options").is_some(), expect, "{v}");
            assert_eq!(v["stream"], true);
        }
    }

    #[test]
    fn translations_by_client_and_provider() {
        let anthropic = plan_of(r#"{"name":"an","kind":"anthropic"}"#);
        let gemini = plan_of(r#"{"name":"ge","kind":"gemini"}"#);
        let openai = plan("[]");
        let t = |p: &ProviderPlan, path: &str| {
            plan_attempt(p, path, None, None, k(p)).unwrap().translation
        };
        assert_eq!(
            t(&anthropic, "/v1/chat/completions"),
            Translation::OpenAiToAnthropic
        );
        assert_eq!(
            t(&gemini, "/v1/chat/completions"),
            Translation::OpenAiToGemini
        );
        assert_eq!(t(&openai, "/v1/messages"), Translation::AnthropicToOpenAi);
        assert_eq!(t(&gemini, "/v1/messages"), Translation::AnthropicToGemini);
        let a = plan_attempt(
            &anthropic,
            "/v1/chat/completions",
            None,
            None,
            k(&anthropic),
        )
        .unwrap();
        assert_eq!(
            (a.provider_op, a.path.as_deref()),
            (Operation::Messages, Some("/v1/messages"))
        );
    }

    #[test]
    fn operations_a_provider_does_not_offer_are_400() {
        let gemini = plan_of(r#"{"name":"ge","kind":"gemini"}"#);
        let e = plan_attempt(&gemini, "/v1/embeddings", None, None, k(&gemini)).unwrap_err();
        assert_eq!((e.status, e.code), (400, "unsupported_operation"));
        assert!(e.message.contains("ge (gemini)"), "{}", e.message);
        let e = plan_attempt(
            &plan("[]"),
            "/v1/messages/count_tokens",
            None,
            None,
            k(&plan("[]")),
        )
        .unwrap_err();
        assert_eq!(e.status, 400);
    }

    #[test]
    fn response_plans() {
        let p = plan("[]");
        let a = plan_attempt(&p, "/v1/chat/completions", None, None, k(&p)).unwrap();
        assert_eq!(
            on_response_headers(&a, 200, Some("text/event-stream")),
            ResponsePlan::Pass
        );
        assert_eq!(
            on_response_headers(&a, 500, None),
            ResponsePlan::RewriteError
        );
        let an = plan_of(r#"{"name":"an","kind":"anthropic"}"#);
        let a = plan_attempt(&an, "/v1/chat/completions", None, None, k(&an)).unwrap();
        assert_eq!(
            on_response_headers(&a, 200, Some("text/event-stream; charset=utf-8")),
            ResponsePlan::ConvertStream
        );
        assert_eq!(
            on_response_headers(&a, 200, Some("application/json")),
            ResponsePlan::ConvertBody
        );
    }

    fn rewritten(
        p: &ProviderPlan,
        api: ClientApi,
        status: u16,
        ct: &str,
        body: &str,
    ) -> (u16, Value) {
        let (s, b) = rewrite_error(p, api, status, Some(ct), body.as_bytes());
        (s, serde_json::from_slice(&b).unwrap())
    }

    #[test]
    fn provider_errors_become_openai_envelopes() {
        let p = plan(r#"[{"id":"k0","value":"sk-secret-key"}]"#);
        let (s, v) = rewritten(
            &p,
            ClientApi::OpenAi,
            429,
            "application/json",
            r#"{"error":{"message":"slow down","type":"rate_limit_error","code":"rate_limit_exceeded"}}"#,
        );
        assert_eq!(s, 429);
        assert_eq!(
            v,
            serde_json::json!({"error":{"message":"slow down","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}})
        );
        let (_, v) = rewritten(
            &p,
            ClientApi::OpenAi,
            404,
            "application/json",
            r#"{"error":"model 'x' not found"}"#,
        );
        assert_eq!(v["error"]["message"], "model 'x' not found");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        let (_, v) = rewritten(
            &p,
            ClientApi::OpenAi,
            400,
            "application/json",
            r#"{"object":"error","message":"bad","type":"BadRequestError","code":400}"#,
        );
        assert_eq!(
            (&v["error"]["message"], &v["error"]["code"]),
            (&Value::from("bad"), &Value::from("400"))
        );
        let (_, v) = rewritten(
            &p,
            ClientApi::OpenAi,
            422,
            "application/json",
            r#"{"detail":[{"loc":["body","model"],"msg":"field required"},{"loc":["body","n"],"msg":"must be positive"}]}"#,
        );
        assert_eq!(v["error"]["message"], "field required; must be positive");
    }

    #[test]
    fn provider_errors_become_anthropic_envelopes_for_anthropic_clients() {
        let p = plan("[]");
        let (s, v) = rewritten(
            &p,
            ClientApi::Anthropic,
            429,
            "application/json",
            r#"{"error":{"message":"slow down","type":"rate_limit_exceeded"}}"#,
        );
        assert_eq!(s, 429);
        assert_eq!(
            v,
            serde_json::json!({"type":"error","error":{"type":"rate_limit_error","message":"slow down"}})
        );
        let (_, v) = rewritten(
            &p,
            ClientApi::Anthropic,
            502,
            "text/html",
            "<html>bad gateway</html>",
        );
        assert_eq!(
            v,
            serde_json::json!({"type":"error","error":{"type":"api_error","message":"provider ds returned HTTP 502"}})
        );
    }

    #[test]
    fn html_from_any_provider_is_never_quoted() {
        for kind in ["anthropic", "gemini"] {
            let p = plan_of(&format!(r#"{{"name":"x","kind":"{kind}"}}"#));
            for api in [ClientApi::OpenAi, ClientApi::Anthropic] {
                let (_, b) = rewrite_error(
                    &p,
                    api,
                    503,
                    Some("text/html"),
                    b"<html><body>Service Unavailable</body></html>",
                );
                let text = String::from_utf8_lossy(&b);
                assert!(!text.contains('<'), "{kind}: {text}");
                assert!(
                    text.contains("provider x returned HTTP 503"),
                    "{kind}: {text}"
                );
            }
        }
    }

    #[test]
    fn anthropic_clients_get_anthropic_wording_for_a_prompt_too_long() {
        let p = plan("[]");
        let (s, v) = rewritten(
            &p,
            ClientApi::Anthropic,
            400,
            "application/json",
            r#"{"error":{"message":"This model's maximum context length is 8192 tokens","type":"invalid_request_error","code":"context_length_exceeded"}}"#,
        );
        assert_eq!(s, 400);
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("prompt is too long: "),
            "{v}"
        );
    }

    #[test]
    fn html_and_empty_bodies_get_a_gateway_message() {
        let p = plan("[]");
        let (s, v) = rewritten(
            &p,
            ClientApi::OpenAi,
            502,
            "text/html",
            "<html><body>Bad Gateway</body></html>",
        );
        assert_eq!(s, 502);
        assert_eq!(v["error"]["message"], "provider ds returned HTTP 502");
        assert_eq!(v["error"]["type"], "server_error");
        let (_, v) = rewritten(&p, ClientApi::OpenAi, 500, "text/plain", "");
        assert_eq!(v["error"]["message"], "provider ds returned HTTP 500");
        let (_, v) = rewritten(
            &p,
            ClientApi::OpenAi,
            503,
            "text/plain",
            "overloaded, try later",
        );
        assert_eq!(v["error"]["message"], "overloaded, try later");
    }

    #[test]
    fn auth_failures_hide_the_providers_message_and_become_502() {
        let p = plan(r#"[{"id":"k0","value":"sk-secret-key"}]"#);
        for api in [ClientApi::OpenAi, ClientApi::Anthropic] {
            let (s, b) = rewrite_error(
                &p,
                api,
                401,
                Some("application/json"),
                br#"{"error":{"message":"Incorrect API key provided: sk-secret-key"}}"#,
            );
            assert_eq!(s, 502);
            assert!(!String::from_utf8_lossy(&b).contains("sk-secret"));
        }
    }

    #[test]
    fn echoed_keys_are_redacted() {
        let p = plan(r#"[{"id":"k0","value":"sk-secret-key"}]"#);
        let (_, b) = rewrite_error(
            &p,
            ClientApi::OpenAi,
            400,
            Some("application/json"),
            br#"{"error":{"message":"key sk-secret-key cannot do that"}}"#,
        );
        let text = String::from_utf8_lossy(&b);
        assert!(!text.contains("sk-secret-key"));
        assert!(text.contains("[redacted]"));
    }
}
