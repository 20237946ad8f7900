//! Anthropic Messages wire format: request parsing and response building, for
//! `POST …/v1/messages` and `POST …/v1/messages/count_tokens`.
//!
//! Pure like `openai.rs`: bytes or typed values in, bytes out.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::json;
use crate::reply::{
    count_words, Content, Finish, Output, ToolArguments, TOOL_ARGUMENTS, TOOL_CALL_FRAGMENTS,
};

/// Id of the `tool_use` block in a programmed tool-call reply.
pub const TOOL_USE_ID: &str = "toolu_mock_1";

/// The parts of a Messages request the mock looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagesRequest {
    pub model: String,
    pub stream: bool,
    pub max_tokens: u64,
    pub input_tokens: u64,
}

/// The parts of a count_tokens request the mock looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountTokensRequest {
    pub model: String,
    pub input_tokens: u64,
}

/// Every field as a raw value, so that a wrong type gets a message in Anthropic's words
/// (`FIELD: Input should be …`) rather than serde's.
#[derive(Deserialize)]
struct RawRequest {
    #[serde(default)]
    model: Option<Value>,
    #[serde(default)]
    messages: Option<Value>,
    #[serde(default)]
    system: Option<Value>,
    #[serde(default)]
    max_tokens: Option<Value>,
    #[serde(default)]
    stream: Option<Value>,
    #[serde(default)]
    tools: Option<Value>,
}

/// Parse a Messages request: `model`, `messages` and `max_tokens` are required, as Anthropic
/// requires them. The error is a message for the client.
pub fn parse_messages_request(body: &[u8]) -> Result<MessagesRequest, String> {
    let (raw, model, input_tokens) = parse_common(body)?;
    let max_tokens = match raw.max_tokens {
        None | Some(Value::Null) => return Err("max_tokens: Field required".to_owned()),
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or("max_tokens: Input should be a valid integer")?,
        Some(_) => return Err("max_tokens: Input should be a valid integer".to_owned()),
    };
    if max_tokens == 0 {
        return Err("max_tokens: Input should be greater than or equal to 1".to_owned());
    }
    let stream = match raw.stream {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => b,
        Some(_) => return Err("stream: Input should be a valid boolean".to_owned()),
    };
    Ok(MessagesRequest {
        model,
        stream,
        max_tokens,
        input_tokens,
    })
}

/// Parse a count_tokens request: like a Messages request without `max_tokens`.
pub fn parse_count_tokens_request(body: &[u8]) -> Result<CountTokensRequest, String> {
    let (_, model, input_tokens) = parse_common(body)?;
    Ok(CountTokensRequest {
        model,
        input_tokens,
    })
}

/// The checks both endpoints share, and the input token count.
fn parse_common(body: &[u8]) -> Result<(RawRequest, String, u64), String> {
    let raw: RawRequest =
        serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))?;
    let model = match &raw.model {
        None | Some(Value::Null) => return Err("model: Field required".to_owned()),
        Some(Value::String(m)) if m.is_empty() => {
            return Err("model: String should have at least 1 character".to_owned())
        }
        Some(Value::String(m)) => m.clone(),
        Some(_) => return Err("model: Input should be a valid string".to_owned()),
    };
    let messages = match &raw.messages {
        None | Some(Value::Null) => return Err("messages: Field required".to_owned()),
        Some(Value::Array(messages)) => messages,
        Some(_) => return Err("messages: Input should be a valid list".to_owned()),
    };
    let mut input_tokens = 0;
    for (i, message) in messages.iter().enumerate() {
        match message.get("role").and_then(Value::as_str) {
            Some("user" | "assistant") => {}
            Some("system") => {
                return Err(
                    "messages: Unexpected role \"system\". The Messages API accepts a \
                            top-level `system` parameter, not \"system\" as an input message \
                            role."
                        .to_owned(),
                )
            }
            _ => {
                return Err(format!(
                    "messages.{i}.role: Input should be 'user' or 'assistant'"
                ))
            }
        }
        match message.get("content") {
            Some(content @ (Value::String(_) | Value::Array(_))) => {
                input_tokens += content_words(content) + 1;
            }
            None | Some(Value::Null) => {
                return Err(format!("messages.{i}.content: Field required"))
            }
            Some(_) => {
                return Err(format!(
                    "messages.{i}.content: Input should be a valid string or a list of \
                     content blocks"
                ))
            }
        }
    }
    match &raw.system {
        None | Some(Value::Null) => {}
        Some(system @ (Value::String(_) | Value::Array(_))) => {
            input_tokens += content_words(system) + 1;
        }
        Some(_) => {
            return Err(
                "system: Input should be a valid string or a list of text blocks".to_owned(),
            )
        }
    }
    match &raw.tools {
        None | Some(Value::Null | Value::Array(_)) => {}
        Some(_) => return Err("tools: Input should be a valid list".to_owned()),
    }
    Ok((raw, model, input_tokens))
}

