//! Anthropic Messages client (`POST /v1/messages`) → OpenAI Chat Completions
//! provider (any OpenAI-compatible server). See `convert/mod.rs` for the
//! shape every converter shares.
//!
//! # Request (Anthropic → OpenAI)
//! - `model` is the target's model (`RequestContext::model`), whatever the client named.
//! - `system` (a string or text blocks) becomes one leading `system` message;
//!   several blocks are joined with a blank line. Non-text system blocks: 400.
//! - User content: text blocks become one plain string (blocks joined with a
//!   blank line) when the turn is text only, OpenAI content parts otherwise.
//!   `image` blocks: `base64` → `image_url` with a `data:` URL, `url` → `image_url`,
//!   `file` → 400. `document` blocks: `text` source → text, `content` source →
//!   its text/image blocks, `base64` PDF → an OpenAI `file` part (`file_data`
//!   data URL; few compatible servers accept it, they answer with their own
//!   error), `url`/`file` sources → 400.
//! - `tool_result` blocks become `tool` messages (`tool_call_id` = `tool_use_id`),
//!   in block order and BEFORE the rest of the user turn (OpenAI wants tool
//!   messages right after the assistant's `tool_calls`). Text content is joined
//!   with a blank line. `is_error: true` has no OpenAI field: the content is
//!   prefixed with `Error: ` (just `Error` when empty). OpenAI tool messages
//!   carry text only, so images and PDFs returned by a tool move into the user
//!   message that follows the tool messages (ahead of the user's own blocks),
//!   and a tool result made only of them reads
//!   `(the tool returned an attachment; it follows in the next user message)`.
//! - Assistant content: text blocks are concatenated into `content`, `tool_use`
//!   blocks become `tool_calls` (`arguments` = the input as compact JSON, key
//!   order kept); `content` is `null` when there are tool calls and no text.
//!   `thinking` and `redacted_thinking` blocks are dropped: their signatures
//!   mean nothing to another provider. A trailing assistant message (prefill)
//!   is sent as is; what it means is up to the provider.
//! - Any other block type (`server_tool_use`, `search_result`, `container_upload`...),
//!   or a block in the wrong role: 400 naming it. `cache_control` and `citations`
//!   are dropped everywhere (hints).
//! - `max_tokens` → `max_tokens` (not `max_completion_tokens`: most compatible
//!   servers only know `max_tokens`); when absent, none is sent.
//!   `stop_sequences` → `stop`; `temperature` and `top_p` unchanged (no
//!   rescaling: Anthropic's 0–1 range is inside OpenAI's 0–2); `top_k` dropped
//!   (OpenAI has none and rejects unknown parameters); `metadata.user_id` → `user`;
//!   `service_tier` dropped (different meanings).
//! - `tools`: custom tools (no `type`, or `type: "custom"`) → `function` tools
//!   (`input_schema` → `parameters`, `strict` kept). Server tools (any other
//!   `type`: `web_search_*`, `bash_*`, `text_editor_*`, `computer_*`...): 400
//!   naming the type. `tool_choice`: `auto` → `"auto"`, `any` → `"required"`,
//!   `tool` → the named function, `none` → `"none"`;
//!   `disable_parallel_tool_use: true` → `parallel_tool_calls: false`. Neither
//!   is sent without tools (OpenAI rejects them there).
//! - `thinking` is dropped: `reasoning_effort` is refused by non-reasoning
//!   models, and reasoning models reason without being asked.
//!   `output_config.effort` is dropped likewise.
//! - `output_format` / `output_config.format` (`json_schema`) → `response_format`
//!   `json_schema` named `output`, `strict: true` (Anthropic guarantees the schema).
//! - `container` and a non-empty `mcp_servers` ask for Anthropic-hosted
//!   capabilities the provider does not have: 400. Unknown fields are ignored.
//! - `stream: true` → `stream: true` + `stream_options: {"include_usage": true}`.
//!
//! # Response (OpenAI → Anthropic)
//! - `id` = `msg_` + the provider's id; `model` = the provider's, else the target's.
//! - Content: the message text (when non-empty) as a text block, then a
//!   `refusal` (as text), then each tool call as a `tool_use` block (`id` kept;
//!   `input` is the parsed arguments: empty → `{}`, a JSON string holding an
//!   object → that object, anything else that is not an object → `{"_raw": "<arguments>"}`
//!   so the client's tool validation reports it). A legacy `function_call`
//!   becomes a `tool_use` too. `reasoning_content` (DeepSeek) is dropped: a
//!   client that did not ask for thinking must not find a thinking block first,
//!   and the converter cannot know whether it asked.
//! - `finish_reason` → `stop_reason`: `stop` → `end_turn` (or `stop_sequence`
//!   when the server names the matched string in `stop_reason`, as vLLM does),
//!   `length` → `max_tokens`, `tool_calls`/`function_call` → `tool_use`,
//!   `content_filter` → `refusal`; a message with tool calls is `tool_use`
//!   whatever the server said (some say `stop`); a refusal is `refusal`;
//!   anything else → `end_turn`. `stop_sequence` is null otherwise.
//! - Usage: `input_tokens` = `prompt_tokens` − cached tokens and
//!   `cache_read_input_tokens` = cached tokens (`prompt_tokens_details.cached_tokens`,
//!   or DeepSeek's `prompt_cache_hit_tokens`), as Anthropic counts them;
//!   `output_tokens` = `completion_tokens` (reasoning included, as Anthropic
//!   counts thinking). Unknown counts are sent as 0 (Anthropic requires numbers).
//!
//! # Stream (OpenAI chunks → Anthropic events)
//! - `message_start` as soon as the first chunk arrives (`input_tokens` from
//!   that chunk's usage if any, else 0; `output_tokens` 0). The real counts come
//!   in `message_delta.usage` (`output_tokens`, plus `input_tokens` and
//!   `cache_read_input_tokens` when known), which the SDKs apply to the message.
//! - Blocks are numbered 0, 1, 2... in order of first appearance, one open at a
//!   time. Text streams live into a text block; when a tool call starts the text
//!   block is closed. A tool call streams live (`content_block_start` with
//!   `input: {}`, then each arguments fragment as an `input_json_delta`) and its
//!   block stays open until the provider finishes: OpenAI servers may send
//!   fragments of parallel tool calls interleaved, and a closed block cannot
//!   take more. Whatever starts after an open tool block (another tool call,
//!   more text) is held and emitted, in order, when the provider's
//!   `finish_reason` arrives. Calls are told apart by `id` first (Ollama gives
//!   every call index 0), then by `index`; a call without an id gets
//!   `toolu_<message id>_<n>`. A call whose name has not arrived yet waits.
//!   Tool arguments are forwarded verbatim (no `_raw` wrapping mid-stream).
//! - `finish_reason` closes every block; `message_delta` (stop reason as in the
//!   response, usage from the chunk that follows) and `message_stop` go out on
//!   `data: [DONE]`, or when the stream ends after a `finish_reason`.
//! - Empty text, `reasoning_content` and other choices than index 0 are ignored;
//!   refusal text streams as text and makes the stop reason `refusal`.
//! - A keep-alive comment becomes a `ping` event (keeps the client's read timer
//!   alive during long provider silences).
//! - A provider error chunk (`data: {"error": ...}`) becomes an `error` event
//!   and ends the stream. A stream that ends before `finish_reason`/`[DONE]`
//!   ends with an `error` event (`api_error`) and no `message_stop`.
//!
//! # Errors
//! `error` reads `{"error":{"message","type","code","param"}}`,
//! `{"error":"..."}`, `{"message",...}` (vLLM), `{"detail":...}` (FastAPI) and
//! plain text (never HTML). `error_body` writes Anthropic's envelope, typed from
//! the status; a context-length error's message is prefixed `prompt is too long: `
//! as Anthropic words it (coding agents compact their context on it).

