//! OpenAI wire format: request parsing and response building.
//!
//! Everything here is pure: bytes or typed values in, bytes out. The server glue in
//! `service.rs` decides *which* of these to send and *when*.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::json;
use crate::reply::{
    count_words, Content, Finish, Output, TOOL_CALL_ARGUMENTS, TOOL_CALL_FRAGMENTS,
};

/// Id of the tool call in a programmed tool-call reply.
pub const TOOL_CALL_ID: &str = "call_mock_1";

/// The parts of a chat completions request the mock looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatRequest {
    pub model: String,
    pub stream: bool,
    pub include_usage: bool,
    /// `max_completion_tokens`, or else `max_tokens`.
    pub max_tokens: Option<u64>,
    pub prompt_tokens: u64,
}

#[derive(Deserialize)]
struct RawChatRequest {
    #[serde(default)]
    model: Option<Value>,
    #[serde(default)]
    messages: Option<Vec<RawMessage>>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<RawStreamOptions>,
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    max_completion_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct RawMessage {
    #[serde(default)]
    content: Option<Value>,
}

#[derive(Deserialize)]
struct RawStreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

/// The deployment of an Azure OpenAI path, `…/openai/deployments/{deployment}/…`.
pub fn azure_deployment(path: &str) -> Option<&str> {
    const MARKER: &str = "/openai/deployments/";
    let start = path.find(MARKER)? + MARKER.len();
    let deployment = path[start..].split('/').next()?;
    (!deployment.is_empty()).then_some(deployment)
}

/// The model: the Azure deployment when there is one (a `model` in the body is then
/// ignored, as Azure does), else the body's required `model`.
fn model_of(body_model: Option<Value>, deployment: Option<&str>) -> Result<String, String> {
    match deployment {
        Some(deployment) => Ok(deployment.to_owned()),
        None => required_model(body_model),
    }
}

/// Parse a chat completions request body; `deployment` is the Azure deployment of the path,
/// if any. The error is a message for the client.
pub fn parse_chat_request(body: &[u8], deployment: Option<&str>) -> Result<ChatRequest, String> {
    let raw: RawChatRequest =
        serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))?;
    let model = model_of(raw.model, deployment)?;
    let prompt_tokens = raw
        .messages
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|m| message_words(m.content.as_ref()) + 1)
        .sum();
    Ok(ChatRequest {
        model,
        stream: raw.stream.unwrap_or(false),
        include_usage: raw
            .stream_options
            .and_then(|o| o.include_usage)
            .unwrap_or(false),
        max_tokens: raw.max_completion_tokens.or(raw.max_tokens),
        prompt_tokens,
    })
}

fn required_model(model: Option<Value>) -> Result<String, String> {
    match model {
        Some(Value::String(m)) if !m.is_empty() => Ok(m),
        Some(Value::String(_)) => Err("'model' must not be empty".to_owned()),
        Some(Value::Null) | None => {
            Err("you must provide a model parameter ('model' is missing)".to_owned())
        }
        Some(_) => Err("'model' must be a string".to_owned()),
    }
}

/// Whitespace-separated words in a message's text content: a string, or the `text` of the
/// parts whose `type` is `text`. Anything else counts zero.
fn message_words(content: Option<&Value>) -> u64 {
    match content {
        Some(Value::String(s)) => count_words(s),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter(|p| p.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .map(count_words)
            .sum(),
        _ => 0,
    }
}

/// Token usage as OpenAI reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

impl Usage {
    pub fn new(prompt_tokens: u64, completion_tokens: u64) -> Self {
        Self {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
        }
    }
}

/// Everything needed to render one chat reply, streamed or not.
#[derive(Debug, Clone)]
pub struct ChatReply {
    pub id: String,
    pub created: u64,
    pub model: String,
    /// The text chunks actually produced (after any `max_tokens` cut), or the tool call.
    pub output: Output,
    /// `None` when the usage is to be omitted entirely.
    pub usage: Option<Usage>,
}

impl ChatReply {
    /// The reply to `request` saying `output` (built with the request's max tokens).
    pub fn new(
        id: String,
        created: u64,
        request: &ChatRequest,
        output: Output,
        omit_usage: bool,
    ) -> Self {
        let usage =
            (!omit_usage).then(|| Usage::new(request.prompt_tokens, output.completion_tokens()));
        Self {
            id,
            created,
            model: request.model.clone(),
            output,
            usage,
        }
    }

    /// `stop`, `length` or `tool_calls`.
    pub fn finish_reason(&self) -> &'static str {
        match self.output.finish {
            Finish::Stop => "stop",
            Finish::MaxTokens => "length",
            Finish::ToolCall => "tool_calls",
        }
    }

    fn tool_name(&self) -> Option<&str> {
        match &self.output.content {
            Content::ToolCall(name) => Some(name),
            Content::Text(_) => None,
        }
    }
}