/// Whitespace-separated words in a `content` or `system`: a string, or the blocks' text —
/// the `text` of `text` blocks and the content (string or `text` blocks) of `tool_result`
/// blocks. Other blocks (images, documents, `tool_use`, thinking) count zero.
fn content_words(content: &Value) -> u64 {
    match content {
        Value::String(s) => count_words(s),
        Value::Array(blocks) => blocks
            .iter()
            .map(|block| match block.get("type").and_then(Value::as_str) {
                Some("text") => block
                    .get("text")
                    .and_then(Value::as_str)
                    .map_or(0, count_words),
                Some("tool_result") => block.get("content").map_or(0, content_words),
                _ => 0,
            })
            .sum(),
        _ => 0,
    }
}

/// Everything needed to render one Messages reply, streamed or not.
#[derive(Debug, Clone)]
pub struct MessageReply {
    /// `msg_mock_<n>`.
    pub id: String,
    pub model: String,
    pub output: Output,
    pub input_tokens: u64,
    /// Leave `usage` out everywhere (see the README).
    pub omit_usage: bool,
}

impl MessageReply {
    /// `end_turn`, `max_tokens` or `tool_use`.
    pub fn stop_reason(&self) -> &'static str {
        match self.output.finish {
            Finish::Stop => "end_turn",
            Finish::MaxTokens => "max_tokens",
            Finish::ToolCall => "tool_use",
        }
    }

    fn usage(&self, output_tokens: u64) -> Option<Usage> {
        (!self.omit_usage).then_some(Usage {
            input_tokens: self.input_tokens,
            output_tokens,
            cache_creation_input_tokens: 0,
            cache_read_input_tokens: 0,
        })
    }

    fn message<'a>(&'a self, content: Vec<Block<'a>>, done: bool) -> Message<'a> {
        Message {
            id: &self.id,
            kind: "message",
            role: "assistant",
            model: &self.model,
            content,
            stop_reason: done.then(|| self.stop_reason()),
            stop_sequence: None,
            usage: self.usage(if done {
                self.output.completion_tokens()
            } else {
                1
            }),
        }
    }
}

#[derive(Serialize)]
struct Message<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: Vec<Block<'a>>,
    stop_reason: Option<&'static str>,
    stop_sequence: Option<()>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
}

#[derive(Serialize)]
struct Usage {
    input_tokens: u64,
    output_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block<'a> {
    Text {
        text: &'a str,
    },
    ToolUse {
        id: &'static str,
        name: &'a str,
        input: ToolInput,
    },
}

#[derive(Serialize)]
#[serde(untagged)]
enum ToolInput {
    /// `{}`, as `content_block_start` opens a `tool_use` block.
    Empty(EmptyObject),
    Arguments(ToolArguments),
}

#[derive(Serialize)]
struct EmptyObject {}

/// A non-streaming Messages response: one `text` block (none when there are no words), or
/// one `tool_use` block.
pub fn message_json(reply: &MessageReply) -> Bytes {
    let text = reply.output.text();
    let content = match &reply.output.content {
        Content::Text(words) if words.is_empty() => Vec::new(),
        Content::Text(_) => vec![Block::Text { text: &text }],
        Content::ToolCall(name) => vec![Block::ToolUse {
            id: TOOL_USE_ID,
            name,
            input: ToolInput::Arguments(TOOL_ARGUMENTS),
        }],
    };
    json::to_bytes(&reply.message(content, true))
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event<'a> {
    MessageStart {
        message: Message<'a>,
    },
    ContentBlockStart {
        index: u32,
        content_block: Block<'a>,
    },
    Ping,
    ContentBlockDelta {
        index: u32,
        delta: Delta<'a>,
    },
    ContentBlockStop {
        index: u32,
    },
    MessageDelta {
        delta: MessageDelta,
        #[serde(skip_serializing_if = "Option::is_none")]
        usage: Option<DeltaUsage>,
    },
    MessageStop,
}