use crate::schema::json_object::compact_json;
use std::borrow::Cow;
use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use super::{
    anthropic_error_body, anthropic_error_type, unsupported, ProviderError, RequestContext,
    ResponseContext, StreamConverter,
};
use crate::error::ApiError;
use crate::sse::{Event, SseParser, MAX_PENDING};
use crate::usage::{Usage, UsageSource};

/// Separator between text blocks merged into one string (user, system, tool results).
const BLOCK_SEPARATOR: &str = "\n\n";

/// Tool message content for a tool result that only returned images or PDFs.
const ATTACHMENT_NOTE: &str =
    "(the tool returned an attachment; it follows in the next user message)";

// ---------------------------------------------------------------------------
// Request
// ---------------------------------------------------------------------------

#[derive(Deserialize)]
struct MessagesRequest<'a> {
    #[serde(default, borrow)]
    system: Option<&'a RawValue>,
    #[serde(default, borrow)]
    messages: Option<Vec<InMessage<'a>>>,
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    stop_sequences: Option<Vec<String>>,
    #[serde(default)]
    temperature: Option<serde_json::Number>,
    #[serde(default)]
    top_p: Option<serde_json::Number>,
    #[serde(default)]
    metadata: Option<Metadata>,
    #[serde(default, borrow)]
    tools: Option<Vec<&'a RawValue>>,
    #[serde(default)]
    tool_choice: Option<InToolChoice>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default, borrow)]
    container: Option<&'a RawValue>,
    #[serde(default, borrow)]
    mcp_servers: Option<Vec<&'a RawValue>>,
    #[serde(default, borrow)]
    output_format: Option<OutputFormat<'a>>,
    #[serde(default, borrow)]
    output_config: Option<OutputConfig<'a>>,
}

#[derive(Deserialize)]
struct InMessage<'a> {
    role: String,
    #[serde(borrow)]
    content: &'a RawValue,
}

#[derive(Deserialize)]
struct Metadata {
    #[serde(default)]
    user_id: Option<String>,
}

#[derive(Deserialize)]
struct InToolChoice {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    disable_parallel_tool_use: Option<bool>,
}

#[derive(Deserialize)]
struct OutputFormat<'a> {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, borrow)]
    schema: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct OutputConfig<'a> {
    #[serde(default, borrow)]
    format: Option<OutputFormat<'a>>,
}

/// The `type` of a content block or tool, read before the block itself.
#[derive(Deserialize)]
struct TypeTag<'a> {
    #[serde(default, borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct TextBlock {
    text: String,
}

#[derive(Deserialize)]
struct ImageBlock {
    source: MediaSource,
}

#[derive(Deserialize)]
struct MediaSource {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    data: Option<String>,
    #[serde(default)]
    url: Option<String>,
}

#[derive(Deserialize)]
struct DocumentBlock<'a> {
    #[serde(borrow)]
    source: DocumentSource<'a>,
    #[serde(default)]
    title: Option<String>,
}

#[derive(Deserialize)]
struct DocumentSource<'a> {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    data: Option<String>,
    #[serde(default, borrow)]
    content: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ToolUseBlock<'a> {
    id: String,
    name: String,
    #[serde(default, borrow)]
    input: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ToolResultBlock<'a> {
    tool_use_id: String,
    #[serde(default, borrow)]
    content: Option<&'a RawValue>,
    #[serde(default)]
    is_error: Option<bool>,
}

#[derive(Deserialize)]
struct CustomTool<'a> {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default, borrow)]
    input_schema: Option<&'a RawValue>,
    #[serde(default)]
    strict: Option<bool>,
}

#[derive(Serialize)]
struct ChatRequest<'a> {
    model: &'a str,
    messages: Vec<ChatMessage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<serde_json::Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<serde_json::Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tools: Option<Vec<ChatTool<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<ChatToolChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parallel_tool_calls: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<ResponseFormat<'a>>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
#[serde(tag = "role", rename_all = "lowercase")]
enum ChatMessage {
    System {
        content: String,
    },
    User {
        content: UserContent,
    },
    Assistant {
        content: Option<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<ChatToolCall>,
    },
    Tool {
        tool_call_id: String,
        content: String,
    },
}

#[derive(Serialize)]
#[serde(untagged)]
enum UserContent {
    Text(String),
    Parts(Vec<Part>),
}

/// One piece of user content, in OpenAI's content-part shape.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Part {
    Text { text: String },
    ImageUrl { image_url: ImageUrl },
    File { file: FileData },
}

#[derive(Serialize)]
struct ImageUrl {
    url: String,
}

#[derive(Serialize)]
struct FileData {
    filename: String,
    file_data: String,
}

#[derive(Serialize)]
struct ChatToolCall {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    function: ChatFunctionCall,
}

#[derive(Serialize)]
struct ChatFunctionCall {
    name: String,
    arguments: String,
}

#[derive(Serialize)]
struct ChatTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionDef<'a>,
}

#[derive(Serialize)]
struct FunctionDef<'a> {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    parameters: Cow<'a, RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    strict: Option<bool>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum ChatToolChoice {
    Mode(&'static str),
    Function {
        #[serde(rename = "type")]
        kind: &'static str,
        function: FunctionName,
    },
}

#[derive(Serialize)]
struct FunctionName {
    name: String,
}

#[derive(Serialize)]
struct ResponseFormat<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    json_schema: JsonSchemaFormat<'a>,
}

#[derive(Serialize)]
struct JsonSchemaFormat<'a> {
    name: &'static str,
    schema: &'a RawValue,
    strict: bool,
}

fn invalid(param: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_request", message).with_param(param)
}

/// Parses one part of the request, naming where it is when it is malformed.
fn parse<'a, T: Deserialize<'a>>(
    raw: &'a RawValue,
    param: &'static str,
    at: &str,
) -> Result<T, ApiError> {
    serde_json::from_str(raw.get()).map_err(|e| invalid(param, format!("{at}: {e}")))
}

/// A `content`-like value: a string or an array of blocks.
enum Content<'a> {
    Text(String),
    Blocks(Vec<&'a RawValue>),
}

fn content<'a>(raw: &'a RawValue, param: &'static str, at: &str) -> Result<Content<'a>, ApiError> {
    match raw.get().as_bytes().first() {
        Some(b'"') => parse(raw, param, at).map(Content::Text),
        Some(b'[') => parse(raw, param, at).map(Content::Blocks),
        _ => Err(invalid(
            param,
            format!("{at}: must be a string or an array of content blocks"),
        )),
    }
}

fn block_type<'a>(
    raw: &'a RawValue,
    param: &'static str,
    at: &str,
) -> Result<TypeTag<'a>, ApiError> {
    let tag: TypeTag<'a> = parse(raw, param, at)?;
    if tag.kind.is_none() {
        return Err(invalid(param, format!("{at}: missing field `type`")));
    }
    Ok(tag)
}

