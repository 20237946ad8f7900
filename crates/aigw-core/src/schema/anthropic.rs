//! Anthropic Messages API (`POST /v1/messages`) wire shapes, both ways:
//! requests, responses, stream events and errors.
//!
//! Every type serializes to exactly what Anthropic expects (absent options
//! are left out) and deserializes leniently (unknown members are skipped,
//! optional members default), so the same types serve a converter that
//! writes Anthropic requests and one that reads them.
//!
//! Free-form JSON that must reach the other side byte for byte (JSON Schemas,
//! tool inputs) is kept as [`RawValue`]: member order survives, which matters
//! for schemas (models fill properties in schema order). Because serde cannot
//! read a `RawValue` through its internally tagged or untagged enums, the
//! tagged enums here ([`ContentBlock`], [`StreamEvent`]) are read through a
//! flat private struct (`try_from`), and "string or array" members through a
//! small visitor ([`Content`]).

use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

/// The `anthropic-version` header value the gateway speaks.
pub const API_VERSION: &str = "2023-06-01";

/// The request body of `POST /v1/messages`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MessagesRequest {
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub messages: Vec<Message>,
    /// Required by Anthropic; `None` only when read from a client that omitted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// A string, or text blocks (which may carry `cache_control`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<Content<ContentBlock>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_sequences: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<ThinkingConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_config: Option<OutputConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    #[default]
    User,
    Assistant,
}

/// One conversation turn.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: Content<ContentBlock>,
}

/// A member that is either a plain string or an array (`content`, `system`,
/// a tool result's `content`).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Content<T> {
    Text(String),
    Blocks(Vec<T>),
}