impl Event<'_> {
    fn name(&self) -> &'static str {
        match self {
            Self::MessageStart { .. } => "message_start",
            Self::ContentBlockStart { .. } => "content_block_start",
            Self::Ping => "ping",
            Self::ContentBlockDelta { .. } => "content_block_delta",
            Self::ContentBlockStop { .. } => "content_block_stop",
            Self::MessageDelta { .. } => "message_delta",
            Self::MessageStop => "message_stop",
        }
    }

    /// `event: <type>\ndata: <json>\n\n`
    fn framed(&self) -> Bytes {
        let prefix = format!("event: {}\ndata: ", self.name());
        json::framed(prefix.as_bytes(), self, b"\n\n")
    }
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Delta<'a> {
    TextDelta { text: &'a str },
    InputJsonDelta { partial_json: &'a str },
}

#[derive(Serialize)]
struct MessageDelta {
    stop_reason: &'static str,
    stop_sequence: Option<()>,
}

#[derive(Serialize)]
struct DeltaUsage {
    output_tokens: u64,
}

/// Every event of a streamed reply, in Anthropic's order, each framed
/// `event: <type>\ndata: <json>\n\n`:
///
/// `message_start` (empty content, `output_tokens` 1), `content_block_start` (index 0),
/// `ping`, one `content_block_delta` per word (`text_delta`) or per argument fragment
/// (`input_json_delta`), `content_block_stop`, `message_delta` (stop reason, `output_tokens`),
/// `message_stop`. A text reply with no words has no content block at all (`message_start`,
/// `ping`, `message_delta`, `message_stop`).
pub fn stream_events(reply: &MessageReply) -> Vec<Bytes> {
    let mut events = Vec::with_capacity(8);
    events.push(Event::MessageStart {
        message: reply.message(Vec::new(), false),
    });
    let (block, deltas) = match &reply.output.content {
        Content::Text(words) if words.is_empty() => (None, Vec::new()),
        Content::Text(words) => (
            Some(Block::Text { text: "" }),
            words.iter().map(|w| Delta::TextDelta { text: w }).collect(),
        ),
        Content::ToolCall(name) => (
            Some(Block::ToolUse {
                id: TOOL_USE_ID,
                name,
                input: ToolInput::Empty(EmptyObject {}),
            }),
            TOOL_CALL_FRAGMENTS
                .iter()
                .map(|f| Delta::InputJsonDelta { partial_json: f })
                .collect(),
        ),
    };
    let has_block = block.is_some();
    if let Some(content_block) = block {
        events.push(Event::ContentBlockStart {
            index: 0,
            content_block,
        });
    }
    events.push(Event::Ping);
    if has_block {
        for delta in deltas {
            events.push(Event::ContentBlockDelta { index: 0, delta });
        }
        events.push(Event::ContentBlockStop { index: 0 });
    }
    events.push(Event::MessageDelta {
        delta: MessageDelta {
            stop_reason: reply.stop_reason(),
            stop_sequence: None,
        },
        usage: (!reply.omit_usage).then(|| DeltaUsage {
            output_tokens: reply.output.completion_tokens(),
        }),
    });
    events.push(Event::MessageStop);
    events.iter().map(Event::framed).collect()
}

#[derive(Serialize)]
struct TokenCount {
    input_tokens: u64,
}

/// `{"input_tokens": N}`
pub fn count_tokens_json(input_tokens: u64) -> Bytes {
    json::to_bytes(&TokenCount { input_tokens })
}

/// The error type Anthropic uses for a status: its documented table, other 4xx
/// `invalid_request_error` (as Anthropic documents), anything else `api_error`.
pub fn error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

#[derive(Serialize)]
struct ErrorEnvelope<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    message: &'a str,
}

