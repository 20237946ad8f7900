//! Decisions of the provider filter (upstream, once per attempt): where the
//! request goes, with which key, with which body; and how a provider's error
//! reaches the client.

use serde::Deserialize;
use serde_json::Value;

use crate::api::Operation;
use crate::config::provider::ProviderPlan;
use crate::error::{openai_error_body, ApiError};
use crate::headers::StreamMode;
use crate::provider::ProviderKind;
use crate::rewrite::{rewrite_openai_request, RequestEdits};

/// How one attempt's request is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptPlan {
    pub path: String,
    pub authority: String,
    /// Header and value carrying the provider key; `None` for keyless providers.
    pub auth: Option<(&'static str, String)>,
    /// Id of the key used, for logs and metrics.
    pub key_id: Option<String>,
    /// The body must be read and rewritten.
    pub rewrite_body: bool,
}

/// Plans an attempt from the client path and the router's decisions.
pub fn plan_attempt(
    plan: &ProviderPlan,
    client_path: &str,
    route: Option<&str>,
    stream: Option<StreamMode>,
) -> Result<AttemptPlan, ApiError> {
    let op = ProviderKind::operation_of(client_path).ok_or_else(|| {
        ApiError::not_found(
            "unknown_url",
            format!("provider {} does not serve {client_path}", plan.name),
        )
    })?;
    let path = plan.kind.path(&plan.base_url.path, op).ok_or_else(|| {
        ApiError::not_found(
            "unknown_url",
            format!("provider {} does not serve {client_path}", plan.name),
        )
    })?;
    let (auth, key_id) = if plan.keys.is_keyless() {
        (None, None)
    } else {
        let key = plan.keys.pick().ok_or_else(|| no_usable_key(plan))?;
        let secret = key.secret.as_ref().ok_or_else(|| no_usable_key(plan))?;
        (
            Some(plan.kind.auth_header(secret.expose())),
            Some(key.id.clone()),
        )
    };
    let edits = edits(plan, op, route, stream);
    Ok(AttemptPlan {
        path,
        authority: plan.authority.clone(),
        auth,
        key_id,
        rewrite_body: edits.needed(),
    })
}

fn edits<'a>(
    plan: &'a ProviderPlan,
    op: Operation,
    route: Option<&str>,
    stream: Option<StreamMode>,
) -> RequestEdits<'a> {
    RequestEdits {
        model: route.and_then(|r| plan.routes.get(r)),
        include_usage: op.can_stream() && stream == Some(StreamMode::Plain) && plan.stream_usage,
    }
}

/// Rewrites the request body for this provider; `Ok(None)` when unchanged.
pub fn rewrite_body(
    plan: &ProviderPlan,
    client_path: &str,
    route: Option<&str>,
    stream: Option<StreamMode>,
    body: &[u8],
) -> Result<Option<Vec<u8>>, ApiError> {
    let Some(op) = ProviderKind::operation_of(client_path) else {
        return Ok(None);
    };
    rewrite_openai_request(body, &edits(plan, op, route, stream))
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

/// What to do with a provider's response headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseDecision {
    /// Forward as is.
    Pass,
    /// An error: hold the body and rewrite it into the client's error shape.
    RewriteError,
}

pub fn on_response_headers(status: u16) -> ResponseDecision {
    if status >= 400 {
        ResponseDecision::RewriteError
    } else {
        ResponseDecision::Pass
    }
}

/// A provider error, rewritten for the client: status and OpenAI error body.
/// The provider's key never survives into the message.
pub fn rewrite_error(
    plan: &ProviderPlan,
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
        return (502, err.body(crate::error::ClientApi::OpenAi));
    }
    let fields = extract_error(content_type, body);
    let message = match fields.message {
        Some(m) => plan.keys.redact(&m),
        None => format!("provider {} returned HTTP {status}", plan.name),
    };
    let kind = fields
        .kind
        .unwrap_or_else(|| default_type(status).to_string());
    let body = openai_error_body(
        &kind,
        &message,
        fields.param.as_deref(),
        fields.code.as_deref(),
    );
    (status, body)
}