/// The client's Anthropic Messages request as an OpenAI chat request.
pub fn request(body: &[u8], ctx: &RequestContext<'_>) -> Result<Vec<u8>, ApiError> {
    let req: MessagesRequest<'_> = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(
            "invalid_json",
            format!("request body is not a valid Messages request: {e}"),
        )
    })?;
    if req.container.is_some() {
        return Err(unsupported(
            "container",
            "`container` needs Anthropic's code execution environment, which this provider does not have",
        ));
    }
    if req.mcp_servers.as_ref().is_some_and(|s| !s.is_empty()) {
        return Err(unsupported(
            "mcp_servers",
            "`mcp_servers` (Anthropic's MCP connector) is not available with this provider",
        ));
    }
    let Some(in_messages) = req.messages else {
        return Err(ApiError::bad_request(
            "missing_required_parameter",
            "messages: field required",
        )
        .with_param("messages"));
    };

    let mut messages = Vec::with_capacity(in_messages.len() + 1);
    if let Some(system) = req.system {
        if let Some(text) = system_text(system)? {
            messages.push(ChatMessage::System { content: text });
        }
    }
    for (i, m) in in_messages.iter().enumerate() {
        let at = format!("messages[{i}]");
        match m.role.as_str() {
            "user" => user_turn(m.content, &at, &mut messages)?,
            "assistant" => messages.push(assistant_turn(m.content, &at)?),
            other => {
                return Err(invalid(
                    "messages",
                    format!("{at}.role: `{other}` is not a Messages role (user or assistant)"),
                ))
            }
        }
    }

    let tools = match req.tools {
        Some(tools) if !tools.is_empty() => Some(convert_tools(&tools)?),
        _ => None,
    };
    let (tool_choice, parallel_tool_calls) = match (&tools, req.tool_choice) {
        (Some(_), Some(choice)) => convert_tool_choice(choice)?,
        _ => (None, None),
    };
    let format = match req.output_config.and_then(|c| c.format) {
        Some(f) => Some(f),
        None => req.output_format,
    };
    let response_format = format.map(convert_output_format).transpose()?;
    let stream = req.stream == Some(true);
    let stop = req.stop_sequences.filter(|s| !s.is_empty());

    let out = ChatRequest {
        model: ctx.model,
        messages,
        max_tokens: req.max_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        stop,
        stream: stream.then_some(true),
        stream_options: stream.then_some(StreamOptions {
            include_usage: true,
        }),
        tools,
        tool_choice,
        parallel_tool_calls,
        user: req.metadata.and_then(|m| m.user_id),
        response_format,
    };
    serde_json::to_vec(&out).map_err(|e| {
        ApiError::bad_request(
            "invalid_request",
            format!("request cannot be converted: {e}"),
        )
    })
}

fn system_text(raw: &RawValue) -> Result<Option<String>, ApiError> {
    let text = match content(raw, "system", "system")? {
        Content::Text(s) => s,
        Content::Blocks(blocks) => {
            let mut texts = Vec::with_capacity(blocks.len());
            for (j, b) in blocks.iter().enumerate() {
                let at = format!("system[{j}]");
                let tag = block_type(b, "system", &at)?;
                match tag.kind.as_deref() {
                    Some("text") => texts.push(parse::<TextBlock>(b, "system", &at)?.text),
                    other => {
                        return Err(unsupported(
                            "system",
                            format!(
                                "{at}: system blocks must be text, not `{}`",
                                other.unwrap_or_default()
                            ),
                        ))
                    }
                }
            }
            texts.join(BLOCK_SEPARATOR)
        }
    };
    Ok((!text.is_empty()).then_some(text))
}

/// A user turn: its tool results as `tool` messages, then the rest as one user message.
fn user_turn(raw: &RawValue, at: &str, out: &mut Vec<ChatMessage>) -> Result<(), ApiError> {
    let blocks = match content(raw, "messages", &format!("{at}.content"))? {
        Content::Text(s) => {
            out.push(ChatMessage::User {
                content: UserContent::Text(s),
            });
            return Ok(());
        }
        Content::Blocks(blocks) => blocks,
    };
    // Attachments returned by tools come first in the user message, then the user's own blocks.
    let mut moved = Vec::new();
    let mut own = Vec::new();
    let mut had_user_blocks = false;
    for (j, b) in blocks.iter().enumerate() {
        let at = format!("{at}.content[{j}]");
        let tag = block_type(b, "messages", &at)?;
        match tag.kind.as_deref().unwrap_or_default() {
            "tool_result" => {
                let result: ToolResultBlock<'_> = parse(b, "messages", &at)?;
                out.push(tool_message(result, &at, &mut moved)?);
            }
            kind => {
                had_user_blocks = true;
                media_block(kind, b, &at, &mut own)?;
            }
        }
    }
    if moved.is_empty() && !had_user_blocks && !blocks.is_empty() {
        return Ok(()); // Only tool results: the tool messages are the turn.
    }
    moved.append(&mut own);
    out.push(ChatMessage::User {
        content: user_content(moved),
    });
    Ok(())
}

/// Text, image or document block of user content, as OpenAI parts.
fn media_block(kind: &str, raw: &RawValue, at: &str, out: &mut Vec<Part>) -> Result<(), ApiError> {
    match kind {
        "text" => {
            let t: TextBlock = parse(raw, "messages", at)?;
            out.push(Part::Text { text: t.text });
        }
        "image" => {
            let img: ImageBlock = parse(raw, "messages", at)?;
            out.push(image_part(img.source, at)?);
        }
        "document" => {
            let doc: DocumentBlock<'_> = parse(raw, "messages", at)?;
            document_parts(doc, at, out)?;
        }
        other => {
            return Err(unsupported(
                "messages",
                format!("{at}: content block type `{other}` cannot be sent to an OpenAI-compatible provider"),
            ))
        }
    }
    Ok(())
}

fn image_part(source: MediaSource, at: &str) -> Result<Part, ApiError> {
    let url = match source.kind.as_str() {
        "base64" => {
            let (Some(media_type), Some(data)) = (source.media_type, source.data) else {
                return Err(invalid(
                    "messages",
                    format!("{at}.source: a base64 image needs `media_type` and `data`"),
                ));
            };
            format!("data:{media_type};base64,{data}")
        }
        "url" => source
            .url
            .ok_or_else(|| invalid("messages", format!("{at}.source: missing field `url`")))?,
        other => {
            return Err(unsupported(
                "messages",
                format!("{at}.source: image source type `{other}` is not supported with this provider; send base64 or url"),
            ))
        }
    };
    Ok(Part::ImageUrl {
        image_url: ImageUrl { url },
    })
}

fn document_parts(doc: DocumentBlock<'_>, at: &str, out: &mut Vec<Part>) -> Result<(), ApiError> {
    let source = doc.source;
    match source.kind.as_str() {
        "text" => {
            let text = source
                .data
                .ok_or_else(|| invalid("messages", format!("{at}.source: missing field `data`")))?;
            out.push(Part::Text { text });
        }
        "content" => {
            let Some(raw) = source.content else {
                return Err(invalid(
                    "messages",
                    format!("{at}.source: missing field `content`"),
                ));
            };
            match content(raw, "messages", &format!("{at}.source.content"))? {
                Content::Text(text) => out.push(Part::Text { text }),
                Content::Blocks(blocks) => {
                    for (k, b) in blocks.iter().enumerate() {
                        let at = format!("{at}.source.content[{k}]");
                        let tag = block_type(b, "messages", &at)?;
                        match tag.kind.as_deref().unwrap_or_default() {
                            kind @ ("text" | "image") => media_block(kind, b, &at, out)?,
                            other => {
                                return Err(unsupported(
                                    "messages",
                                    format!("{at}: document content block type `{other}` is not supported"),
                                ))
                            }
                        }
                    }
                }
            }
        }
        "base64" => {
            let media_type = source.media_type.unwrap_or_default();
            if media_type != "application/pdf" {
                return Err(unsupported(
                    "messages",
                    format!("{at}.source: base64 documents must be application/pdf, not `{media_type}`"),
                ));
            }
            let data = source
                .data
                .ok_or_else(|| invalid("messages", format!("{at}.source: missing field `data`")))?;
            out.push(Part::File {
                file: FileData {
                    filename: doc.title.unwrap_or_else(|| "document.pdf".to_string()),
                    file_data: format!("data:application/pdf;base64,{data}"),
                },
            });
        }
        other => {
            return Err(unsupported(
                "messages",
                format!("{at}.source: document source type `{other}` is not supported with this provider; send base64, text or content"),
            ))
        }
    }
    Ok(())
}

