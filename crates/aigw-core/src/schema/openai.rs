//! OpenAI request and response shapes: only the fields the gateway reads.
//! Everything else in a body is skipped by serde, never interpreted.

use std::borrow::Cow;

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::estimate::{PromptSize, PromptTokens};
use crate::headers::StreamMode;

/// The few request fields the router needs. Serde still checks that the whole
/// body is well-formed JSON, and rejects a duplicated `model` or `stream`, so
/// the gateway and the provider can never read different values.
///
/// `P` reads the prompt fields: [`PromptSize`] estimates their tokens, and
/// the default, [`IgnoredAny`], skips them (nothing to count when no token
/// budget is at stake).
#[derive(Debug, Deserialize)]
#[serde(bound = "P: Deserialize<'de>")]
pub struct RequestPeek<'a, P = IgnoredAny> {
    #[serde(borrow, default)]
    pub model: Option<Cow<'a, str>>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub stream_options: Option<StreamOptionsPeek>,
    /// Output limits (`max_tokens` is also Anthropic's), for quota reservations.
    #[serde(default)]
    pub max_tokens: Option<serde_json::Value>,
    #[serde(default)]
    pub max_completion_tokens: Option<serde_json::Value>,
    /// Choices asked for: each may use up to the output limit.
    #[serde(default)]
    pub n: Option<serde_json::Value>,
    /// The prompt, estimated in tokens (OpenAI and Anthropic fields).
    #[serde(default)]
    pub messages: Option<P>,
    #[serde(default)]
    pub system: Option<P>,
    #[serde(default)]
    pub input: Option<P>,
    #[serde(default)]
    pub prompt: Option<P>,
    #[serde(default)]
    pub tools: Option<P>,
}

#[derive(Debug, Deserialize)]
pub struct StreamOptionsPeek {
    #[serde(default)]
    pub include_usage: Option<bool>,
}

/// What the router takes from a request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSummary {
    pub model: String,
    pub stream: Option<StreamMode>,
    /// Estimated tokens of the prompt (see [`crate::estimate`]); 0 unless
    /// asked for ([`summarize_request_with_estimate`]).
    pub prompt_tokens: u64,
    /// The output limit the client set (`max_completion_tokens`, else `max_tokens`).
    pub max_output_tokens: Option<u64>,
    /// How many choices the client asked for (`n`, at least 1).
    pub choices: u64,
}

/// Longest model name accepted (longer is a client error, not a lookup).
pub const MAX_MODEL_LEN: usize = 256;

/// Reads `model`, `stream` and the output limits from a request body.
pub fn summarize_request(body: &[u8]) -> Result<RequestSummary, ApiError> {
    summarize::<IgnoredAny>(body)
}

/// As [`summarize_request`], with an estimate of the prompt's tokens (a
/// walk over its text: only worth it when a token budget is at stake).
pub fn summarize_request_with_estimate(body: &[u8]) -> Result<RequestSummary, ApiError> {
    summarize::<PromptSize>(body)
}

fn summarize<P>(body: &[u8]) -> Result<RequestSummary, ApiError>
where
    P: for<'de> Deserialize<'de> + PromptTokens,
{
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(ApiError::bad_request(
            "invalid_json",
            "request body must be a JSON object",
        ));
    }
    let peek: RequestPeek<'_, P> = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(
            "invalid_json",
            format!("request body is not valid JSON: {e}"),
        )
    })?;
    let model = match peek.model {
        Some(m) if !m.trim().is_empty() => m,
        Some(_) => {
            return Err(
                ApiError::bad_request("invalid_model", "`model` must not be empty")
                    .with_param("model"),
            )
        }
        None => {
            return Err(ApiError::bad_request(
                "missing_required_parameter",
                "you must provide a model parameter",
            )
            .with_param("model"))
        }
    };
    if model.len() > MAX_MODEL_LEN {
        return Err(ApiError::bad_request(
            "invalid_model",
            format!("`model` is longer than {MAX_MODEL_LEN} bytes"),
        )
        .with_param("model"));
    }
    if model.chars().any(char::is_control) {
        return Err(
            ApiError::bad_request("invalid_model", "`model` contains control characters")
                .with_param("model"),
        );
    }
    let stream = match peek.stream {
        Some(true) => {
            let with_usage = peek
                .stream_options
                .and_then(|o| o.include_usage)
                .unwrap_or(false);
            Some(if with_usage {
                StreamMode::WithUsage
            } else {
                StreamMode::Plain
            })
        }
        _ => None,
    };
    let prompt_tokens = [
        peek.messages,
        peek.system,
        peek.input,
        peek.prompt,
        peek.tools,
    ]
    .iter()
    .flatten()
    .fold(0u64, |n, p| n.saturating_add(p.tokens()));
    Ok(RequestSummary {
        model: model.into_owned(),
        stream,
        prompt_tokens,
        max_output_tokens: count(peek.max_completion_tokens.as_ref())
            .or(count(peek.max_tokens.as_ref())),
        choices: count(peek.n.as_ref()).unwrap_or(1).max(1),
    })
}