fn default_type(status: u16) -> &'static str {
    match status {
        400 | 404 | 409 | 413 | 415 | 422 => "invalid_request_error",
        429 => "rate_limit_error",
        500..=599 => "server_error",
        _ => "api_error",
    }
}

#[derive(Debug, Default)]
struct ErrorFields {
    message: Option<String>,
    kind: Option<String>,
    param: Option<String>,
    code: Option<String>,
}

/// Longest piece of a plain-text error body quoted to the client.
const MAX_QUOTED_TEXT: usize = 300;

/// Reads an error from the shapes OpenAI-compatible servers use:
/// `{"error":{"message",...}}` (OpenAI), `{"error":"..."}` (Ollama),
/// `{"message","type","code"}` (vLLM), `{"detail":...}` (FastAPI servers),
/// or plain text. HTML is never quoted.
fn extract_error(content_type: Option<&str>, body: &[u8]) -> ErrorFields {
    #[derive(Deserialize)]
    struct Loose {
        #[serde(default)]
        error: Option<Value>,
        #[serde(default)]
        message: Option<Value>,
        #[serde(default, rename = "type")]
        kind: Option<Value>,
        #[serde(default)]
        code: Option<Value>,
        #[serde(default)]
        param: Option<Value>,
        #[serde(default)]
        detail: Option<Value>,
    }
    fn text(v: Option<&Value>) -> Option<String> {
        match v? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Null | Value::String(_) => None,
            other => Some(other.to_string()),
        }
    }
    if let Ok(loose) = serde_json::from_slice::<Loose>(body) {
        return match &loose.error {
            Some(Value::Object(e)) => ErrorFields {
                message: text(e.get("message")),
                kind: text(e.get("type")),
                param: text(e.get("param")),
                code: text(e.get("code")),
            },
            Some(Value::String(s)) => ErrorFields {
                message: Some(s.clone()),
                ..Default::default()
            },
            _ => ErrorFields {
                message: text(loose.message.as_ref()).or_else(|| text(loose.detail.as_ref())),
                kind: text(loose.kind.as_ref()),
                param: text(loose.param.as_ref()),
                code: text(loose.code.as_ref()),
            },
        };
    }
    let is_text = content_type.is_some_and(|ct| {
        ct.trim_start()
            .to_ascii_lowercase()
            .starts_with("text/plain")
    });
    if is_text {
        let s = String::from_utf8_lossy(body);
        let s = s.trim();
        if !s.is_empty() {
            let quoted: String = s.chars().take(MAX_QUOTED_TEXT).collect();
            return ErrorFields {
                message: Some(quoted),
                ..Default::default()
            };
        }
    }
    ErrorFields::default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_json;
    use crate::config::provider::ProviderConfig;

    fn plan(keys: &str) -> ProviderPlan {
        let cfg: ProviderConfig = parse_json(
            format!(
                r#"{{"name":"ds","kind":"openai-compatible","baseUrl":"http://127.0.0.1:9/api/v1",
                    "keys":{keys},"routes":{{"m0":{{"model":"deepseek-chat"}},"m1":{{}}}}}}"#
            )
            .as_bytes(),
        )
        .unwrap();
        cfg.compile(&|_| None).unwrap()
    }

    #[test]
    fn plans_path_authority_and_key() {
        let p = plan(r#"[{"id":"k0","value":"sk-0"},{"id":"k1","value":"sk-1"}]"#);
        let a = plan_attempt(&p, "/v1/chat/completions", Some("m1"), None).unwrap();
        assert_eq!(a.path, "/api/v1/chat/completions");
        assert_eq!(a.authority, "127.0.0.1:9");
        assert_eq!(a.auth, Some(("authorization", "Bearer sk-0".to_string())));
        assert_eq!(a.key_id.as_deref(), Some("k0"));
        assert!(!a.rewrite_body);
        let b = plan_attempt(&p, "/v1/chat/completions", Some("m1"), None).unwrap();
        assert_eq!(b.key_id.as_deref(), Some("k1"));
    }

    #[test]
    fn body_rewrite_only_when_needed() {
        let p = plan("[]");
        assert!(
            plan_attempt(&p, "/v1/chat/completions", Some("m0"), None)
                .unwrap()
                .rewrite_body
        );
        assert!(
            plan_attempt(
                &p,
                "/v1/chat/completions",
                Some("m1"),
                Some(StreamMode::Plain)
            )
            .unwrap()
            .rewrite_body
        );
        assert!(
            !plan_attempt(
                &p,
                "/v1/chat/completions",
                Some("m1"),
                Some(StreamMode::WithUsage)
            )
            .unwrap()
            .rewrite_body
        );
        assert!(
            !plan_attempt(&p, "/v1/embeddings", Some("m1"), Some(StreamMode::Plain))
                .unwrap()
                .rewrite_body
        );
        let out = rewrite_body(
            &p,
            "/v1/chat/completions",
            Some("m0"),
            Some(StreamMode::Plain),
            br#"{"model":"fast","stream":true}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            out,
            br#"{"model":"deepseek-chat","stream":true,"stream_options":{"include_usage":true}}"#
        );
    }

    #[test]
    fn keyless_providers_send_no_auth() {
        let a = plan_attempt(&plan("[]"), "/v1/embeddings", None, None).unwrap();
        assert_eq!((a.auth, a.key_id), (None, None));
    }

    #[test]
    fn unresolved_keys_are_503() {
        let cfg: ProviderConfig =
            parse_json(br#"{"name":"x","kind":"openai-compatible","baseUrl":"http://h","keys":[{"id":"k","env":"UNSET"}]}"#).unwrap();
        let p = cfg.compile(&|_| None).unwrap();
        let e = plan_attempt(&p, "/v1/chat/completions", None, None).unwrap_err();
        assert_eq!((e.status, e.code), (503, "provider_key_unavailable"));
    }

    fn rewritten(p: &ProviderPlan, status: u16, ct: &str, body: &str) -> (u16, Value) {
        let (s, b) = rewrite_error(p, status, Some(ct), body.as_bytes());
        (s, serde_json::from_slice(&b).unwrap())
    }

    #[test]
    fn provider_errors_become_openai_envelopes() {
        let p = plan(r#"[{"id":"k0","value":"sk-secret-key"}]"#);
        let (s, v) = rewritten(
            &p,
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
            404,
            "application/json",
            r#"{"error":"model 'x' not found"}"#,
        );
        assert_eq!(v["error"]["message"], "model 'x' not found");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        let (_, v) = rewritten(
            &p,
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
            422,
            "application/json",
            r#"{"detail":[{"loc":["body"],"msg":"x"}]}"#,
        );
        assert!(v["error"]["message"].as_str().unwrap().contains("loc"));
    }

    #[test]
    fn html_and_empty_bodies_get_a_gateway_message() {
        let p = plan("[]");
        let (s, v) = rewritten(
            &p,
            502,
            "text/html",
            "<html><body>Bad Gateway</body></html>",
        );
        assert_eq!(s, 502);
        assert_eq!(v["error"]["message"], "provider ds returned HTTP 502");
        assert_eq!(v["error"]["type"], "server_error");
        let (_, v) = rewritten(&p, 500, "text/plain", "");
        assert_eq!(v["error"]["message"], "provider ds returned HTTP 500");
        let (_, v) = rewritten(&p, 503, "text/plain", "overloaded, try later");
        assert_eq!(v["error"]["message"], "overloaded, try later");
    }

    #[test]
    fn auth_failures_hide_the_providers_message_and_become_502() {
        let p = plan(r#"[{"id":"k0","value":"sk-secret-key"}]"#);
        let (s, b) = rewrite_error(
            &p,
            401,
            Some("application/json"),
            br#"{"error":{"message":"Incorrect API key provided: sk-secret-key"}}"#,
        );
        assert_eq!(s, 502);
        assert!(!String::from_utf8_lossy(&b).contains("sk-secret"));
    }

    #[test]
    fn echoed_keys_are_redacted() {
        let p = plan(r#"[{"id":"k0","value":"sk-secret-key"}]"#);
        let (_, b) = rewrite_error(
            &p,
            400,
            Some("application/json"),
            br#"{"error":{"message":"key sk-secret-key cannot do that"}}"#,
        );
        let text = String::from_utf8_lossy(&b);
        assert!(!text.contains("sk-secret-key"));
        assert!(text.contains("[redacted]"));
    }
}