/// A `tool_result` block as a `tool` message; its attachments go to `moved`.
fn tool_message(
    result: ToolResultBlock<'_>,
    at: &str,
    moved: &mut Vec<Part>,
) -> Result<ChatMessage, ApiError> {
    let mut texts = Vec::new();
    let mut attachments = 0usize;
    if let Some(raw) = result.content {
        if raw.get() != "null" {
            match content(raw, "messages", &format!("{at}.content"))? {
                Content::Text(s) => texts.push(s),
                Content::Blocks(blocks) => {
                    for (k, b) in blocks.iter().enumerate() {
                        let at = format!("{at}.content[{k}]");
                        let tag = block_type(b, "messages", &at)?;
                        let mut parts = Vec::new();
                        match tag.kind.as_deref().unwrap_or_default() {
                            kind @ ("text" | "image" | "document") => {
                                media_block(kind, b, &at, &mut parts)?
                            }
                            other => {
                                return Err(unsupported(
                                    "messages",
                                    format!("{at}: tool result block type `{other}` cannot be sent to an OpenAI-compatible provider"),
                                ))
                            }
                        }
                        for p in parts {
                            match p {
                                Part::Text { text } => texts.push(text),
                                other => {
                                    attachments += 1;
                                    moved.push(other);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    let mut text = texts.join(BLOCK_SEPARATOR);
    if text.is_empty() && attachments > 0 {
        text = ATTACHMENT_NOTE.to_string();
    }
    if result.is_error == Some(true) {
        text = if text.is_empty() {
            "Error".to_string()
        } else {
            format!("Error: {text}")
        };
    }
    Ok(ChatMessage::Tool {
        tool_call_id: result.tool_use_id,
        content: text,
    })
}

fn user_content(parts: Vec<Part>) -> UserContent {
    if parts.iter().all(|p| matches!(p, Part::Text { .. })) {
        let texts: Vec<String> = parts
            .into_iter()
            .filter_map(|p| match p {
                Part::Text { text } => Some(text),
                _ => None,
            })
            .collect();
        UserContent::Text(texts.join(BLOCK_SEPARATOR))
    } else {
        UserContent::Parts(parts)
    }
}

fn assistant_turn(raw: &RawValue, at: &str) -> Result<ChatMessage, ApiError> {
    let blocks = match content(raw, "messages", &format!("{at}.content"))? {
        Content::Text(s) => {
            return Ok(ChatMessage::Assistant {
                content: Some(s),
                tool_calls: Vec::new(),
            })
        }
        Content::Blocks(blocks) => blocks,
    };
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    for (j, b) in blocks.iter().enumerate() {
        let at = format!("{at}.content[{j}]");
        let tag = block_type(b, "messages", &at)?;
        match tag.kind.as_deref().unwrap_or_default() {
            "text" => text.push_str(&parse::<TextBlock>(b, "messages", &at)?.text),
            "tool_use" => {
                let call: ToolUseBlock<'_> = parse(b, "messages", &at)?;
                let arguments = match call.input {
                    Some(input) if input.get() != "null" => compact_json(input.get()),
                    _ => "{}".to_string(),
                };
                tool_calls.push(ChatToolCall {
                    id: call.id,
                    kind: "function",
                    function: ChatFunctionCall {
                        name: call.name,
                        arguments,
                    },
                });
            }
            "thinking" | "redacted_thinking" => {}
            other => {
                return Err(unsupported(
                    "messages",
                    format!("{at}: assistant content block type `{other}` cannot be sent to an OpenAI-compatible provider"),
                ))
            }
        }
    }
    let content = if text.is_empty() && !tool_calls.is_empty() {
        None
    } else {
        Some(text)
    };
    Ok(ChatMessage::Assistant {
        content,
        tool_calls,
    })
}

fn convert_tools<'a>(tools: &[&'a RawValue]) -> Result<Vec<ChatTool<'a>>, ApiError> {
    let mut out = Vec::with_capacity(tools.len());
    for (i, raw) in tools.iter().enumerate() {
        let at = format!("tools[{i}]");
        let tag: TypeTag<'_> = parse(raw, "tools", &at)?;
        if let Some(kind) = tag.kind.as_deref().filter(|k| *k != "custom") {
            let name = tag.name.as_deref().unwrap_or_default();
            return Err(unsupported(
                "tools",
                format!("{at}: tool type `{kind}` (`{name}`) is an Anthropic server tool the provider does not offer; only custom tools can be used"),
            ));
        }
        let tool: CustomTool<'a> = parse(raw, "tools", &at)?;
        let parameters = match tool.input_schema {
            Some(schema) if schema.get() != "null" => Cow::Borrowed(schema),
            _ => Cow::Owned(
                RawValue::from_string(r#"{"type":"object","properties":{}}"#.to_string())
                    .map_err(|e| invalid("tools", format!("{at}: {e}")))?,
            ),
        };
        out.push(ChatTool {
            kind: "function",
            function: FunctionDef {
                name: tool.name,
                description: tool.description,
                parameters,
                strict: tool.strict,
            },
        });
    }
    Ok(out)
}

fn convert_tool_choice(
    choice: InToolChoice,
) -> Result<(Option<ChatToolChoice>, Option<bool>), ApiError> {
    let mode = match choice.kind.as_str() {
        "auto" => ChatToolChoice::Mode("auto"),
        "any" => ChatToolChoice::Mode("required"),
        "none" => ChatToolChoice::Mode("none"),
        "tool" => {
            let name = choice.name.ok_or_else(|| {
                invalid(
                    "tool_choice",
                    "tool_choice.name: required when type is `tool`",
                )
            })?;
            ChatToolChoice::Function {
                kind: "function",
                function: FunctionName { name },
            }
        }
        other => {
            return Err(invalid(
                "tool_choice",
                format!("tool_choice.type: `{other}` is not one of auto, any, tool, none"),
            ))
        }
    };
    let parallel =
        (choice.disable_parallel_tool_use == Some(true) && choice.kind != "none").then_some(false);
    Ok((Some(mode), parallel))
}

fn convert_output_format(format: OutputFormat<'_>) -> Result<ResponseFormat<'_>, ApiError> {
    if format.kind != "json_schema" {
        return Err(unsupported(
            "output_format",
            format!(
                "output format type `{}` is not supported; use json_schema",
                format.kind
            ),
        ));
    }
    let schema = format
        .schema
        .ok_or_else(|| invalid("output_format", "output_format.schema: field required"))?;
    Ok(ResponseFormat {
        kind: "json_schema",
        json_schema: JsonSchemaFormat {
            name: "output",
            schema,
            strict: true,
        },
    })
}

// ---------------------------------------------------------------------------
// Response
// ---------------------------------------------------------------------------

#[derive(Deserialize)]
struct Completion {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Option<Vec<Choice>>,
    #[serde(default)]
    usage: Option<ChatUsage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    index: Option<u64>,
    #[serde(default)]
    message: Option<ChoiceMessage>,
    #[serde(default)]
    finish_reason: Option<String>,
    /// vLLM: the stop string (or token id) that ended generation.
    #[serde(default)]
    stop_reason: Option<Value>,
}

#[derive(Deserialize)]
struct ChoiceMessage {
    #[serde(default)]
    content: Option<MessageContent>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCallIn>>,
    #[serde(default)]
    function_call: Option<FunctionIn>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum MessageContent {
    Text(String),
    Parts(Vec<ContentPartIn>),
}

#[derive(Deserialize)]
struct ContentPartIn {
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
struct ToolCallIn {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<FunctionIn>,
}

#[derive(Deserialize)]
struct FunctionIn {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<Box<RawValue>>,
}

/// OpenAI's usage, plus DeepSeek's cache counter.
#[derive(Deserialize, Default, Clone)]
struct ChatUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    total_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    completion_tokens_details: Option<CompletionDetails>,
    #[serde(default)]
    prompt_cache_hit_tokens: Option<u64>,
}

#[derive(Deserialize, Default, Clone)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

#[derive(Deserialize, Default, Clone)]
struct CompletionDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

impl ChatUsage {
    fn to_usage(&self) -> Usage {
        let total = self
            .total_tokens
            .or(match (self.prompt_tokens, self.completion_tokens) {
                (Some(p), Some(c)) => Some(p.saturating_add(c)),
                _ => None,
            });
        Usage {
            input_tokens: self.prompt_tokens,
            output_tokens: self.completion_tokens,
            total_tokens: total,
            cached_input_tokens: self
                .prompt_tokens_details
                .as_ref()
                .and_then(|d| d.cached_tokens)
                .or(self.prompt_cache_hit_tokens),
            reasoning_tokens: self
                .completion_tokens_details
                .as_ref()
                .and_then(|d| d.reasoning_tokens),
            source: UsageSource::Reported,
        }
    }
}

#[derive(Serialize)]
struct MessageOut<'a> {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: Vec<BlockOut>,
    stop_reason: Option<&'static str>,
    stop_sequence: Option<String>,
    usage: UsageOut,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockOut {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        input: Box<RawValue>,
    },
}

#[derive(Serialize)]
struct UsageOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    input_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_read_input_tokens: Option<u64>,
    output_tokens: u64,
}

/// Anthropic's input tokens exclude cache reads.
fn uncached_input(u: &Usage) -> Option<u64> {
    u.input_tokens
        .map(|i| i.saturating_sub(u.cached_input_tokens.unwrap_or(0)))
}

fn message_usage(u: Option<&Usage>) -> UsageOut {
    UsageOut {
        input_tokens: Some(u.and_then(uncached_input).unwrap_or(0)),
        cache_read_input_tokens: u.and_then(|u| u.cached_input_tokens),
        output_tokens: u.and_then(|u| u.output_tokens).unwrap_or(0),
    }
}

fn stop_reason(
    finish: Option<&str>,
    tool_use: bool,
    refusal: bool,
    stop_sequence: bool,
) -> &'static str {
    match finish {
        Some("length") => "max_tokens",
        Some("tool_calls" | "function_call") => "tool_use",
        Some("content_filter") => "refusal",
        _ if tool_use => "tool_use",
        _ if refusal => "refusal",
        Some("stop") if stop_sequence => "stop_sequence",
        _ => "end_turn",
    }
}

/// The stop string a server reports (vLLM's `stop_reason`), for `stop` only.
fn matched_stop(finish: Option<&str>, reported: Option<&Value>) -> Option<String> {
    match (finish, reported) {
        (Some("stop"), Some(Value::String(s))) => Some(s.clone()),
        _ => None,
    }
}

fn message_id(provider_id: Option<&str>, fallback: &str) -> String {
    let id = provider_id.filter(|s| !s.is_empty()).unwrap_or(fallback);
    if id.starts_with("msg_") {
        id.to_string()
    } else {
        format!("msg_{id}")
    }
}

/// Tool arguments text: a JSON string's content, or the raw JSON itself.
fn arguments_text(raw: &RawValue) -> String {
    if raw.get().starts_with('"') {
        serde_json::from_str::<String>(raw.get()).unwrap_or_default()
    } else if raw.get() == "null" {
        String::new()
    } else {
        raw.get().to_string()
    }
}

/// Tool arguments as an Anthropic `input` object (see the module doc).
fn tool_input(arguments: &str) -> Box<RawValue> {
    let trimmed = arguments.trim();
    let object = |s: &str| -> Option<Box<RawValue>> {
        if !s.trim_start().starts_with('{') {
            return None;
        }
        serde_json::from_str::<Box<RawValue>>(s).ok()
    };
    if trimmed.is_empty() {
        return empty_object();
    }
    if let Some(obj) = object(trimmed) {
        return obj;
    }
    if let Ok(inner) = serde_json::from_str::<String>(trimmed) {
        if let Some(obj) = object(&inner) {
            return obj;
        }
    }
    let wrapped = serde_json::json!({ "_raw": arguments }).to_string();
    RawValue::from_string(wrapped).unwrap_or_else(|_| empty_object())
}

fn empty_object() -> Box<RawValue> {
    // `{}` is valid JSON; the fallback cannot be reached but must not panic.
    RawValue::from_string("{}".to_string()).unwrap_or_else(|_| Box::<RawValue>::default())
}

/// A complete OpenAI chat completion as an Anthropic message.
pub fn response(body: &[u8], ctx: &ResponseContext<'_>) -> Result<Vec<u8>, ApiError> {
    let c: Completion = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_gateway(
            "invalid_provider_response",
            format!("the provider's response is not a chat completion: {e}"),
        )
    })?;
    if let Some(err) = c.error.as_ref().filter(|e| !e.is_null()) {
        let message = match err {
            Value::Object(o) => o.get("message").and_then(Value::as_str).map(str::to_string),
            Value::String(s) => Some(s.clone()),
            _ => None,
        };
        return Err(ApiError::bad_gateway(
            "provider_error",
            message.unwrap_or_else(|| "the provider returned an error".to_string()),
        ));
    }
    let choice = c
        .choices
        .unwrap_or_default()
        .into_iter()
        .min_by_key(|ch| ch.index.unwrap_or(0))
        .ok_or_else(|| {
            ApiError::bad_gateway(
                "invalid_provider_response",
                "the provider's response has no choices",
            )
        })?;
    let id = message_id(c.id.as_deref(), ctx.id);
    let mut content = Vec::new();
    let mut refusal = false;
    let mut tool_use = false;
    if let Some(m) = choice.message {
        let text = match m.content {
            Some(MessageContent::Text(s)) => s,
            Some(MessageContent::Parts(parts)) => {
                parts.into_iter().filter_map(|p| p.text).collect()
            }
            None => String::new(),
        };
        if !text.is_empty() {
            content.push(BlockOut::Text { text });
        }
        if let Some(r) = m.refusal.filter(|r| !r.is_empty()) {
            refusal = true;
            content.push(BlockOut::Text { text: r });
        }
        let legacy = m.function_call.map(|f| ToolCallIn {
            id: None,
            function: Some(f),
        });
        for (n, call) in m
            .tool_calls
            .unwrap_or_default()
            .into_iter()
            .chain(legacy)
            .enumerate()
        {
            let f = call.function.unwrap_or(FunctionIn {
                name: None,
                arguments: None,
            });
            let arguments = f
                .arguments
                .as_deref()
                .map(arguments_text)
                .unwrap_or_default();
            tool_use = true;
            content.push(BlockOut::ToolUse {
                id: call
                    .id
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| format!("toolu_{}_{n}", id.trim_start_matches("msg_"))),
                name: f.name.unwrap_or_default(),
                input: tool_input(&arguments),
            });
        }
    }
    let finish = choice.finish_reason.as_deref();
    let stop_sequence = matched_stop(finish, choice.stop_reason.as_ref());
    let usage = c.usage.as_ref().map(ChatUsage::to_usage);
    let model = c
        .model
        .as_deref()
        .filter(|m| !m.is_empty())
        .unwrap_or(ctx.model);
    let out = MessageOut {
        id,
        kind: "message",
        role: "assistant",
        model,
        content,
        stop_reason: Some(stop_reason(
            finish,
            tool_use,
            refusal,
            stop_sequence.is_some(),
        )),
        stop_sequence,
        usage: message_usage(usage.as_ref()),
    };
    serde_json::to_vec(&out).map_err(|e| {
        ApiError::bad_gateway(
            "invalid_provider_response",
            format!("the provider's response cannot be converted: {e}"),
        )
    })
}

// ---------------------------------------------------------------------------
// Stream
// ---------------------------------------------------------------------------

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    object: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Option<Vec<ChunkChoice>>,
    #[serde(default)]
    usage: Option<ChatUsage>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    message: Option<Value>,
    #[serde(default, rename = "type")]
    kind: Option<Value>,
    #[serde(default)]
    code: Option<Value>,
}

#[derive(Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    index: Option<u64>,
    #[serde(default)]
    delta: Option<ChunkDelta>,
    #[serde(default)]
    finish_reason: Option<String>,
    #[serde(default)]
    stop_reason: Option<Value>,
}