/// `{"type":"error","error":{"type":...,"message":...}}`
pub fn error_json(message: &str, kind: &str) -> Bytes {
    json::to_bytes(&ErrorEnvelope {
        kind: "error",
        error: ErrorBody { kind, message },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(body: Value) -> MessagesRequest {
        parse_messages_request(body.to_string().as_bytes()).unwrap()
    }

    fn rejection(body: Value) -> String {
        parse_messages_request(body.to_string().as_bytes()).unwrap_err()
    }

    fn reply(output: Output, omit_usage: bool) -> MessageReply {
        MessageReply {
            id: "msg_mock_1".into(),
            model: "claude-x".into(),
            output,
            input_tokens: 4,
            omit_usage,
        }
    }

    fn text(chunks: Option<usize>) -> Output {
        Output::new("m1", "claude-x", chunks, None, None)
    }

    fn tool() -> Output {
        Output::new("m1", "claude-x", None, Some("get_weather"), None)
    }

    /// Each event as (name, data), checking the exact framing and that the `event:` name is
    /// the data's `type`.
    fn events(events: &[Bytes]) -> Vec<(String, Value)> {
        events
            .iter()
            .map(|e| {
                let text = std::str::from_utf8(e).unwrap();
                let (head, rest) = text.split_once('\n').unwrap();
                let name = head.strip_prefix("event: ").unwrap();
                let data = rest
                    .strip_prefix("data: ")
                    .and_then(|d| d.strip_suffix("\n\n"))
                    .unwrap_or_else(|| panic!("badly framed {text:?}"));
                assert!(!data.contains('\n'), "{text:?}");
                let data: Value = serde_json::from_str(data).unwrap();
                assert_eq!(data["type"], name);
                (name.to_owned(), data)
            })
            .collect()
    }

    fn names(events: &[(String, Value)]) -> Vec<&str> {
        events.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn input_tokens_count_text_blocks_tool_results_and_system() {
        let req = request(json!({
            "model": "claude-x",
            "max_tokens": 100,
            "system": [{"type": "text", "text": "be brief"}, {"type": "text", "text": "now"}],
            "messages": [
                {"role": "user", "content": "what is the weather"},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "let me check"},
                    {"type": "tool_use", "id": "t1", "name": "w", "input": {"q": "a b c"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": "sunny and warm"},
                    {"type": "tool_result", "tool_use_id": "t2",
                     "content": [{"type": "text", "text": "rain"}]},
                    {"type": "image", "source": {"type": "base64", "data": "x y"}}
                ]}
            ]
        }));
        // (4+1) + (3+1) + (3+1+1) + system (3+1)
        assert_eq!(req.input_tokens, 5 + 4 + 5 + 4);
        assert_eq!(req.max_tokens, 100);
        assert!(!req.stream);
        let string_system = request(json!({"model": "m", "max_tokens": 1, "system": "a b",
            "messages": [{"role": "user", "content": "hi"}]}));
        assert_eq!(string_system.input_tokens, (1 + 1) + (2 + 1));
    }

    #[test]
    fn requests_anthropic_would_reject_are_rejected_in_its_words() {
        let ok = json!({"model": "m", "max_tokens": 5, "messages": []});
        assert!(parse_messages_request(ok.to_string().as_bytes()).is_ok());
        assert_eq!(
            rejection(json!({"model": "m", "messages": []})),
            "max_tokens: Field required"
        );
        assert_eq!(
            rejection(json!({"model": "m", "max_tokens": "5", "messages": []})),
            "max_tokens: Input should be a valid integer"
        );
        assert!(
            rejection(json!({"model": "m", "max_tokens": 0, "messages": []}))
                .starts_with("max_tokens:")
        );
        assert_eq!(
            rejection(json!({"max_tokens": 5, "messages": []})),
            "model: Field required"
        );
        assert_eq!(
            rejection(json!({"model": "m", "max_tokens": 5})),
            "messages: Field required"
        );
        assert!(rejection(
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]})
        )
        .contains("top-level `system` parameter"));
        assert_eq!(
            rejection(
                json!({"model": "m", "max_tokens": 5, "messages": [{"role": "tool", "content": "x"}]})
            ),
            "messages.0.role: Input should be 'user' or 'assistant'"
        );
        assert_eq!(
            rejection(json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user"}]})),
            "messages.0.content: Field required"
        );
        assert!(
            rejection(json!({"model": "m", "max_tokens": 5, "messages": [], "system": 3}))
                .starts_with("system:")
        );
        assert!(
            rejection(json!({"model": "m", "max_tokens": 5, "messages": [], "tools": {}}))
                .starts_with("tools:")
        );
        assert!(
            rejection(json!({"model": "m", "max_tokens": 5, "messages": [], "stream": "yes"}))
                .starts_with("stream:")
        );
        assert!(parse_messages_request(b"{nope").is_err());
    }

    #[test]
    fn count_tokens_needs_no_max_tokens() {
        let req = parse_count_tokens_request(
            br#"{"model":"m","system":"x","messages":[{"role":"user","content":"a b"}]}"#,
        )
        .unwrap();
        assert_eq!(req.input_tokens, (2 + 1) + (1 + 1));
        let body: Value = serde_json::from_slice(&count_tokens_json(req.input_tokens)).unwrap();
        assert_eq!(body, json!({"input_tokens": 5}));
        assert!(parse_count_tokens_request(br#"{"model":"m"}"#).is_err());
    }

    #[test]
    fn non_streaming_message_has_the_anthropic_shape() {
        let body: Value = serde_json::from_slice(&message_json(&reply(text(None), false))).unwrap();
        assert_eq!(
            body,
            json!({
                "id": "msg_mock_1",
                "type": "message",
                "role": "assistant",
                "model": "claude-x",
                "content": [{"type": "text", "text": "Hello from m1! You asked claude-x."}],
                "stop_reason": "end_turn",
                "stop_sequence": null,
                "usage": {"input_tokens": 4, "output_tokens": 6,
                          "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
            })
        );
        let cut = Output::new("m1", "claude-x", None, None, Some(2));
        let body: Value = serde_json::from_slice(&message_json(&reply(cut, true))).unwrap();
        assert_eq!(body["stop_reason"], "max_tokens");
        assert_eq!(body["content"][0]["text"], "Hello from");
        assert!(body.get("usage").is_none());
        let empty: Value =
            serde_json::from_slice(&message_json(&reply(text(Some(0)), false))).unwrap();
        assert_eq!(empty["content"], json!([]));
        assert_eq!(empty["usage"]["output_tokens"], 0);
    }

    #[test]
    fn tool_call_message_is_one_tool_use_block() {
        let body: Value = serde_json::from_slice(&message_json(&reply(tool(), false))).unwrap();
        assert_eq!(
            body["content"],
            json!([{"type": "tool_use", "id": "toolu_mock_1", "name": "get_weather",
                    "input": {"location": "Paris", "unit": "celsius"}}])
        );
        assert_eq!(body["stop_reason"], "tool_use");
        assert_eq!(body["usage"]["output_tokens"], 3);
    }

    #[test]
    fn text_stream_has_anthropic_event_order_and_framing() {
        let raw = stream_events(&reply(text(Some(2)), false));
        assert_eq!(
            String::from_utf8(raw[2].to_vec()).unwrap(),
            "event: ping\ndata: {\"type\":\"ping\"}\n\n"
        );
        let events = events(&raw);
        assert_eq!(
            names(&events),
            [
                "message_start",
                "content_block_start",
                "ping",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        let data: Vec<&Value> = events.iter().map(|(_, d)| d).collect();
        assert_eq!(
            *data[0],
            json!({"type": "message_start", "message": {
                "id": "msg_mock_1", "type": "message", "role": "assistant", "model": "claude-x",
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": 4, "output_tokens": 1,
                          "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}})
        );
        assert_eq!(
            *data[1],
            json!({"type": "content_block_start", "index": 0,
                   "content_block": {"type": "text", "text": ""}})
        );
        assert_eq!(
            *data[3],
            json!({"type": "content_block_delta", "index": 0,
                   "delta": {"type": "text_delta", "text": "w0"}})
        );
        assert_eq!(data[4]["delta"]["text"], " w1");
        assert_eq!(*data[5], json!({"type": "content_block_stop", "index": 0}));
        assert_eq!(
            *data[6],
            json!({"type": "message_delta",
                   "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                   "usage": {"output_tokens": 2}})
        );
        assert_eq!(*data[7], json!({"type": "message_stop"}));
    }

    #[test]
    fn tool_call_stream_sends_input_json_deltas() {
        let events = events(&stream_events(&reply(tool(), false)));
        assert_eq!(
            names(&events),
            [
                "message_start",
                "content_block_start",
                "ping",
                "content_block_delta",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert_eq!(
            events[1].1["content_block"],
            json!({"type": "tool_use", "id": "toolu_mock_1", "name": "get_weather", "input": {}})
        );
        let partial: String = events[3..6]
            .iter()
            .map(|(_, d)| {
                assert_eq!(d["delta"]["type"], "input_json_delta");
                d["delta"]["partial_json"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(partial, r#"{"location":"Paris","unit":"celsius"}"#);
        assert_eq!(events[7].1["delta"]["stop_reason"], "tool_use");
        assert_eq!(events[7].1["usage"], json!({"output_tokens": 3}));
    }

    #[test]
    fn stream_without_words_has_no_content_block_and_omitted_usage_is_absent() {
        let events = events(&stream_events(&reply(text(Some(0)), true)));
        assert_eq!(
            names(&events),
            ["message_start", "ping", "message_delta", "message_stop"]
        );
        assert!(events[0].1["message"].get("usage").is_none());
        assert!(events[2].1.get("usage").is_none());
    }

    #[test]
    fn error_envelope_and_types() {
        let body: Value =
            serde_json::from_slice(&error_json("mock error 529", error_type(529))).unwrap();
        assert_eq!(
            body,
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "mock error 529"}})
        );
        let types: Vec<&str> = [400, 401, 403, 404, 413, 422, 429, 500, 503, 529]
            .into_iter()
            .map(error_type)
            .collect();
        assert_eq!(
            types,
            [
                "invalid_request_error",
                "authentication_error",
                "permission_error",
                "not_found_error",
                "request_too_large",
                "invalid_request_error",
                "rate_limit_error",
                "api_error",
                "api_error",
                "overloaded_error"
            ]
        );
    }
}