#[derive(Serialize)]
struct Completion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [CompletionChoice<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
}

#[derive(Serialize)]
struct CompletionChoice<'a> {
    index: u32,
    message: AssistantMessage<'a>,
    finish_reason: &'a str,
    logprobs: Option<()>,
}

#[derive(Serialize)]
struct AssistantMessage<'a> {
    role: &'static str,
    /// `null` when the reply is a tool call.
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolCall<'a>; 1]>,
}

#[derive(Serialize)]
struct ToolCall<'a> {
    id: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionCall<'a>,
}

#[derive(Serialize)]
struct FunctionCall<'a> {
    name: &'a str,
    arguments: &'static str,
}

/// A non-streaming `chat.completion` object: the text as `message.content`, or a tool call
/// as `message.tool_calls[0]` with `content: null`.
pub fn completion_json(reply: &ChatReply) -> Bytes {
    let text = reply.output.text();
    let tool_name = reply.tool_name();
    let body = Completion {
        id: &reply.id,
        object: "chat.completion",
        created: reply.created,
        model: &reply.model,
        choices: [CompletionChoice {
            index: 0,
            message: AssistantMessage {
                role: "assistant",
                content: tool_name.is_none().then_some(text.as_str()),
                tool_calls: tool_name.map(|name| {
                    [ToolCall {
                        id: TOOL_CALL_ID,
                        kind: "function",
                        function: FunctionCall {
                            name,
                            arguments: TOOL_CALL_ARGUMENTS,
                        },
                    }]
                }),
            },
            finish_reason: reply.finish_reason(),
            logprobs: None,
        }],
        usage: reply.usage,
    };
    json::to_bytes(&body)
}

#[derive(Serialize)]
struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: &'a [ChunkChoice<'a>],
    /// Absent: no `usage` key. `Some(None)`: `"usage":null`. `Some(Some(u))`: the usage.
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Option<Usage>>,
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    finish_reason: Option<&'a str>,
    logprobs: Option<()>,
}

#[derive(Serialize, Default)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    /// Absent: no `content` key. `Some(None)`: `"content":null`.
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[DeltaToolCall<'a>; 1]>,
}

#[derive(Serialize)]
struct DeltaToolCall<'a> {
    index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'static str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    function: DeltaFunction<'a>,
}

#[derive(Serialize)]
struct DeltaFunction<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'a str,
}

/// The terminating event of an OpenAI stream.
pub const DONE_EVENT: &[u8] = b"data: [DONE]\n\n";