#[derive(Deserialize)]
struct ChunkDelta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<DeltaToolCall>>,
    #[serde(default)]
    function_call: Option<FunctionIn>,
}

#[derive(Deserialize)]
struct DeltaToolCall {
    #[serde(default)]
    index: Option<u64>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<FunctionIn>,
}

/// An Anthropic stream event; serialized with `type` first, as Anthropic does.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Out<'a> {
    MessageStart {
        message: MessageOut<'a>,
    },
    ContentBlockStart {
        index: u32,
        content_block: BlockStart<'a>,
    },
    ContentBlockDelta {
        index: u32,
        delta: DeltaOut<'a>,
    },
    ContentBlockStop {
        index: u32,
    },
    MessageDelta {
        delta: MessageDeltaBody<'a>,
        usage: UsageOut,
    },
    MessageStop,
    Ping,
    Error {
        error: ErrorOut<'a>,
    },
}

impl Out<'_> {
    fn name(&self) -> &'static str {
        match self {
            Out::MessageStart { .. } => "message_start",
            Out::ContentBlockStart { .. } => "content_block_start",
            Out::ContentBlockDelta { .. } => "content_block_delta",
            Out::ContentBlockStop { .. } => "content_block_stop",
            Out::MessageDelta { .. } => "message_delta",
            Out::MessageStop => "message_stop",
            Out::Ping => "ping",
            Out::Error { .. } => "error",
        }
    }
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockStart<'a> {
    Text {
        text: &'static str,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: EmptyObject,
    },
}