/// A count the client gave as a JSON number; anything else (negative,
/// fractional, a string) is the provider's to reject, and counts as not given.
fn count(v: Option<&serde_json::Value>) -> Option<u64> {
    v.and_then(serde_json::Value::as_u64)
}

/// One entry of `GET /v1/models`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ModelObject {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub owned_by: String,
}

impl ModelObject {
    pub fn new(id: impl Into<String>, owned_by: impl Into<String>) -> Self {
        ModelObject {
            id: id.into(),
            object: "model",
            created: 0,
            owned_by: owned_by.into(),
        }
    }
}

#[derive(Serialize)]
struct ModelList<'a> {
    object: &'static str,
    data: &'a [ModelObject],
}

/// The `GET /v1/models` body: `{"object":"list","data":[...]}`.
pub fn model_list_body(models: &[ModelObject]) -> Vec<u8> {
    serde_json::to_vec(&ModelList {
        object: "list",
        data: models,
    })
    .unwrap_or_else(|_| br#"{"object":"list","data":[]}"#.to_vec())
}

/// The `GET /v1/models/{id}` body.
pub fn model_body(model: &ModelObject) -> Vec<u8> {
    serde_json::to_vec(model).unwrap_or_else(|_| b"{}".to_vec())
}

/// OpenAI's `usage` object.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct OpenAiUsage {
    #[serde(default)]
    pub prompt_tokens: Option<u64>,
    #[serde(default)]
    pub completion_tokens: Option<u64>,
    #[serde(default)]
    pub total_tokens: Option<u64>,
    #[serde(default)]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
    #[serde(default)]
    pub completion_tokens_details: Option<CompletionTokensDetails>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct PromptTokensDetails {
    #[serde(default)]
    pub cached_tokens: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct CompletionTokensDetails {
    #[serde(default)]
    pub reasoning_tokens: Option<u64>,
}

/// A response body or stream chunk, for its `usage` and `choices` only.
/// `usage` is `None` when absent, `Some(None)` when `null`.
#[derive(Debug, Deserialize)]
pub struct UsagePeek {
    #[serde(default, deserialize_with = "present")]
    pub usage: Option<Option<OpenAiUsage>>,
    #[serde(default)]
    pub choices: Option<Vec<serde::de::IgnoredAny>>,
}

fn present<'de, D>(d: D) -> Result<Option<Option<OpenAiUsage>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Option::<OpenAiUsage>::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_reads_model_and_stream_modes() {
        let s = summarize_request(
            br#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#,
        )
        .unwrap();
        assert_eq!(
            s,
            RequestSummary {
                model: "gpt-4o-mini".into(),
                stream: None,
                prompt_tokens: 0,
                max_output_tokens: None,
                choices: 1,
            }
        );
        let s = summarize_request(br#"{"model":"m","stream":true}"#).unwrap();
        assert_eq!(s.stream, Some(StreamMode::Plain));
        let s = summarize_request(
            br#"{"stream_options":{"include_usage":true},"model":"m","stream":true}"#,
        )
        .unwrap();
        assert_eq!(s.stream, Some(StreamMode::WithUsage));
        let s = summarize_request(
            br#"{"model":"m","stream":false,"stream_options":{"include_usage":true}}"#,
        )
        .unwrap();
        assert_eq!(s.stream, None);
        let s = summarize_request(br#"{"model":"a\/b\u00e9"}"#).unwrap();
        assert_eq!(s.model, "a/bé");
    }

    #[test]
    fn summary_reads_what_a_quota_reservation_needs() {
        let hi = br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
        // "user" (1) + "hi" (1) + one message object (3); not counted unless asked.
        assert_eq!(
            summarize_request_with_estimate(hi).unwrap().prompt_tokens,
            5
        );
        assert_eq!(summarize_request(hi).unwrap().prompt_tokens, 0);
        let s = summarize_request_with_estimate(
            br#"{"model":"m","system":"Be brief.","messages":[{"role":"user","content":"hello there"}],
                "tools":[{"type":"function","function":{"name":"f"}}],"max_tokens":100,"n":2}"#,
        )
        .unwrap();
        assert_eq!(s.max_output_tokens, Some(100));
        assert_eq!(s.choices, 2);
        assert!(
            s.prompt_tokens > 5 && s.prompt_tokens < 30,
            "{}",
            s.prompt_tokens
        );
        let s = summarize_request_with_estimate(
            br#"{"model":"m","max_tokens":100,"max_completion_tokens":7,"input":["a","b"]}"#,
        )
        .unwrap();
        assert_eq!((s.max_output_tokens, s.prompt_tokens), (Some(7), 2));
        // Out-of-range counts are the provider's to refuse; they reserve the default here.
        let s = summarize_request(br#"{"model":"m","max_tokens":-1,"n":0.5}"#).unwrap();
        assert_eq!((s.max_output_tokens, s.choices), (None, 1));
        let s = summarize_request(br#"{"model":"m","max_tokens":"100","n":null}"#).unwrap();
        assert_eq!((s.max_output_tokens, s.choices), (None, 1));
    }

    #[test]
    fn malformed_bodies_are_400_with_a_reason() {
        for (body, code) in [
            (&b"not json"[..], "invalid_json"),
            (b"[1,2]", "invalid_json"),
            (b"", "invalid_json"),
            (br#"{"model":"m""#, "invalid_json"),
            (br#"{"model":"m"} trailing"#, "invalid_json"),
            (br#"{"model":3}"#, "invalid_json"),
            (br#"{"model":"m","model":"n"}"#, "invalid_json"),
            (br#"{"model":"m","stream":"yes"}"#, "invalid_json"),
            (br#"{"messages":[]}"#, "missing_required_parameter"),
            (br#"{"model":" "}"#, "invalid_model"),
            (br#"{"model":"a\nb"}"#, "invalid_model"),
        ] {
            let err = summarize_request(body).unwrap_err();
            assert_eq!(err.status, 400, "{}", String::from_utf8_lossy(body));
            assert_eq!(err.code, code, "{}", String::from_utf8_lossy(body));
        }
        let long = format!(r#"{{"model":"{}"}}"#, "x".repeat(MAX_MODEL_LEN + 1));
        assert_eq!(
            summarize_request(long.as_bytes()).unwrap_err().code,
            "invalid_model"
        );
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let s = summarize_request(
            br#"{"model":"m","tools":[{"type":"function"}],"x":{"y":[1,{"z":null}]}}"#,
        )
        .unwrap();
        assert_eq!(s.model, "m");
    }

    #[test]
    fn usage_peek_distinguishes_absent_null_and_present() {
        let p: UsagePeek = serde_json::from_str(r#"{"choices":[{}]}"#).unwrap();
        assert_eq!(p.usage, None);
        let p: UsagePeek = serde_json::from_str(r#"{"choices":[{}],"usage":null}"#).unwrap();
        assert_eq!(p.usage, Some(None));
        let p: UsagePeek = serde_json::from_str(
            r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8,"prompt_tokens_details":{"cached_tokens":1}}}"#,
        )
        .unwrap();
        let u = p.usage.unwrap().unwrap();
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.total_tokens),
            (Some(3), Some(5), Some(8))
        );
        assert_eq!(u.prompt_tokens_details.unwrap().cached_tokens, Some(1));
        assert_eq!(p.choices.unwrap().len(), 0);
    }

    #[test]
    fn model_list_is_in_openai_shape() {
        let body = model_list_body(&[ModelObject::new("a", "p1"), ModelObject::new("b", "p2")]);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"object":"list","data":[
                {"id":"a","object":"model","created":0,"owned_by":"p1"},
                {"id":"b","object":"model","created":0,"owned_by":"p2"}]})
        );
    }
}