/// Every event of a streamed reply, each framed `data: <json>\n\n`, ending with `[DONE]`:
/// the role chunk, one chunk per word, the finish chunk, then (only when the client asked for
/// `include_usage` and usage is not omitted) the usage chunk with `"choices":[]`. When the
/// usage chunk is sent, every other chunk carries `"usage":null`, as OpenAI does.
///
/// A tool call is streamed as OpenAI does: the role chunk also opens the call (`id`, `type`,
/// `function.name`, empty `arguments`, `content: null`), then one chunk per argument
/// fragment, then the finish chunk (`tool_calls`).
pub fn stream_events(reply: &ChatReply, include_usage: bool) -> Vec<Bytes> {
    let usage = if include_usage { reply.usage } else { None };
    let null_usage = usage.map(|_| None);
    let chunk = |choices: &[ChunkChoice<'_>], usage: Option<Option<Usage>>| {
        sse_event(&Chunk {
            id: &reply.id,
            object: "chat.completion.chunk",
            created: reply.created,
            model: &reply.model,
            choices,
            usage,
        })
    };
    let choice = |delta, finish_reason| ChunkChoice {
        index: 0,
        delta,
        finish_reason,
        logprobs: None,
    };
    let arguments = |arguments| {
        Some([DeltaToolCall {
            index: 0,
            id: None,
            kind: None,
            function: DeltaFunction {
                name: None,
                arguments,
            },
        }])
    };

    let mut events = Vec::with_capacity(8);
    match &reply.output.content {
        Content::Text(words) => {
            let role = Delta {
                role: Some("assistant"),
                content: Some(Some("")),
                ..Delta::default()
            };
            events.push(chunk(&[choice(role, None)], null_usage));
            for word in words {
                let delta = Delta {
                    content: Some(Some(word)),
                    ..Delta::default()
                };
                events.push(chunk(&[choice(delta, None)], null_usage));
            }
        }
        Content::ToolCall(name) => {
            let open = Delta {
                role: Some("assistant"),
                content: Some(None),
                tool_calls: Some([DeltaToolCall {
                    index: 0,
                    id: Some(TOOL_CALL_ID),
                    kind: Some("function"),
                    function: DeltaFunction {
                        name: Some(name),
                        arguments: "",
                    },
                }]),
            };
            events.push(chunk(&[choice(open, None)], null_usage));
            for fragment in TOOL_CALL_FRAGMENTS {
                let delta = Delta {
                    tool_calls: arguments(fragment),
                    ..Delta::default()
                };
                events.push(chunk(&[choice(delta, None)], null_usage));
            }
        }
    }
    events.push(chunk(
        &[choice(Delta::default(), Some(reply.finish_reason()))],
        null_usage,
    ));
    if let Some(usage) = usage {
        events.push(chunk(&[], Some(Some(usage))));
    }
    events.push(Bytes::from_static(DONE_EVENT));
    events
}

fn sse_event<T: Serialize>(value: &T) -> Bytes {
    json::framed(b"data: ", value, b"\n\n")
}

/// The error type OpenAI uses for a status.
pub fn error_type(status: u16) -> &'static str {
    match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        500..=599 => "server_error",
        _ => "api_error",
    }
}

#[derive(Serialize)]
struct ErrorEnvelope<'a> {
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<()>,
    code: Option<()>,
}

/// `{"error":{"message":...,"type":...,"param":null,"code":null}}`
pub fn error_json(message: &str, kind: &str) -> Bytes {
    json::to_bytes(&ErrorEnvelope {
        error: ErrorBody {
            message,
            kind,
            param: None,
            code: None,
        },
    })
}

/// The parts of an embeddings request the mock looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddingsRequest {
    pub model: String,
    pub inputs: Vec<String>,
}

#[derive(Deserialize)]
struct RawEmbeddingsRequest {
    #[serde(default)]
    model: Option<Value>,
    #[serde(default)]
    input: Option<Value>,
}

/// Parse an embeddings request: `input` is a string or an array of strings.
/// `deployment` is the Azure deployment of the path, if any (it is then the model).
pub fn parse_embeddings_request(
    body: &[u8],
    deployment: Option<&str>,
) -> Result<EmbeddingsRequest, String> {
    let raw: RawEmbeddingsRequest =
        serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))?;
    let model = model_of(raw.model, deployment)?;
    let inputs = match raw.input {
        Some(Value::String(s)) => vec![s],
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s),
                _ => Err("'input' must be a string or an array of strings".to_owned()),
            })
            .collect::<Result<_, _>>()?,
        Some(Value::Null) | None => {
            return Err("you must provide an input parameter ('input' is missing)".to_owned())
        }
        Some(_) => return Err("'input' must be a string or an array of strings".to_owned()),
    };
    Ok(EmbeddingsRequest { model, inputs })
}

/// Dimensions of every mock embedding.
pub const EMBEDDING_DIMENSIONS: usize = 8;

/// A deterministic embedding of `text`: FNV-1a 64 of the UTF-8 bytes seeds SplitMix64, whose
/// first 8 outputs `x` become `(x >> 40) / 2^24 * 2 - 1`, a float in `[-1, 1)` exactly
/// representable in an `f32`.
pub fn embedding(text: &str) -> [f64; EMBEDDING_DIMENSIONS] {
    let mut state = fnv1a64(text.as_bytes());
    let mut out = [0.0; EMBEDDING_DIMENSIONS];
    for slot in &mut out {
        let x = splitmix64(&mut state);
        *slot = (x >> 40) as f64 / f64::from(1u32 << 24) * 2.0 - 1.0;
    }
    out
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[derive(Serialize)]
struct EmbeddingsResponse<'a> {
    object: &'static str,
    data: Vec<EmbeddingItem>,
    model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<EmbeddingsUsage>,
}