#[derive(Serialize)]
struct EmptyObject {}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum DeltaOut<'a> {
    TextDelta { text: &'a str },
    InputJsonDelta { partial_json: &'a str },
}

#[derive(Serialize)]
struct MessageDeltaBody<'a> {
    stop_reason: &'static str,
    stop_sequence: Option<&'a str>,
}

#[derive(Serialize)]
struct ErrorOut<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    message: &'a str,
}

fn write_event(out: &mut Vec<u8>, ev: &Out<'_>) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(ev.name().as_bytes());
    out.extend_from_slice(b"\ndata: ");
    // Writing plain structs into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, ev);
    out.extend_from_slice(b"\n\n");
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing received yet: no `message_start` sent.
    Waiting,
    /// `message_start` sent; content streaming.
    Streaming,
    /// The provider's `finish_reason` arrived: every block is closed.
    Finished,
    /// `message_stop` or an `error` event sent: nothing more goes out.
    Ended,
}

#[derive(Debug, Clone, Copy)]
enum Open {
    Text(u32),
    Tool { index: u32, call: usize },
}

#[derive(Debug)]
enum Pending {
    Text(String),
    Tool(usize),
}

#[derive(Debug)]
struct Call {
    openai_index: Option<u64>,
    id: String,
    name: Option<String>,
    /// Argument fragments received while the call's block is not open.
    held: String,
}

/// The provider's OpenAI chat SSE stream as the client's Anthropic Messages stream.
#[derive(Debug)]
pub struct Stream {
    parser: SseParser,
    model: String,
    id: String,
    phase: Phase,
    open: Option<Open>,
    queue: VecDeque<Pending>,
    calls: Vec<Call>,
    next_index: u32,
    finish_reason: Option<String>,
    stop_sequence: Option<String>,
    refusal: bool,
    usage: Option<Usage>,
}

impl Stream {
    /// `ctx.model` and `ctx.id` are used when the provider's chunks name no
    /// model or id.
    pub fn new(ctx: &ResponseContext<'_>) -> Self {
        Stream {
            parser: SseParser::new(),
            model: ctx.model.to_string(),
            id: message_id(None, ctx.id),
            phase: Phase::Waiting,
            open: None,
            queue: VecDeque::new(),
            calls: Vec::new(),
            next_index: 0,
            finish_reason: None,
            stop_sequence: None,
            refusal: false,
            usage: None,
        }
    }