impl<T> Default for Content<T> {
    fn default() -> Self {
        Content::Blocks(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Content<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Content<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an array of content blocks")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Content::Text(s.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, s: String) -> Result<Self::Value, E> {
                Ok(Content::Text(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut blocks = Vec::with_capacity(seq.size_hint().unwrap_or(4));
                while let Some(b) = seq.next_element()? {
                    blocks.push(b);
                }
                Ok(Content::Blocks(blocks))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A content block, in a request or a response.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", try_from = "WireBlock")]
pub enum ContentBlock {
    Text {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        citations: Option<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<Value>,
    },
    Image {
        source: Source,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<Value>,
    },
    Document {
        source: Source,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        context: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        citations: Option<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<Value>,
    },
    ToolUse {
        id: String,
        name: String,
        /// The tool's input object, as raw JSON text.
        input: Box<RawValue>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<Value>,
    },
    ToolResult {
        tool_use_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content: Option<Content<ContentBlock>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        is_error: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<Value>,
    },
    Thinking {
        thinking: String,
        /// Absent in a stream's `content_block_start`; required when sent back.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<String>,
    },
    RedactedThinking {
        data: String,
    },
    /// A block type this module does not model (server tool blocks, search
    /// results...). Read so that a response carrying one is still usable;
    /// never written.
    #[serde(skip_serializing)]
    Other {
        kind: String,
    },
}

impl ContentBlock {
    /// A plain text block.
    pub fn text(text: impl Into<String>) -> Self {
        ContentBlock::Text {
            text: text.into(),
            citations: None,
            cache_control: None,
        }
    }

    /// The block's `type` word.
    pub fn kind(&self) -> &str {
        match self {
            ContentBlock::Text { .. } => "text",
            ContentBlock::Image { .. } => "image",
            ContentBlock::Document { .. } => "document",
            ContentBlock::ToolUse { .. } => "tool_use",
            ContentBlock::ToolResult { .. } => "tool_result",
            ContentBlock::Thinking { .. } => "thinking",
            ContentBlock::RedactedThinking { .. } => "redacted_thinking",
            ContentBlock::Other { kind } => kind,
        }
    }

    /// The block's `cache_control`, for the block types that carry one.
    pub fn cache_control_mut(&mut self) -> Option<&mut Option<Value>> {
        match self {
            ContentBlock::Text { cache_control, .. }
            | ContentBlock::Image { cache_control, .. }
            | ContentBlock::Document { cache_control, .. }
            | ContentBlock::ToolUse { cache_control, .. }
            | ContentBlock::ToolResult { cache_control, .. } => Some(cache_control),
            ContentBlock::Thinking { .. }
            | ContentBlock::RedactedThinking { .. }
            | ContentBlock::Other { .. } => None,
        }
    }
}

/// Every member any block type has, read flat (see the module doc).
#[derive(Deserialize)]
struct WireBlock {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    citations: Option<Value>,
    #[serde(default)]
    cache_control: Option<Value>,
    #[serde(default)]
    source: Option<Source>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    context: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    input: Option<Box<RawValue>>,
    #[serde(default)]
    tool_use_id: Option<String>,
    #[serde(default)]
    content: Option<Content<ContentBlock>>,
    #[serde(default)]
    is_error: Option<bool>,
    #[serde(default)]
    thinking: Option<String>,
    #[serde(default)]
    signature: Option<String>,
    #[serde(default)]
    data: Option<String>,
}

fn missing(kind: &str, field: &str) -> String {
    format!("`{kind}` block without `{field}`")
}

impl TryFrom<WireBlock> for ContentBlock {
    type Error = String;

    fn try_from(w: WireBlock) -> Result<Self, String> {
        let kind = w.kind.as_str();
        Ok(match kind {
            "text" => ContentBlock::Text {
                text: w.text.ok_or_else(|| missing(kind, "text"))?,
                citations: w.citations,
                cache_control: w.cache_control,
            },
            "image" => ContentBlock::Image {
                source: w.source.ok_or_else(|| missing(kind, "source"))?,
                cache_control: w.cache_control,
            },
            "document" => ContentBlock::Document {
                source: w.source.ok_or_else(|| missing(kind, "source"))?,
                title: w.title,
                context: w.context,
                citations: w.citations,
                cache_control: w.cache_control,
            },
            "tool_use" => ContentBlock::ToolUse {
                id: w.id.ok_or_else(|| missing(kind, "id"))?,
                name: w.name.ok_or_else(|| missing(kind, "name"))?,
                input: match w.input {
                    Some(input) => input,
                    None => empty_object(),
                },
                cache_control: w.cache_control,
            },
            "tool_result" => ContentBlock::ToolResult {
                tool_use_id: w.tool_use_id.ok_or_else(|| missing(kind, "tool_use_id"))?,
                content: w.content,
                is_error: w.is_error,
                cache_control: w.cache_control,
            },
            "thinking" => ContentBlock::Thinking {
                thinking: w.thinking.unwrap_or_default(),
                signature: w.signature,
            },
            "redacted_thinking" => ContentBlock::RedactedThinking {
                data: w.data.ok_or_else(|| missing(kind, "data"))?,
            },
            _ => ContentBlock::Other { kind: w.kind },
        })
    }
}

/// `{}` as a raw value.
pub fn empty_object() -> Box<RawValue> {
    RawValue::from_string("{}".to_owned()).unwrap_or_else(|_| Box::<RawValue>::default())
}

/// Where an image's or a document's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Source {
    Base64 {
        media_type: String,
        data: String,
    },
    Url {
        url: String,
    },
    /// Plain-text documents.
    Text {
        media_type: String,
        data: String,
    },
    File {
        file_id: String,
    },
    #[serde(other, skip_serializing)]
    Other,
}

/// A tool definition. Client tools have `input_schema`; server tools
/// (`web_search_...`) have a `type` instead.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tool {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A JSON Schema, kept byte for byte.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<Box<RawValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToolChoice {
    Auto {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    Any {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    Tool {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    None,
}

impl ToolChoice {
    /// Sets `disable_parallel_tool_use`; `none` has no such member and is kept as is.
    pub fn with_disable_parallel_tool_use(mut self, disable: bool) -> Self {
        match &mut self {
            ToolChoice::Auto {
                disable_parallel_tool_use,
            }
            | ToolChoice::Any {
                disable_parallel_tool_use,
            }
            | ToolChoice::Tool {
                disable_parallel_tool_use,
                ..
            } => *disable_parallel_tool_use = Some(disable),
            ToolChoice::None => {}
        }
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ThinkingConfig {
    /// Manual extended thinking (Claude 4.6 and older).
    Enabled {
        budget_tokens: u64,
    },
    Disabled,
    /// The model decides how much to think; steered by `output_config.effort`.
    Adaptive {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        display: Option<String>,
    },
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OutputConfig {
    /// `low`, `medium`, `high` (the default), `xhigh`, `max`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effort: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<OutputFormat>,
}

/// Structured output: `{"type":"json_schema","schema":{...}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutputFormat {
    #[serde(rename = "type")]
    pub kind: String,
    pub schema: Box<RawValue>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

/// A complete (non-streamed) response, also the `message` of `message_start`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessagesResponse {
    #[serde(default)]
    pub id: String,
    #[serde(rename = "type", default = "message_type")]
    pub kind: String,
    #[serde(default = "assistant")]
    pub role: Role,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub content: Vec<ContentBlock>,
    /// `end_turn`, `max_tokens`, `stop_sequence`, `tool_use`, `pause_turn`,
    /// `refusal`, `model_context_window_exceeded`; `null` while streaming.
    #[serde(default)]
    pub stop_reason: Option<String>,
    #[serde(default)]
    pub stop_sequence: Option<String>,
    #[serde(default)]
    pub usage: Usage,
}

fn message_type() -> String {
    "message".to_owned()
}

fn assistant() -> Role {
    Role::Assistant
}

/// Token counts. In a stream, `message_delta` counts are cumulative and
/// replace those of `message_start`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
}

impl Usage {
    /// Overwrites the counts `newer` reports, keeps the others.
    pub fn update(&mut self, newer: &Usage) {
        let fields = [
            (&mut self.input_tokens, newer.input_tokens),
            (&mut self.output_tokens, newer.output_tokens),
            (
                &mut self.cache_creation_input_tokens,
                newer.cache_creation_input_tokens,
            ),
            (
                &mut self.cache_read_input_tokens,
                newer.cache_read_input_tokens,
            ),
        ];
        for (mine, theirs) in fields {
            if theirs.is_some() {
                *mine = theirs;
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == Usage::default()
    }
}

/// One event of a streamed response (`data` of an SSE event; its `type`
/// equals the SSE `event` name).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", try_from = "WireEvent")]
pub enum StreamEvent {
    MessageStart {
        message: MessagesResponse,
    },
    ContentBlockStart {
        index: u64,
        content_block: ContentBlock,
    },
    ContentBlockDelta {
        index: u64,
        delta: BlockDelta,
    },
    ContentBlockStop {
        index: u64,
    },
    MessageDelta {
        delta: MessageDelta,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usage: Option<Usage>,
    },
    MessageStop,
    Ping,
    Error {
        error: ErrorBody,
    },
    /// An event type this module does not know; to be ignored.
    #[serde(skip_serializing)]
    Other {
        kind: String,
    },
}

/// The change a `content_block_delta` carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BlockDelta {
    TextDelta {
        text: String,
    },
    /// A piece of a tool input's JSON text (not valid JSON on its own).
    InputJsonDelta {
        partial_json: String,
    },
    ThinkingDelta {
        thinking: String,
    },
    SignatureDelta {
        signature: String,
    },
    CitationsDelta {
        citation: Value,
    },
    #[serde(other, skip_serializing)]
    Other,
}

/// The `delta` of `message_delta`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageDelta {
    #[serde(default)]
    pub stop_reason: Option<String>,
    #[serde(default)]
    pub stop_sequence: Option<String>,
}

/// Every member any event has, read flat (see the module doc).
#[derive(Deserialize)]
struct WireEvent {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    message: Option<MessagesResponse>,
    #[serde(default)]
    index: Option<u64>,
    #[serde(default)]
    content_block: Option<ContentBlock>,
    #[serde(default)]
    delta: Option<Value>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<ErrorBody>,
}

impl TryFrom<WireEvent> for StreamEvent {
    type Error = String;

    fn try_from(w: WireEvent) -> Result<Self, String> {
        let kind = w.kind.as_str();
        let need = |field: &str| format!("`{kind}` event without `{field}`");
        let delta = |d: Option<Value>| -> Result<Value, String> { d.ok_or_else(|| need("delta")) };
        Ok(match kind {
            "message_start" => StreamEvent::MessageStart {
                message: w.message.ok_or_else(|| need("message"))?,
            },
            "content_block_start" => StreamEvent::ContentBlockStart {
                index: w.index.ok_or_else(|| need("index"))?,
                content_block: w.content_block.ok_or_else(|| need("content_block"))?,
            },
            "content_block_delta" => StreamEvent::ContentBlockDelta {
                index: w.index.ok_or_else(|| need("index"))?,
                delta: serde_json::from_value(delta(w.delta)?).map_err(|e| e.to_string())?,
            },
            "content_block_stop" => StreamEvent::ContentBlockStop {
                index: w.index.ok_or_else(|| need("index"))?,
            },
            "message_delta" => StreamEvent::MessageDelta {
                delta: serde_json::from_value(delta(w.delta)?).map_err(|e| e.to_string())?,
                usage: w.usage,
            },
            "message_stop" => StreamEvent::MessageStop,
            "ping" => StreamEvent::Ping,
            "error" => StreamEvent::Error {
                error: w.error.ok_or_else(|| need("error"))?,
            },
            _ => StreamEvent::Other { kind: w.kind },
        })
    }
}

/// Anthropic's error envelope: `{"type":"error","error":{"type","message"}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorEnvelope {
    #[serde(rename = "type", default)]
    pub kind: String,
    pub error: ErrorBody,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_reads_a_string_or_blocks() {
        let m: Message = serde_json::from_str(r#"{"role":"user","content":"hi"}"#).unwrap();
        assert!(matches!(m.content, Content::Text(ref t) if t == "hi"));
        let m: Message = serde_json::from_str(
            r#"{"role":"assistant","content":[{"type":"text","text":"a"},{"type":"tool_use","id":"t","name":"f","input":{"b":1,"a":2}}]}"#,
        )
        .unwrap();
        let Content::Blocks(blocks) = m.content else {
            panic!("blocks expected")
        };
        assert_eq!(blocks.len(), 2);
        match &blocks[1] {
            ContentBlock::ToolUse { input, .. } => assert_eq!(input.get(), r#"{"b":1,"a":2}"#),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn blocks_write_back_in_anthropic_shape() {
        let json = r#"{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"text","text":"ok","cache_control":{"type":"ephemeral"}}]},{"type":"image","source":{"type":"url","url":"https://x/y.png"}}]}"#;
        let m: Message = serde_json::from_str(json).unwrap();
        assert_eq!(serde_json::to_string(&m).unwrap(), json);
    }

    #[test]
    fn unknown_blocks_and_events_are_read_as_other() {
        let b: ContentBlock = serde_json::from_str(
            r#"{"type":"server_tool_use","id":"s","name":"web_search","input":{}}"#,
        )
        .unwrap();
        assert_eq!(b.kind(), "server_tool_use");
        assert!(serde_json::to_string(&b).is_err());
        let e: StreamEvent = serde_json::from_str(r#"{"type":"future_event","x":1}"#).unwrap();
        assert!(matches!(e, StreamEvent::Other { ref kind } if kind == "future_event"));
    }

    #[test]
    fn stream_events_round_trip() {
        for json in [
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"get","input":{}}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"a\":"}}"#,
            r#"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":9}}"#,
            r#"{"type":"message_stop"}"#,
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        ] {
            let e: StreamEvent = serde_json::from_str(json).unwrap();
            assert_eq!(serde_json::to_string(&e).unwrap(), json);
        }
    }

    #[test]
    fn malformed_events_are_errors_not_panics() {
        for json in [
            r#"{"type":"content_block_delta","index":0}"#,
            r#"{"type":"content_block_start","content_block":{"type":"text","text":""}}"#,
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use"}}"#,
            r#"{"index":0}"#,
            r#"[]"#,
        ] {
            assert!(serde_json::from_str::<StreamEvent>(json).is_err(), "{json}");
        }
    }

    #[test]
    fn usage_update_keeps_counts_not_reported_again() {
        let mut u = Usage {
            input_tokens: Some(10),
            output_tokens: Some(1),
            cache_read_input_tokens: Some(4),
            cache_creation_input_tokens: None,
        };
        u.update(&Usage {
            output_tokens: Some(7),
            ..Usage::default()
        });
        assert_eq!(
            u,
            Usage {
                input_tokens: Some(10),
                output_tokens: Some(7),
                cache_read_input_tokens: Some(4),
                cache_creation_input_tokens: None,
            }
        );
    }
}