#[derive(Serialize)]
struct EmbeddingItem {
    object: &'static str,
    index: usize,
    embedding: [f64; EMBEDDING_DIMENSIONS],
}

#[derive(Serialize)]
struct EmbeddingsUsage {
    prompt_tokens: u64,
    total_tokens: u64,
}

/// The embeddings response; `prompt_tokens` counts whitespace words over all inputs.
pub fn embeddings_json(request: &EmbeddingsRequest, omit_usage: bool) -> Bytes {
    let tokens = request.inputs.iter().map(|s| count_words(s)).sum();
    json::to_bytes(&EmbeddingsResponse {
        object: "list",
        data: request
            .inputs
            .iter()
            .enumerate()
            .map(|(index, text)| EmbeddingItem {
                object: "embedding",
                index,
                embedding: embedding(text),
            })
            .collect(),
        model: &request.model,
        usage: (!omit_usage).then_some(EmbeddingsUsage {
            prompt_tokens: tokens,
            total_tokens: tokens,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(body: Value) -> ChatRequest {
        parse_chat_request(body.to_string().as_bytes(), None).unwrap()
    }

    fn reply_for(req: &ChatRequest, chunks: Option<usize>, omit_usage: bool) -> ChatReply {
        let output = Output::new("m1", &req.model, chunks, None, req.max_tokens);
        ChatReply::new(
            "chatcmpl-m1-1".into(),
            1_700_000_000,
            req,
            output,
            omit_usage,
        )
    }

    fn tool_reply_for(req: &ChatRequest) -> ChatReply {
        let output = Output::new("m1", &req.model, None, Some("get_weather"), req.max_tokens);
        ChatReply::new("chatcmpl-m1-1".into(), 1_700_000_000, req, output, false)
    }

    fn event_json(event: &Bytes) -> Value {
        let text = std::str::from_utf8(event).unwrap();
        let payload = text
            .strip_prefix("data: ")
            .and_then(|t| t.strip_suffix("\n\n"))
            .unwrap_or_else(|| panic!("badly framed event {text:?}"));
        assert!(!payload.contains('\n'), "event spans lines: {text:?}");
        serde_json::from_str(payload).unwrap()
    }

    #[test]
    fn prompt_tokens_count_words_of_text_content_plus_one_per_message() {
        let req = request(json!({
            "model": "gpt-4o",
            "messages": [
                {"role": "system", "content": "be  brief\n please"},
                {"role": "user", "content": [
                    {"type": "text", "text": "describe this"},
                    {"type": "image_url", "image_url": {"url": "http://x/y z"}},
                    {"type": "text", "text": "now"}
                ]},
                {"role": "assistant", "content": null, "tool_calls": []}
            ]
        }));
        assert_eq!(req.prompt_tokens, (3 + 1) + (3 + 1) + 1);
        assert_eq!(req.model, "gpt-4o");
        assert!(!req.stream);
        assert!(!req.include_usage);
    }

    #[test]
    fn max_completion_tokens_wins_over_max_tokens() {
        let req = request(json!({"model": "m", "max_tokens": 9, "max_completion_tokens": 3}));
        assert_eq!(req.max_tokens, Some(3));
        let req = request(json!({"model": "m", "max_tokens": 9}));
        assert_eq!(req.max_tokens, Some(9));
    }

    #[test]
    fn invalid_json_and_missing_model_are_rejected() {
        assert!(parse_chat_request(b"{not json", None).is_err());
        assert!(parse_chat_request(b"{\"messages\":[]}", None)
            .unwrap_err()
            .contains("model"));
        assert!(parse_chat_request(b"{\"model\":5}", None).is_err());
        assert!(parse_chat_request(b"", None).is_err());
    }

    #[test]
    fn azure_deployment_is_the_model_and_the_body_model_is_ignored() {
        let path = "/openai/deployments/gpt4o-prod/chat/completions";
        let deployment = azure_deployment(path);
        assert_eq!(deployment, Some("gpt4o-prod"));
        assert_eq!(
            azure_deployment("/x/openai/deployments/d1/embeddings"),
            Some("d1")
        );
        assert_eq!(
            azure_deployment("/openai/deployments//chat/completions"),
            None
        );
        assert_eq!(azure_deployment("/v1/chat/completions"), None);
        let req = parse_chat_request(br#"{"messages":[]}"#, deployment).unwrap();
        assert_eq!(req.model, "gpt4o-prod");
        let req = parse_chat_request(br#"{"model":"other"}"#, deployment).unwrap();
        assert_eq!(req.model, "gpt4o-prod");
        let req = parse_embeddings_request(br#"{"input":"a"}"#, Some("emb")).unwrap();
        assert_eq!(req.model, "emb");
    }

    #[test]
    fn non_streaming_completion_has_the_openai_shape() {
        let req = request(
            json!({"model": "gpt-x", "messages": [{"role": "user", "content": "hi there"}]}),
        );
        let reply = reply_for(&req, None, false);
        let body: Value = serde_json::from_slice(&completion_json(&reply)).unwrap();
        assert_eq!(
            body,
            json!({
                "id": "chatcmpl-m1-1",
                "object": "chat.completion",
                "created": 1_700_000_000,
                "model": "gpt-x",
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": "Hello from m1! You asked gpt-x."},
                    "finish_reason": "stop",
                    "logprobs": null
                }],
                "usage": {"prompt_tokens": 3, "completion_tokens": 6, "total_tokens": 9}
            })
        );
    }

    #[test]
    fn omitted_usage_leaves_no_usage_key() {
        let req = request(json!({"model": "m"}));
        let body: Value =
            serde_json::from_slice(&completion_json(&reply_for(&req, None, true))).unwrap();
        assert!(body.get("usage").is_none());
    }

    #[test]
    fn max_tokens_cuts_the_reply_with_finish_reason_length() {
        let req = request(json!({"model": "m", "max_tokens": 2}));
        let reply = reply_for(&req, None, false);
        assert_eq!(reply.output.text(), "Hello from");
        assert_eq!(reply.finish_reason(), "length");
        assert_eq!(reply.usage, Some(Usage::new(0, 2)));
    }

    #[test]
    fn stream_without_include_usage_has_no_usage_key_anywhere() {
        let req = request(json!({"model": "gpt-x", "stream": true}));
        let events = stream_events(&reply_for(&req, None, false), false);
        // role + 6 words + finish + [DONE]
        assert_eq!(events.len(), 9);
        assert_eq!(events.last().unwrap().as_ref(), DONE_EVENT);
        for event in &events[..events.len() - 1] {
            let chunk = event_json(event);
            assert!(chunk.get("usage").is_none(), "{chunk}");
            assert_eq!(chunk["object"], "chat.completion.chunk");
            assert_eq!(chunk["id"], "chatcmpl-m1-1");
            assert_eq!(chunk["model"], "gpt-x");
            assert_eq!(chunk["created"], 1_700_000_000);
        }
        assert_eq!(
            event_json(&events[0])["choices"],
            json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null, "logprobs": null}])
        );
        let text: String = events[1..7]
            .iter()
            .map(|e| {
                event_json(e)["choices"][0]["delta"]["content"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(text, "Hello from m1! You asked gpt-x.");
        assert_eq!(
            event_json(&events[7])["choices"],
            json!([{"index": 0, "delta": {}, "finish_reason": "stop", "logprobs": null}])
        );
    }

    #[test]
    fn stream_with_include_usage_nulls_usage_then_sends_a_usage_chunk() {
        let req = request(json!({
            "model": "gpt-x", "stream": true, "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "one two three"}]
        }));
        assert!(req.include_usage);
        let events = stream_events(&reply_for(&req, Some(2), false), true);
        // role + 2 words + finish + usage + [DONE]
        assert_eq!(events.len(), 6);
        for event in &events[..4] {
            let chunk = event_json(event);
            assert_eq!(chunk.get("usage"), Some(&Value::Null), "{chunk}");
            assert_eq!(chunk["choices"].as_array().unwrap().len(), 1);
        }
        let usage = event_json(&events[4]);
        assert_eq!(usage["choices"], json!([]));
        assert_eq!(
            usage["usage"],
            json!({"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6})
        );
        assert_eq!(events[5].as_ref(), b"data: [DONE]\n\n");
    }

    #[test]
    fn stream_with_omitted_usage_ignores_include_usage() {
        let req = request(
            json!({"model": "m", "stream": true, "stream_options": {"include_usage": true}}),
        );
        let events = stream_events(&reply_for(&req, Some(0), true), true);
        // role + finish + [DONE]
        assert_eq!(events.len(), 3);
        for event in &events[..2] {
            assert!(event_json(event).get("usage").is_none());
        }
    }

    #[test]
    fn tool_call_completion_has_the_openai_shape() {
        let req = request(json!({"model": "gpt-x", "max_tokens": 1,
            "messages": [{"role": "user", "content": "weather?"}]}));
        let body: Value = serde_json::from_slice(&completion_json(&tool_reply_for(&req))).unwrap();
        assert_eq!(
            body["choices"],
            json!([{
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": null,
                    "tool_calls": [{
                        "id": "call_mock_1",
                        "type": "function",
                        "function": {
                            "name": "get_weather",
                            "arguments": "{\"location\":\"Paris\",\"unit\":\"celsius\"}"
                        }
                    }]
                },
                "finish_reason": "tool_calls",
                "logprobs": null
            }])
        );
        assert_eq!(
            body["usage"],
            json!({"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5})
        );
    }

    #[test]
    fn tool_call_streams_as_an_opening_chunk_then_three_argument_fragments() {
        let req = request(json!({"model": "gpt-x", "stream": true}));
        let events = stream_events(&tool_reply_for(&req), false);
        // open + 3 fragments + finish + [DONE]
        assert_eq!(events.len(), 6);
        let delta = |i: usize| event_json(&events[i])["choices"][0]["delta"].clone();
        assert_eq!(
            delta(0),
            json!({"role": "assistant", "content": null, "tool_calls": [{
                "index": 0, "id": "call_mock_1", "type": "function",
                "function": {"name": "get_weather", "arguments": ""}}]})
        );
        let fragments: Vec<Value> = (1..4).map(delta).collect();
        assert_eq!(
            fragments,
            [
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"location\":"}}]}),
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\",\"unit\":"}}]}),
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"celsius\"}"}}]}),
            ]
        );
        assert_eq!(
            event_json(&events[4])["choices"],
            json!([{"index": 0, "delta": {}, "finish_reason": "tool_calls", "logprobs": null}])
        );
        assert_eq!(events[5].as_ref(), DONE_EVENT);
    }

    #[test]
    fn error_envelope_and_types() {
        let body: Value =
            serde_json::from_slice(&error_json("mock error 429", error_type(429))).unwrap();
        assert_eq!(
            body,
            json!({"error": {"message": "mock error 429", "type": "rate_limit_error", "param": null, "code": null}})
        );
        assert_eq!(error_type(400), "invalid_request_error");
        assert_eq!(error_type(401), "authentication_error");
        assert_eq!(error_type(403), "permission_error");
        assert_eq!(error_type(404), "not_found_error");
        assert_eq!(error_type(503), "server_error");
        assert_eq!(error_type(418), "api_error");
    }

    #[test]
    fn embeddings_are_deterministic_and_count_words() {
        let req = parse_embeddings_request(br#"{"model":"e","input":["a b","c"]}"#, None).unwrap();
        let body: Value = serde_json::from_slice(&embeddings_json(&req, false)).unwrap();
        assert_eq!(body["object"], "list");
        assert_eq!(body["model"], "e");
        assert_eq!(
            body["usage"],
            json!({"prompt_tokens": 3, "total_tokens": 3})
        );
        assert_eq!(body["data"][1]["index"], 1);
        let first = body["data"][0]["embedding"].as_array().unwrap();
        assert_eq!(first.len(), EMBEDDING_DIMENSIONS);
        assert!(first
            .iter()
            .all(|v| (-1.0..1.0).contains(&v.as_f64().unwrap())));
        assert_eq!(embedding("a b"), embedding("a b"));
        assert_ne!(embedding("a b"), embedding("c"));

        let single = parse_embeddings_request(br#"{"model":"e","input":"hello"}"#, None).unwrap();
        assert_eq!(single.inputs, ["hello"]);
        assert!(parse_embeddings_request(br#"{"model":"e","input":[1,2]}"#, None).is_err());
        assert!(parse_embeddings_request(br#"{"input":"x"}"#, None).is_err());
    }
}