    fn on_event(&mut self, ev: &Event, out: &mut Vec<u8>) {
        if self.phase == Phase::Ended {
            return;
        }
        let data = ev.data.trim();
        if data.is_empty() {
            if ev.raw.first() == Some(&b':') {
                write_event(out, &Out::Ping);
            }
            return;
        }
        if data == "[DONE]" {
            self.end(out);
            return;
        }
        let Ok(chunk) = serde_json::from_str::<Chunk>(data) else {
            return; // Not a chunk: nothing the client could use.
        };
        if let Some((kind, message)) = chunk_error(&chunk) {
            self.fail(kind, &message, out);
            return;
        }
        if let Some(u) = &chunk.usage {
            self.merge_usage(u.to_usage());
        }
        if self.phase == Phase::Waiting {
            if let Some(id) = chunk.id.as_deref().filter(|s| !s.is_empty()) {
                self.id = message_id(Some(id), id);
            }
            if let Some(model) = chunk.model.as_deref().filter(|s| !s.is_empty()) {
                self.model = model.to_string();
            }
            self.start(out);
        }
        if self.phase != Phase::Streaming {
            return;
        }
        let Some(choice) = chunk
            .choices
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.index.unwrap_or(0) == 0)
        else {
            return;
        };
        if let Some(delta) = choice.delta {
            if let Some(text) = delta.content.as_deref() {
                self.text(text, out);
            }
            if let Some(text) = delta.refusal.as_deref().filter(|t| !t.is_empty()) {
                self.refusal = true;
                self.text(text, out);
            }
            for call in delta.tool_calls.unwrap_or_default() {
                self.tool_fragment(call.index, call.id, call.function, out);
            }
            if let Some(f) = delta.function_call {
                self.tool_fragment(Some(0), None, Some(f), out);
            }
        }
        if let Some(finish) = choice.finish_reason.filter(|f| !f.is_empty()) {
            self.stop_sequence = matched_stop(Some(&finish), choice.stop_reason.as_ref());
            self.finish_reason = Some(finish);
            self.close_all(out);
            self.phase = Phase::Finished;
        }
    }

    fn merge_usage(&mut self, new: Usage) {
        self.usage = Some(match self.usage.take() {
            None => new,
            Some(old) => Usage {
                input_tokens: new.input_tokens.or(old.input_tokens),
                output_tokens: new.output_tokens.or(old.output_tokens),
                total_tokens: new.total_tokens.or(old.total_tokens),
                cached_input_tokens: new.cached_input_tokens.or(old.cached_input_tokens),
                reasoning_tokens: new.reasoning_tokens.or(old.reasoning_tokens),
                source: UsageSource::Reported,
            },
        });
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        let usage = UsageOut {
            input_tokens: Some(self.usage.as_ref().and_then(uncached_input).unwrap_or(0)),
            cache_read_input_tokens: self.usage.as_ref().and_then(|u| u.cached_input_tokens),
            output_tokens: 0,
        };
        let message = MessageOut {
            id: self.id.clone(),
            kind: "message",
            role: "assistant",
            model: &self.model,
            content: Vec::new(),
            stop_reason: None,
            stop_sequence: None,
            usage,
        };
        write_event(out, &Out::MessageStart { message });
        self.phase = Phase::Streaming;
    }

    fn text(&mut self, text: &str, out: &mut Vec<u8>) {
        if text.is_empty() {
            return;
        }
        match (self.open, self.queue.is_empty()) {
            (Some(Open::Text(index)), true) => text_delta(out, index, text),
            (None, true) => {
                let index = self.open_text(out);
                text_delta(out, index, text);
            }
            _ => match self.queue.back_mut() {
                Some(Pending::Text(held)) => held.push_str(text),
                _ => self.queue.push_back(Pending::Text(text.to_string())),
            },
        }
    }

    fn tool_fragment(
        &mut self,
        index: Option<u64>,
        id: Option<String>,
        function: Option<FunctionIn>,
        out: &mut Vec<u8>,
    ) {
        let c = self.call_for(index, id.filter(|s| !s.is_empty()));
        let (name, args) = match function {
            Some(f) => (f.name, f.arguments.as_deref().map(arguments_text)),
            None => (None, None),
        };
        if let Some(name) = name.filter(|n| !n.is_empty()) {
            if let Some(call) = self.calls.get_mut(c) {
                if call.name.is_none() {
                    call.name = Some(name);
                }
            }
        }
        if let Some(args) = args.filter(|a| !a.is_empty()) {
            match self.open {
                Some(Open::Tool { index, call }) if call == c => json_delta(out, index, &args),
                _ => {
                    if let Some(call) = self.calls.get_mut(c) {
                        call.held.push_str(&args);
                    }
                }
            }
        }
        self.advance(out);
    }

    /// The call a fragment belongs to: by id, else by index, else the last
    /// one; a new call is registered and queued.
    fn call_for(&mut self, index: Option<u64>, id: Option<String>) -> usize {
        let found = match (&id, index) {
            (Some(id), _) => self.calls.iter().position(|c| c.id == *id),
            (None, Some(ix)) => self.calls.iter().rposition(|c| c.openai_index == Some(ix)),
            (None, None) => self.calls.len().checked_sub(1),
        };
        if let Some(c) = found {
            return c;
        }
        let n = self.calls.len();
        let id = id.unwrap_or_else(|| format!("toolu_{}_{n}", self.id.trim_start_matches("msg_")));
        self.calls.push(Call {
            openai_index: index,
            id,
            name: None,
            held: String::new(),
        });
        self.queue.push_back(Pending::Tool(n));
        n
    }

    /// Opens what can be opened: a text block closes when anything follows
    /// it; a tool block stays open until the provider finishes.
    fn advance(&mut self, out: &mut Vec<u8>) {
        loop {
            match self.open {
                Some(Open::Tool { .. }) => return,
                Some(Open::Text(index)) => {
                    if self.queue.is_empty() {
                        return;
                    }
                    block_stop(out, index);
                    self.open = None;
                }
                None => match self.queue.front() {
                    None => return,
                    Some(Pending::Tool(c)) => {
                        let c = *c;
                        if self.calls.get(c).is_none_or(|call| call.name.is_none()) {
                            return; // Its name has not arrived yet.
                        }
                        self.queue.pop_front();
                        self.open_tool(c, out);
                    }
                    Some(Pending::Text(_)) => {
                        if let Some(Pending::Text(text)) = self.queue.pop_front() {
                            let index = self.open_text(out);
                            text_delta(out, index, &text);
                        }
                    }
                },
            }
        }
    }

    fn open_text(&mut self, out: &mut Vec<u8>) -> u32 {
        let index = self.next_index;
        self.next_index = self.next_index.saturating_add(1);
        write_event(
            out,
            &Out::ContentBlockStart {
                index,
                content_block: BlockStart::Text { text: "" },
            },
        );
        self.open = Some(Open::Text(index));
        index
    }

    fn open_tool(&mut self, c: usize, out: &mut Vec<u8>) {
        let Some(call) = self.calls.get_mut(c) else {
            return;
        };
        let index = self.next_index;
        self.next_index = self.next_index.saturating_add(1);
        write_event(
            out,
            &Out::ContentBlockStart {
                index,
                content_block: BlockStart::ToolUse {
                    id: &call.id,
                    name: call.name.as_deref().unwrap_or_default(),
                    input: EmptyObject {},
                },
            },
        );
        let held = std::mem::take(&mut call.held);
        if !held.is_empty() {
            json_delta(out, index, &held);
        }
        self.open = Some(Open::Tool { index, call: c });
    }

    /// Closes the open block and emits everything held, in order.
    fn close_all(&mut self, out: &mut Vec<u8>) {
        loop {
            if let Some(open) = self.open.take() {
                let index = match open {
                    Open::Text(index) | Open::Tool { index, .. } => index,
                };
                block_stop(out, index);
            }
            match self.queue.pop_front() {
                None => return,
                Some(Pending::Text(text)) => {
                    let index = self.open_text(out);
                    text_delta(out, index, &text);
                }
                Some(Pending::Tool(c)) => self.open_tool(c, out),
            }
        }
    }

    /// The clean end: `message_delta` and `message_stop`.
    fn end(&mut self, out: &mut Vec<u8>) {
        match self.phase {
            Phase::Ended => return,
            Phase::Waiting => self.start(out),
            Phase::Streaming | Phase::Finished => {}
        }
        self.close_all(out);
        let tool_use = !self.calls.is_empty();
        let reason = stop_reason(
            self.finish_reason.as_deref(),
            tool_use,
            self.refusal,
            self.stop_sequence.is_some(),
        );
        let u = self.usage.as_ref();
        let usage = UsageOut {
            input_tokens: u.and_then(uncached_input),
            cache_read_input_tokens: u.and_then(|u| u.cached_input_tokens),
            output_tokens: u.and_then(|u| u.output_tokens).unwrap_or(0),
        };
        write_event(
            out,
            &Out::MessageDelta {
                delta: MessageDeltaBody {
                    stop_reason: reason,
                    stop_sequence: self.stop_sequence.as_deref(),
                },
                usage,
            },
        );
        write_event(out, &Out::MessageStop);
        self.phase = Phase::Ended;
    }

    fn fail(&mut self, kind: &str, message: &str, out: &mut Vec<u8>) {
        write_event(
            out,
            &Out::Error {
                error: ErrorOut { kind, message },
            },
        );
        self.phase = Phase::Ended;
        self.queue.clear();
        self.open = None;
    }
}

fn text_delta(out: &mut Vec<u8>, index: u32, text: &str) {
    write_event(
        out,
        &Out::ContentBlockDelta {
            index,
            delta: DeltaOut::TextDelta { text },
        },
    );
}

fn json_delta(out: &mut Vec<u8>, index: u32, partial_json: &str) {
    write_event(
        out,
        &Out::ContentBlockDelta {
            index,
            delta: DeltaOut::InputJsonDelta { partial_json },
        },
    );
}

fn block_stop(out: &mut Vec<u8>, index: u32) {
    write_event(out, &Out::ContentBlockStop { index });
}

/// An error carried in a stream chunk: `{"error":{...}}`, `{"error":"..."}`
/// or vLLM's `{"object":"error","message":...,"code":...}`.
fn chunk_error(chunk: &Chunk) -> Option<(&'static str, String)> {
    let (message, kind, code) = match chunk.error.as_ref() {
        Some(Value::Object(e)) => (e.get("message"), e.get("type"), e.get("code")),
        Some(Value::String(s)) => {
            return Some(("api_error", s.clone()));
        }
        Some(Value::Null) | None if chunk.object.as_deref() == Some("error") => (
            chunk.message.as_ref(),
            chunk.kind.as_ref(),
            chunk.code.as_ref(),
        ),
        Some(Value::Null) | None => return None,
        Some(other) => (Some(other), None, None),
    };
    let message = match message {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "the provider reported an error mid-stream".to_string(),
        Some(other) => other.to_string(),
    };
    let code_text = code.and_then(Value::as_str);
    Some((
        stream_error_type(kind, code),
        anthropic_wording(code_text, message),
    ))
}

fn stream_error_type(kind: Option<&Value>, code: Option<&Value>) -> &'static str {
    let status = code.and_then(|c| match c {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    });
    if let Some(status) = status.filter(|s| (400..600).contains(s)) {
        return anthropic_error_type(u16::try_from(status).unwrap_or(500));
    }
    let words = [kind, code]
        .iter()
        .filter_map(|v| v.and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_lowercase();
    if words.contains("rate_limit") || words.contains("insufficient_quota") {
        "rate_limit_error"
    } else if words.contains("overloaded") {
        "overloaded_error"
    } else if words.contains("invalid_request") || words.contains("context_length") {
        "invalid_request_error"
    } else if words.contains("authentication") {
        "authentication_error"
    } else if words.contains("permission") {
        "permission_error"
    } else if words.contains("not_found") {
        "not_found_error"
    } else {
        "api_error"
    }
}

impl StreamConverter for Stream {
    fn push(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        if self.phase == Phase::Ended {
            return out;
        }
        for ev in self.parser.push(bytes) {
            self.on_event(&ev, &mut out);
        }
        if self.phase != Phase::Ended && self.parser.pending() > MAX_PENDING {
            self.parser = SseParser::new();
            self.fail(
                "api_error",
                "the provider sent a stream event larger than the gateway accepts",
                &mut out,
            );
        }
        out
    }

    fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(tail) = self.parser.finish() {
            // A last event without its blank line still counts when it is whole.
            self.on_event(&tail, &mut out);
        }
        match self.phase {
            Phase::Ended => {}
            Phase::Finished => self.end(&mut out),
            Phase::Waiting | Phase::Streaming => self.fail(
                "api_error",
                "the provider's stream ended before the response was complete",
                &mut out,
            ),
        }
        out
    }

    fn usage(&self) -> Option<&Usage> {
        self.usage.as_ref()
    }
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Longest piece of a plain-text error body quoted to the client.
const MAX_QUOTED_TEXT: usize = 300;

/// Reads an OpenAI-compatible provider's error body.
pub fn error(status: u16, body: &[u8]) -> ProviderError {
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
    let mut err = ProviderError {
        status,
        kind: None,
        message: None,
        code: None,
        param: None,
    };
    match serde_json::from_slice::<Loose>(body) {
        Ok(loose) => match loose.error {
            Some(Value::Object(e)) => {
                err.message = text(e.get("message"));
                err.kind = text(e.get("type"));
                err.code = text(e.get("code"));
                err.param = text(e.get("param"));
            }
            Some(Value::String(s)) if !s.is_empty() => err.message = Some(s),
            _ => {
                err.message =
                    text(loose.message.as_ref()).or_else(|| detail_text(loose.detail.as_ref()));
                err.kind = text(loose.kind.as_ref());
                err.code = text(loose.code.as_ref());
                err.param = text(loose.param.as_ref());
            }
        },
        Err(_) => {
            let s = String::from_utf8_lossy(body);
            let s = s.trim();
            if !s.is_empty() && !s.starts_with('<') {
                err.message = Some(s.chars().take(MAX_QUOTED_TEXT).collect());
            }
        }
    }
    err
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Null | Value::String(_) => None,
        other => Some(other.to_string()),
    }
}

/// FastAPI's `detail`: a string, or a list of `{"msg": ...}` validation errors.
fn detail_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Array(items) => {
            let msgs: Vec<&str> = items
                .iter()
                .filter_map(|i| i.get("msg").and_then(Value::as_str))
                .collect();
            if msgs.is_empty() {
                text(v)
            } else {
                Some(msgs.join("; "))
            }
        }
        _ => text(v),
    }
}

/// A provider error in Anthropic's envelope, typed from the status.
pub fn error_body(err: &ProviderError) -> Vec<u8> {
    let kind = anthropic_error_type(err.status);
    let message = match err.message.clone().filter(|m| !m.is_empty()) {
        Some(m) => anthropic_wording(err.code.as_deref(), m),
        None => format!("the provider returned HTTP {}", err.status),
    };
    anthropic_error_body(kind, &message)
}

/// A context-length error worded as Anthropic does (`prompt is too long: ...`),
/// which coding agents recognise to compact their context; other messages as is.
fn anthropic_wording(code: Option<&str>, message: String) -> String {
    let context_length =
        code == Some("context_length_exceeded") || message.contains("maximum context length");
    if context_length && !message.starts_with("prompt is too long") {
        format!("prompt is too long: {message}")
    } else {
        message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_json_keeps_strings_and_member_order() {
        assert_eq!(
            compact_json("{ \"b\" : [1, 2],\n \"a\": \"x y \\\" z\\\\\" }"),
            r#"{"b":[1,2],"a":"x y \" z\\"}"#
        );
    }

    #[test]
    fn tool_input_accepts_objects_and_wraps_the_rest() {
        assert_eq!(tool_input("").get(), "{}");
        assert_eq!(tool_input(r#"{"a": 1}"#).get(), r#"{"a": 1}"#);
        assert_eq!(tool_input(r#""{\"a\":1}""#).get(), r#"{"a":1}"#);
        assert_eq!(tool_input(r#"{"a": "#).get(), r#"{"_raw":"{\"a\": "}"#);
        assert_eq!(tool_input("[1]").get(), r#"{"_raw":"[1]"}"#);
    }
}
