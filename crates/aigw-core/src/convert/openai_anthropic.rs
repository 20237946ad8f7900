//! OpenAI Chat Completions client → Anthropic Messages provider
//! (`POST /v1/messages`). See `convert/mod.rs` for the interface.
//!
//! Where the two APIs differ, this is what the gateway does (the README's
//! provider table is drawn from this list).
//!
//! Request:
//! - `model` is the target's model name.
//! - `system` and `developer` messages become the top-level `system`, as text
//!   blocks in their order. Anthropic has no system turn mid-conversation, so
//!   a system message anywhere in the conversation is hoisted there too.
//! - `max_tokens` = `max_completion_tokens`, else `max_tokens`, else the
//!   gateway default (`DEFAULT_MAX_TOKENS`, Anthropic requires one).
//! - `temperature`: Anthropic's range is 0..1, OpenAI's 0..2. A value above 1
//!   is rejected with 400 (clamping would silently change the sampling the
//!   client asked for). `top_p` is copied.
//! - `stop` (string or array) → `stop_sequences`; `user` → `metadata.user_id`;
//!   `stream` is copied and `stream_options` consumed (the stream converter
//!   always reports usage).
//! - `tools`: function tools → `{name, description, input_schema}` (the
//!   `parameters` schema copied byte for byte; an absent one becomes an empty
//!   object schema), `strict: true` copied; other tool types → 400.
//! - `tool_choice`: `auto` → auto, `none` → none, `required` → any, a named
//!   function → `{"type":"tool","name"}`; `parallel_tool_calls: false` →
//!   `disable_parallel_tool_use: true`. A tool choice without tools is dropped
//!   for `auto`/`none` and rejected for `required` or a named function.
//! - Messages: assistant `tool_calls` → `tool_use` blocks (arguments must be a
//!   JSON object, copied byte for byte; empty arguments mean `{}`); `tool`
//!   messages → `tool_result` blocks in a user turn; consecutive turns of the
//!   same role are merged (Anthropic requires alternation), so tool results
//!   and a following user message share one user turn, results first. Empty
//!   text is left out (Anthropic rejects empty text blocks). A message's
//!   `name` is dropped.
//! - Content parts: `text`; `refusal` (assistant) as text; `image_url` with a
//!   base64 `data:` URL → base64 image (jpeg, png, gif, webp), with an http(s)
//!   URL → URL image; `detail` is dropped. `input_audio`, `file` and unknown
//!   part types → 400.
//! - Prompt caching extension: `cache_control` on a content part, on a tool,
//!   or on a whole message (applied to its last block) is copied to Anthropic.
//! - `response_format`: `json_schema` → `output_config.format` (Anthropic's
//!   structured outputs; the schema copied byte for byte). `json_object`
//!   (no schema): the gateway adds a tool named [`JSON_OBJECT_TOOL`] whose
//!   input is any object and makes the model call it (`tool_choice` tool, or
//!   `any` when the client's own tools may be called too); the response
//!   converters turn that call back into the message text. `text` is a no-op;
//!   other types → 400.
//! - `reasoning_effort` → adaptive thinking (`thinking: {"type":"adaptive"}`)
//!   with `output_config.effort`: `minimal`/`low` → `low`, `medium`, `high`,
//!   `xhigh`; `none` asks for nothing (the model's default applies). Models
//!   without adaptive thinking (before Claude 4.6) answer 400, as does a
//!   thinking request with a `temperature` other than 1; the provider's 400
//!   reaches the client.
//! - Thinking round trip: an assistant message's `thinking_blocks` (the
//!   convention of LiteLLM-style clients, as returned by [`response`]) are sent
//!   back first in that turn, as Anthropic requires during tool use with
//!   thinking. `reasoning_content` on input is ignored (it has no signature).
//! - Rejected with 400: `n` other than 1, `logprobs: true`, `top_logprobs` > 0,
//!   non-zero `presence_penalty`/`frequency_penalty`, non-empty `logit_bias`,
//!   `modalities` other than text, `audio`, `web_search_options`, legacy
//!   `functions`/`function_call` and `function` messages.
//! - Dropped: `seed` (best effort in OpenAI too), `store`, `metadata`,
//!   `service_tier`, `prediction`, `verbosity`, and any unknown field.
//!
//! Response:
//! - `id` = `chatcmpl-` + Anthropic's id; `created` from the context; `model`
//!   as the provider reports it; one choice.
//! - Text blocks joined (no separator) into `message.content`, `null` when the
//!   message is only tool calls; `tool_use` → `tool_calls` (arguments: the
//!   input's JSON text without whitespace, member order kept).
//! - `thinking` blocks → `message.reasoning_content` (joined, as DeepSeek
//!   does) and, with `redacted_thinking`, `message.thinking_blocks` (verbatim,
//!   signatures included) so a client can send them back.
//! - `stop_reason` → `finish_reason`: `end_turn`, `stop_sequence`, `pause_turn`
//!   → `stop`; `max_tokens`, `model_context_window_exceeded` → `length`;
//!   `tool_use` → `tool_calls` (`stop` when only [`JSON_OBJECT_TOOL`] was
//!   called); `refusal` → `content_filter`; anything else → `stop`.
//! - Usage: `prompt_tokens` = `input_tokens` + `cache_read_input_tokens` +
//!   `cache_creation_input_tokens` (OpenAI's prompt count includes cached
//!   tokens; Anthropic's `input_tokens` excludes both cache counts);
//!   `completion_tokens` = `output_tokens` (thinking included);
//!   `prompt_tokens_details.cached_tokens` = `cache_read_input_tokens`.
//!
//! Stream: `message_start` → the role chunk; text and thinking deltas →
//! `content` / `reasoning_content` deltas; each `tool_use` block → a
//! `tool_calls` delta with the next tool index (counting tool calls, not
//! blocks), its `input_json_delta` pieces → `arguments` deltas;
//! `message_delta` → the `finish_reason` chunk; `message_stop` → the usage
//! chunk (`choices: []`, left out when the provider reported no usage at all),
//! then `data: [DONE]`; `ping`, signatures and unknown events → nothing; an
//! `error` event → an OpenAI error event (`type` mapped from Anthropic's,
//! `code` = Anthropic's error type) and no `[DONE]`. Signatures and redacted
//! thinking are not exposed in streams. The [`JSON_OBJECT_TOOL`] input streams
//! as `content` pieces exactly as the provider sends them (not compacted).
//! Usage: `message_start` counts, replaced by each count a `message_delta`
//! reports (they are cumulative); until then `output_tokens` is Anthropic's
//! provisional count. A stream that ends without `message_stop` ends with a
//! `stream_interrupted` error event; an event over 1 MiB ends it with
//! `stream_event_too_large`.

use crate::schema::json_object::compact_json;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use super::{unsupported, ProviderError, RequestContext, ResponseContext, StreamConverter};
use crate::error::{openai_error_body, ApiError};
use crate::schema::anthropic::{
    self as wire, BlockDelta, Content, ContentBlock, Message, MessagesRequest, MessagesResponse,
    Metadata, OutputConfig, OutputFormat, Role, Source, StreamEvent, ThinkingConfig, Tool,
    ToolChoice,
};
use crate::schema::json_object::Members;
use crate::sse::{Event, SseParser, MAX_PENDING};
use crate::usage::{Usage, UsageSource};

/// The tool the gateway adds to honour `response_format: json_object`; a call
/// to it is the JSON answer, shown to the client as message text.
pub const JSON_OBJECT_TOOL: &str = "aigw_json_response";

const IMAGE_TYPES: [&str; 4] = ["image/jpeg", "image/png", "image/gif", "image/webp"];

// ---------------------------------------------------------------------------
// Request

/// An OpenAI chat request: the fields this converter reads.
#[derive(Deserialize)]
struct ChatRequest {
    #[serde(default)]
    messages: Option<Vec<ChatMessage>>,
    #[serde(default)]
    max_completion_tokens: Option<u64>,
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    stop: Option<Stop>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    tools: Option<Vec<ChatTool>>,
    #[serde(default)]
    tool_choice: Option<Value>,
    #[serde(default)]
    parallel_tool_calls: Option<bool>,
    #[serde(default)]
    response_format: Option<ResponseFormat>,
    #[serde(default)]
    n: Option<u64>,
    #[serde(default)]
    logprobs: Option<bool>,
    #[serde(default)]
    top_logprobs: Option<u64>,
    #[serde(default)]
    presence_penalty: Option<f64>,
    #[serde(default)]
    frequency_penalty: Option<f64>,
    #[serde(default)]
    logit_bias: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    reasoning_effort: Option<String>,
    #[serde(default)]
    modalities: Option<Vec<String>>,
    #[serde(default)]
    audio: Option<IgnoredAny>,
    #[serde(default)]
    web_search_options: Option<IgnoredAny>,
    #[serde(default)]
    functions: Option<IgnoredAny>,
    #[serde(default)]
    function_call: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct ChatMessage {
    role: String,
    #[serde(default)]
    content: Option<ChatContent>,
    #[serde(default)]
    tool_calls: Option<Vec<ChatToolCall>>,
    #[serde(default)]
    tool_call_id: Option<String>,
    #[serde(default)]
    thinking_blocks: Option<Vec<ContentBlock>>,
    #[serde(default)]
    cache_control: Option<Value>,
}

/// A message's `content`: a string or an array of parts.
type ChatContent = Content<ChatPart>;

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ChatPart {
    Text {
        text: String,
        #[serde(default)]
        cache_control: Option<Value>,
    },
    ImageUrl {
        image_url: ImageUrl,
        #[serde(default)]
        cache_control: Option<Value>,
    },
    Refusal {
        refusal: String,
    },
    InputAudio {},
    File {},
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ImageUrl {
    Object { url: String },
    Url(String),
}

#[derive(Deserialize)]
struct ChatToolCall {
    #[serde(default)]
    id: String,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    function: Option<FunctionCall>,
}

#[derive(Deserialize)]
struct FunctionCall {
    #[serde(default)]
    name: String,
    #[serde(default)]
    arguments: Option<String>,
}

#[derive(Deserialize)]
struct ChatTool {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    function: Option<FunctionDef>,
    #[serde(default)]
    cache_control: Option<Value>,
}

#[derive(Deserialize)]
struct FunctionDef {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<Box<RawValue>>,
    #[serde(default)]
    strict: Option<bool>,
}

#[derive(Deserialize)]
struct ResponseFormat {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    json_schema: Option<JsonSchemaFormat>,
}

#[derive(Deserialize)]
struct JsonSchemaFormat {
    #[serde(default)]
    schema: Option<Box<RawValue>>,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_value", message)
}

/// The client's OpenAI chat request as an Anthropic Messages request.
pub fn request(body: &[u8], ctx: &RequestContext) -> Result<Vec<u8>, ApiError> {
    let req: ChatRequest = serde_json::from_slice(body).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            ApiError::bad_request(
                "invalid_json",
                format!("request body is not valid JSON: {e}"),
            )
        } else {
            invalid(format!("invalid request body: {e}"))
        }
    })?;
    reject_unsupported(&req)?;

    let messages = req.messages.ok_or_else(|| {
        ApiError::bad_request(
            "missing_required_parameter",
            "you must provide a `messages` parameter",
        )
        .with_param("messages")
    })?;
    let (system, messages) = convert_messages(messages)?;

    let temperature = match req.temperature {
        Some(t) if !(0.0..=1.0).contains(&t) => {
            return Err(unsupported(
                "temperature",
                format!("temperature {t} is outside the provider's range 0 to 1"),
            ))
        }
        t => t,
    };
    let stop_sequences = match req.stop {
        Some(Stop::One(s)) => vec![s],
        Some(Stop::Many(v)) => v,
        None => Vec::new(),
    };
    let stop_sequences: Vec<String> = stop_sequences
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();

    let mut tools = req
        .tools
        .map(|ts| {
            ts.into_iter()
                .map(convert_tool)
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?
        .filter(|ts| !ts.is_empty());
    let disable_parallel = (req.parallel_tool_calls == Some(false)).then_some(true);
    let mut tool_choice = convert_tool_choice(req.tool_choice.as_ref(), tools.is_some())?;

    let (thinking, effort) = reasoning(req.reasoning_effort.as_deref())?;
    let mut output_config = OutputConfig {
        effort,
        format: None,
    };
    if let Some(format) = req.response_format {
        apply_response_format(format, &mut output_config, &mut tools, &mut tool_choice)?;
    }
    if tools.is_none() {
        tool_choice = None;
    } else if let Some(flag) = disable_parallel {
        let choice = tool_choice.unwrap_or(ToolChoice::Auto {
            disable_parallel_tool_use: None,
        });
        tool_choice = Some(choice.with_disable_parallel_tool_use(flag));
    }

    let out = MessagesRequest {
        model: ctx.model.to_owned(),
        messages,
        max_tokens: Some(
            req.max_completion_tokens
                .or(req.max_tokens)
                .unwrap_or(u64::from(ctx.default_max_tokens)),
        ),
        system: (!system.is_empty()).then_some(Content::Blocks(system)),
        metadata: req
            .user
            .filter(|u| !u.is_empty())
            .map(|u| Metadata { user_id: Some(u) }),
        stop_sequences: (!stop_sequences.is_empty()).then_some(stop_sequences),
        stream: req.stream,
        temperature,
        top_p: req.top_p,
        top_k: None,
        tools,
        tool_choice,
        thinking,
        output_config: (output_config.effort.is_some() || output_config.format.is_some())
            .then_some(output_config),
        service_tier: None,
    };
    serde_json::to_vec(&out).map_err(|e| {
        ApiError::new(
            500,
            "server_error",
            "conversion_failed",
            format!("could not write the provider request: {e}"),
        )
    })
}

/// `reasoning_effort` as adaptive thinking and an effort level.
fn reasoning(effort: Option<&str>) -> Result<(Option<ThinkingConfig>, Option<String>), ApiError> {
    let effort = match effort {
        None | Some("none") => None,
        Some("minimal" | "low") => Some("low"),
        Some("medium") => Some("medium"),
        Some("high") => Some("high"),
        Some("xhigh") => Some("xhigh"),
        Some(other) => {
            return Err(invalid(format!(
                "unknown reasoning_effort `{other}`; expected none, minimal, low, medium, high or xhigh"
            ))
            .with_param("reasoning_effort"))
        }
    };
    Ok(match effort {
        Some(e) => (
            Some(ThinkingConfig::Adaptive { display: None }),
            Some(e.to_owned()),
        ),
        None => (None, None),
    })
}

/// `response_format`: a JSON Schema as structured output; a JSON object
/// through [`JSON_OBJECT_TOOL`] (see the module doc).
fn apply_response_format(
    format: ResponseFormat,
    output_config: &mut OutputConfig,
    tools: &mut Option<Vec<Tool>>,
    tool_choice: &mut Option<ToolChoice>,
) -> Result<(), ApiError> {
    match format.kind.as_str() {
        "text" => {}
        "json_schema" => {
            let schema = format.json_schema.and_then(|j| j.schema).ok_or_else(|| {
                invalid("response_format json_schema needs a `json_schema.schema`")
                    .with_param("response_format")
            })?;
            output_config.format = Some(OutputFormat {
                kind: "json_schema".to_owned(),
                schema,
            });
        }
        "json_object" => {
            let client_tools = tools.is_some();
            let list = tools.get_or_insert_with(Vec::new);
            if list.iter().any(|t| t.name == JSON_OBJECT_TOOL) {
                return Err(invalid(format!(
                    "the tool name `{JSON_OBJECT_TOOL}` is reserved by the gateway for response_format json_object"
                ))
                .with_param("tools"));
            }
            *tool_choice = match tool_choice.take() {
                // The model must call one of the client's tools this turn: no JSON answer.
                Some(c @ (ToolChoice::Any { .. } | ToolChoice::Tool { .. })) => Some(c),
                // It may call the client's tools or answer with JSON.
                Some(ToolChoice::Auto { .. }) | None if client_tools => {
                    list.push(json_object_tool());
                    Some(ToolChoice::Any {
                        disable_parallel_tool_use: None,
                    })
                }
                // No tools, or tools it may not call: the answer is the JSON tool's input.
                _ => {
                    list.push(json_object_tool());
                    Some(ToolChoice::Tool {
                        name: JSON_OBJECT_TOOL.to_owned(),
                        disable_parallel_tool_use: Some(true),
                    })
                }
            };
        }
        other => {
            return Err(invalid(format!(
            "response_format type `{other}` is not supported; use text, json_object or json_schema"
        ))
            .with_param("response_format"))
        }
    }
    Ok(())
}

fn reject_unsupported(req: &ChatRequest) -> Result<(), ApiError> {
    if let Some(n) = req.n.filter(|n| *n != 1) {
        return Err(unsupported(
            "n",
            format!("n={n}: the provider returns one choice per request"),
        ));
    }
    if req.logprobs == Some(true) {
        return Err(unsupported(
            "logprobs",
            "the provider does not return log probabilities",
        ));
    }
    if req.top_logprobs.is_some_and(|k| k > 0) {
        return Err(unsupported(
            "top_logprobs",
            "the provider does not return log probabilities",
        ));
    }
    if req.presence_penalty.is_some_and(|p| p != 0.0) {
        return Err(unsupported(
            "presence_penalty",
            "the provider has no presence penalty",
        ));
    }
    if req.frequency_penalty.is_some_and(|p| p != 0.0) {
        return Err(unsupported(
            "frequency_penalty",
            "the provider has no frequency penalty",
        ));
    }
    if req.logit_bias.as_ref().is_some_and(|b| !b.is_empty()) {
        return Err(unsupported("logit_bias", "the provider has no logit bias"));
    }
    if let Some(m) = req
        .modalities
        .as_ref()
        .and_then(|m| m.iter().find(|m| *m != "text"))
    {
        return Err(unsupported(
            "modalities",
            format!("output modality `{m}` is not supported by the provider"),
        ));
    }
    if req.audio.is_some() {
        return Err(unsupported("audio", "the provider does not produce audio"));
    }
    if req.web_search_options.is_some() {
        return Err(unsupported(
            "web_search_options",
            "web search is not supported for this provider",
        ));
    }
    if req.functions.is_some() || req.function_call.is_some() {
        return Err(unsupported(
            "functions",
            "the legacy `functions`/`function_call` parameters are not supported; use `tools` and `tool_choice`",
        ));
    }
    Ok(())
}

fn json_object_tool() -> Tool {
    Tool {
        kind: None,
        name: JSON_OBJECT_TOOL.to_owned(),
        description: Some(
            "Give your answer to the user as a JSON object: the input of this tool is the answer."
                .to_owned(),
        ),
        input_schema: RawValue::from_string(r#"{"type":"object"}"#.to_owned()).ok(),
        strict: None,
        cache_control: None,
    }
}

fn convert_tool(tool: ChatTool) -> Result<Tool, ApiError> {
    let kind = tool.kind.as_deref().unwrap_or("function");
    if kind != "function" {
        return Err(unsupported(
            "tools",
            format!("tool type `{kind}` is not supported by the provider; only function tools are"),
        ));
    }
    let f = tool
        .function
        .ok_or_else(|| invalid("a function tool needs a `function` object").with_param("tools"))?;
    let schema = match f.parameters {
        Some(p) => p,
        None => RawValue::from_string(r#"{"type":"object","properties":{}}"#.to_owned())
            .unwrap_or_else(|_| wire::empty_object()),
    };
    Ok(Tool {
        kind: None,
        name: f.name,
        description: f.description.filter(|d| !d.is_empty()),
        input_schema: Some(schema),
        strict: f.strict.filter(|s| *s),
        cache_control: tool.cache_control,
    })
}

fn convert_tool_choice(
    choice: Option<&Value>,
    has_tools: bool,
) -> Result<Option<ToolChoice>, ApiError> {
    let Some(choice) = choice else {
        return Ok(None);
    };
    let bad = |msg: String| invalid(msg).with_param("tool_choice");
    let converted = match choice {
        Value::Null => return Ok(None),
        Value::String(s) => match s.as_str() {
            "auto" => ToolChoice::Auto {
                disable_parallel_tool_use: None,
            },
            "none" => ToolChoice::None,
            "required" => ToolChoice::Any {
                disable_parallel_tool_use: None,
            },
            other => return Err(bad(format!("unknown tool_choice `{other}`"))),
        },
        Value::Object(o) => {
            let kind = o.get("type").and_then(Value::as_str).unwrap_or("function");
            if kind != "function" {
                return Err(unsupported(
                    "tool_choice",
                    format!("tool_choice type `{kind}` is not supported by the provider"),
                ));
            }
            let name = o
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .ok_or_else(|| bad("tool_choice needs `function.name`".to_owned()))?;
            ToolChoice::Tool {
                name: name.to_owned(),
                disable_parallel_tool_use: None,
            }
        }
        _ => return Err(bad("tool_choice must be a string or an object".to_owned())),
    };
    if !has_tools {
        return match converted {
            ToolChoice::Auto { .. } | ToolChoice::None => Ok(None),
            _ => Err(bad(
                "tool_choice requires a tool, but the request has no `tools`".to_owned(),
            )),
        };
    }
    Ok(Some(converted))
}

/// Splits the conversation into Anthropic's `system` blocks and alternating turns.
fn convert_messages(
    messages: Vec<ChatMessage>,
) -> Result<(Vec<ContentBlock>, Vec<Message>), ApiError> {
    let mut system = Vec::new();
    let mut turns: Vec<Message> = Vec::with_capacity(messages.len());
    for (i, mut m) in messages.into_iter().enumerate() {
        let cache_control = m.cache_control.take();
        let (role, mut blocks) = match m.role.as_str() {
            "system" | "developer" => {
                let mut blocks = content_blocks(m.content, i, PartsAllowed::Text)?;
                apply_cache_control(&mut blocks, cache_control);
                system.extend(blocks);
                continue;
            }
            "user" => (Role::User, content_blocks(m.content, i, PartsAllowed::TextAndImages)?),
            "assistant" => (Role::Assistant, assistant_blocks(m, i)?),
            "tool" => {
                let id = m.tool_call_id.filter(|id| !id.is_empty()).ok_or_else(|| {
                    invalid(format!("messages[{i}]: a tool message needs `tool_call_id`"))
                        .with_param("messages")
                })?;
                let content = match m.content {
                    Some(Content::Text(t)) => (!t.is_empty()).then_some(Content::Text(t)),
                    other => {
                        let blocks = content_blocks(other, i, PartsAllowed::TextAndImages)?;
                        (!blocks.is_empty()).then_some(Content::Blocks(blocks))
                    }
                };
                (
                    Role::User,
                    vec![ContentBlock::ToolResult {
                        tool_use_id: id,
                        content,
                        is_error: None,
                        cache_control: None,
                    }],
                )
            }
            "function" => {
                return Err(unsupported(
                    "messages",
                    format!("messages[{i}]: legacy `function` messages are not supported; use `tool` messages"),
                ))
            }
            other => {
                return Err(invalid(format!("messages[{i}]: unknown role `{other}`")).with_param("messages"))
            }
        };
        apply_cache_control(&mut blocks, cache_control);
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some(last) if last.role == role => {
                if let Content::Blocks(existing) = &mut last.content {
                    existing.extend(blocks);
                }
            }
            _ => turns.push(Message {
                role,
                content: Content::Blocks(blocks),
            }),
        }
    }
    Ok((system, turns))
}

/// A message-level `cache_control` marks the message's last block.
fn apply_cache_control(blocks: &mut [ContentBlock], cache_control: Option<Value>) {
    let Some(cc) = cache_control else { return };
    if let Some(slot) = blocks.last_mut().and_then(ContentBlock::cache_control_mut) {
        if slot.is_none() {
            *slot = Some(cc);
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum PartsAllowed {
    Text,
    TextAndImages,
}

fn content_blocks(
    content: Option<ChatContent>,
    i: usize,
    allowed: PartsAllowed,
) -> Result<Vec<ContentBlock>, ApiError> {
    let parts = match content {
        None => return Ok(Vec::new()),
        Some(Content::Text(t)) if t.is_empty() => return Ok(Vec::new()),
        Some(Content::Text(t)) => return Ok(vec![ContentBlock::text(t)]),
        Some(Content::Blocks(parts)) => parts,
    };
    let mut blocks = Vec::with_capacity(parts.len());
    for part in parts {
        let reject = |kind: &str| {
            Err(unsupported(
                "messages",
                format!("messages[{i}]: content part type `{kind}` is not supported here by the provider"),
            ))
        };
        match part {
            ChatPart::Text { text, .. } | ChatPart::Refusal { refusal: text }
                if text.is_empty() => {}
            ChatPart::Text {
                text,
                cache_control,
            } => blocks.push(ContentBlock::Text {
                text,
                citations: None,
                cache_control,
            }),
            ChatPart::Refusal { refusal } => blocks.push(ContentBlock::text(refusal)),
            ChatPart::ImageUrl {
                image_url,
                cache_control,
            } => {
                if allowed != PartsAllowed::TextAndImages {
                    return reject("image_url");
                }
                let url = match image_url {
                    ImageUrl::Object { url } | ImageUrl::Url(url) => url,
                };
                blocks.push(ContentBlock::Image {
                    source: image_source(&url, i)?,
                    cache_control,
                });
            }
            ChatPart::InputAudio {} => return reject("input_audio"),
            ChatPart::File {} => return reject("file"),
            ChatPart::Other => return reject("unknown"),
        }
    }
    Ok(blocks)
}

/// An image URL as an Anthropic image source.
fn image_source(url: &str, i: usize) -> Result<Source, ApiError> {
    let bad = |msg: String| invalid(format!("messages[{i}]: {msg}")).with_param("messages");
    if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) = rest
            .split_once(',')
            .ok_or_else(|| bad("malformed data URL: no `,`".to_owned()))?;
        let mut params = meta.split(';');
        let media_type = params
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if !params.any(|p| p.trim().eq_ignore_ascii_case("base64")) {
            return Err(bad(
                "only base64 data URLs are supported for images".to_owned()
            ));
        }
        let media_type = match media_type.as_str() {
            "image/jpg" => "image/jpeg".to_owned(),
            _ => media_type,
        };
        if !IMAGE_TYPES.contains(&media_type.as_str()) {
            return Err(unsupported(
                "messages",
                format!(
                    "messages[{i}]: image type `{media_type}` is not supported by the provider (jpeg, png, gif, webp)"
                ),
            ));
        }
        return Ok(Source::Base64 {
            media_type,
            data: data.to_owned(),
        });
    }
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        return Ok(Source::Url {
            url: url.to_owned(),
        });
    }
    Err(bad(
        "an image URL must be an http(s) URL or a base64 data URL".to_owned(),
    ))
}

fn assistant_blocks(m: ChatMessage, i: usize) -> Result<Vec<ContentBlock>, ApiError> {
    let mut blocks = Vec::new();
    for b in m.thinking_blocks.unwrap_or_default() {
        match b {
            ContentBlock::Thinking { signature: None, .. } => {
                return Err(invalid(format!("messages[{i}]: a thinking block needs its `signature`"))
                    .with_param("messages"))
            }
            ContentBlock::Thinking { .. } | ContentBlock::RedactedThinking { .. } => blocks.push(b),
            other => {
                return Err(invalid(format!(
                    "messages[{i}]: `thinking_blocks` may hold only thinking and redacted_thinking blocks, not `{}`",
                    other.kind()
                ))
                .with_param("messages"))
            }
        }
    }
    blocks.extend(content_blocks(m.content, i, PartsAllowed::Text)?);
    for call in m.tool_calls.unwrap_or_default() {
        let kind = call.kind.as_deref().unwrap_or("function");
        if kind != "function" {
            return Err(unsupported(
                "messages",
                format!("messages[{i}]: tool call type `{kind}` is not supported by the provider"),
            ));
        }
        let f = call.function.ok_or_else(|| {
            invalid(format!("messages[{i}]: a tool call needs a `function`")).with_param("messages")
        })?;
        blocks.push(ContentBlock::ToolUse {
            id: call.id,
            input: tool_input(f.arguments.as_deref().unwrap_or_default(), i)?,
            name: f.name,
            cache_control: None,
        });
    }
    Ok(blocks)
}

/// A tool call's `arguments` text as a `tool_use` input: a JSON object, kept
/// byte for byte (empty arguments mean no arguments).
fn tool_input(arguments: &str, i: usize) -> Result<Box<RawValue>, ApiError> {
    let trimmed = arguments.trim();
    if trimmed.is_empty() {
        return Ok(wire::empty_object());
    }
    let bad = || {
        invalid(format!(
            "messages[{i}]: tool call arguments must be a JSON object, got `{}`",
            truncate(trimmed, 80)
        ))
        .with_param("messages")
    };
    Members::parse(trimmed.as_bytes()).map_err(|_| bad())?;
    RawValue::from_string(trimmed.to_owned()).map_err(|_| bad())
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((at, _)) => &s[..at],
        None => s,
    }
}

// ---------------------------------------------------------------------------
// Response

#[derive(Serialize)]
struct ChatCompletion<'a> {
    id: String,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [CompletionChoice<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<OpenAiUsageOut>,
}

#[derive(Serialize)]
struct CompletionChoice<'a> {
    index: u32,
    message: ResponseMessage<'a>,
    finish_reason: &'static str,
    logprobs: Option<()>,
}

#[derive(Serialize)]
struct ResponseMessage<'a> {
    role: &'static str,
    content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    thinking_blocks: Vec<&'a ContentBlock>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ToolCallOut<'a>>,
    refusal: Option<()>,
}

#[derive(Serialize)]
struct ToolCallOut<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionOut<'a>,
}

#[derive(Serialize)]
struct FunctionOut<'a> {
    name: &'a str,
    arguments: String,
}

#[derive(Serialize)]
struct OpenAiUsageOut {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: PromptDetailsOut,
}

#[derive(Serialize)]
struct PromptDetailsOut {
    cached_tokens: u64,
}

/// Anthropic's counts in the gateway's terms; `None` when none was reported.
fn usage_of(u: &wire::Usage) -> Option<Usage> {
    if u.is_empty() {
        return None;
    }
    let prompt = if u.input_tokens.is_none()
        && u.cache_read_input_tokens.is_none()
        && u.cache_creation_input_tokens.is_none()
    {
        None
    } else {
        Some(
            u.input_tokens
                .unwrap_or(0)
                .saturating_add(u.cache_read_input_tokens.unwrap_or(0))
                .saturating_add(u.cache_creation_input_tokens.unwrap_or(0)),
        )
    };
    let total = match (prompt, u.output_tokens) {
        (Some(p), Some(c)) => Some(p.saturating_add(c)),
        _ => None,
    };
    Some(Usage {
        input_tokens: prompt,
        output_tokens: u.output_tokens,
        total_tokens: total,
        cached_input_tokens: u.cache_read_input_tokens,
        reasoning_tokens: None,
        source: UsageSource::Reported,
    })
}

/// OpenAI's usage object; counts not reported are written as 0 (the field is
/// required there), while [`Usage`] keeps them unknown.
fn usage_out(u: &Usage) -> OpenAiUsageOut {
    let prompt = u.input_tokens.unwrap_or(0);
    let completion = u.output_tokens.unwrap_or(0);
    OpenAiUsageOut {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: u.total_tokens.unwrap_or(prompt.saturating_add(completion)),
        prompt_tokens_details: PromptDetailsOut {
            cached_tokens: u.cached_input_tokens.unwrap_or(0),
        },
    }
}

/// Anthropic's `stop_reason` as OpenAI's `finish_reason`.
pub fn finish_reason(stop_reason: Option<&str>, real_tool_calls: bool) -> &'static str {
    match stop_reason {
        Some("max_tokens" | "model_context_window_exceeded") => "length",
        Some("tool_use") if real_tool_calls => "tool_calls",
        Some("refusal") => "content_filter",
        // end_turn, stop_sequence, pause_turn, a JSON-object answer, unknown.
        _ => "stop",
    }
}

/// A complete Anthropic message as an OpenAI `chat.completion`.
pub fn response(body: &[u8], ctx: &ResponseContext) -> Result<Vec<u8>, ApiError> {
    let msg: MessagesResponse = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_gateway(
            "invalid_provider_response",
            format!("the provider's response is not an Anthropic message: {e}"),
        )
    })?;
    let mut text: Option<String> = None;
    let mut reasoning: Option<String> = None;
    let mut thinking_blocks = Vec::new();
    let mut tool_calls = Vec::new();
    for block in &msg.content {
        match block {
            ContentBlock::Text { text: t, .. } => text.get_or_insert_with(String::new).push_str(t),
            ContentBlock::ToolUse { name, input, .. } if name == JSON_OBJECT_TOOL => {
                text.get_or_insert_with(String::new)
                    .push_str(&compact_json(input.get()));
            }
            ContentBlock::ToolUse {
                id, name, input, ..
            } => tool_calls.push(ToolCallOut {
                id,
                kind: "function",
                function: FunctionOut {
                    name,
                    arguments: compact_json(input.get()),
                },
            }),
            ContentBlock::Thinking { thinking, .. } => {
                reasoning.get_or_insert_with(String::new).push_str(thinking);
                thinking_blocks.push(block);
            }
            ContentBlock::RedactedThinking { .. } => thinking_blocks.push(block),
            _ => {}
        }
    }
    if text.is_none() && tool_calls.is_empty() {
        text = Some(String::new());
    }
    let finish = finish_reason(msg.stop_reason.as_deref(), !tool_calls.is_empty());
    let id = if msg.id.is_empty() {
        ctx.id
    } else {
        msg.id.as_str()
    };
    let model = if msg.model.is_empty() {
        ctx.model
    } else {
        msg.model.as_str()
    };
    let out = ChatCompletion {
        id: format!("chatcmpl-{id}"),
        object: "chat.completion",
        created: ctx.created,
        model,
        choices: [CompletionChoice {
            index: 0,
            message: ResponseMessage {
                role: "assistant",
                content: text,
                reasoning_content: reasoning,
                thinking_blocks,
                tool_calls,
                refusal: None,
            },
            finish_reason: finish,
            logprobs: None,
        }],
        usage: usage_of(&msg.usage).map(|u| usage_out(&u)),
    };
    serde_json::to_vec(&out).map_err(|e| {
        ApiError::bad_gateway(
            "invalid_provider_response",
            format!("could not convert the provider's response: {e}"),
        )
    })
}

/// Reads `usage` from a complete Anthropic response body.
pub fn response_usage(body: &[u8]) -> Option<Usage> {
    #[derive(Deserialize)]
    struct Peek {
        #[serde(default)]
        usage: Option<wire::Usage>,
    }
    let peek: Peek = serde_json::from_slice(body).ok()?;
    usage_of(&peek.usage?)
}

// ---------------------------------------------------------------------------
// Stream

#[derive(Serialize)]
struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: Vec<ChunkChoice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<OpenAiUsageOut>,
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: ChunkDelta<'a>,
    finish_reason: Option<&'static str>,
    logprobs: Option<()>,
}

#[derive(Serialize, Default)]
struct ChunkDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolCallDelta<'a>; 1]>,
}

#[derive(Serialize)]
struct ToolCallDelta<'a> {
    index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    function: FunctionDelta<'a>,
}

#[derive(Serialize)]
struct FunctionDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'a str,
}

/// What a content block of the provider's stream is to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockRole {
    Text,
    Thinking,
    /// A tool call, with its index among the tool calls.
    Tool(u32),
    /// The [`JSON_OBJECT_TOOL`] call: its input is the message text.
    JsonAnswer,
    Ignored,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Open,
    /// `message_stop` went out as `[DONE]`.
    Done,
    /// An error event went out; nothing follows.
    Failed,
}

/// Anthropic's SSE stream as OpenAI chat completion chunks.
#[derive(Debug)]
pub struct Stream {
    parser: SseParser,
    id: String,
    model: String,
    created: u64,
    /// Open content blocks by Anthropic index (a handful at most).
    blocks: Vec<(u64, BlockRole)>,
    tool_calls: u32,
    finish_sent: bool,
    provider_usage: wire::Usage,
    usage: Option<Usage>,
    phase: Phase,
}

impl Stream {
    pub fn new(ctx: &ResponseContext) -> Self {
        Stream {
            parser: SseParser::new(),
            id: format!("chatcmpl-{}", ctx.id),
            model: ctx.model.to_owned(),
            created: ctx.created,
            blocks: Vec::new(),
            tool_calls: 0,
            finish_sent: false,
            provider_usage: wire::Usage::default(),
            usage: None,
            phase: Phase::Open,
        }
    }

    fn write_chunk(&self, out: &mut Vec<u8>, delta: ChunkDelta<'_>, finish: Option<&'static str>) {
        let chunk = Chunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason: finish,
                logprobs: None,
            }],
            usage: None,
        };
        write_data(out, &chunk);
    }

    fn write_usage_chunk(&self, out: &mut Vec<u8>) {
        let Some(usage) = &self.usage else { return };
        let chunk = Chunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            choices: Vec::new(),
            usage: Some(usage_out(usage)),
        };
        write_data(out, &chunk);
    }

    fn fail(&mut self, out: &mut Vec<u8>, kind: &str, message: &str, code: &str) {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(&openai_error_body(kind, message, None, Some(code)));
        out.extend_from_slice(b"\n\n");
        self.phase = Phase::Failed;
    }

    fn update_usage(&mut self, newer: &wire::Usage) {
        self.provider_usage.update(newer);
        self.usage = usage_of(&self.provider_usage);
    }

    fn role_of(&self, index: u64) -> BlockRole {
        self.blocks
            .iter()
            .find(|(i, _)| *i == index)
            .map_or(BlockRole::Ignored, |(_, r)| *r)
    }

    fn on_event(&mut self, ev: &Event, out: &mut Vec<u8>) {
        if self.phase != Phase::Open || ev.data.is_empty() {
            return;
        }
        // An event that is not valid JSON carries nothing we could forward.
        let Ok(event) = serde_json::from_str::<StreamEvent>(&ev.data) else {
            return;
        };
        match event {
            StreamEvent::MessageStart { message } => {
                if !message.id.is_empty() {
                    self.id = format!("chatcmpl-{}", message.id);
                }
                if !message.model.is_empty() {
                    self.model = message.model;
                }
                self.update_usage(&message.usage);
                let delta = ChunkDelta {
                    role: Some("assistant"),
                    content: Some(""),
                    ..ChunkDelta::default()
                };
                self.write_chunk(out, delta, None);
            }
            StreamEvent::ContentBlockStart {
                index,
                content_block,
            } => {
                let role = match &content_block {
                    ContentBlock::Text { text, .. } => {
                        if !text.is_empty() {
                            let delta = ChunkDelta {
                                content: Some(text),
                                ..ChunkDelta::default()
                            };
                            self.write_chunk(out, delta, None);
                        }
                        BlockRole::Text
                    }
                    ContentBlock::Thinking { thinking, .. } => {
                        if !thinking.is_empty() {
                            let delta = ChunkDelta {
                                reasoning_content: Some(thinking),
                                ..ChunkDelta::default()
                            };
                            self.write_chunk(out, delta, None);
                        }
                        BlockRole::Thinking
                    }
                    ContentBlock::ToolUse { name, .. } if name == JSON_OBJECT_TOOL => {
                        BlockRole::JsonAnswer
                    }
                    ContentBlock::ToolUse { id, name, .. } => {
                        let n = self.tool_calls;
                        self.tool_calls = self.tool_calls.saturating_add(1);
                        let delta = ChunkDelta {
                            tool_calls: Some([ToolCallDelta {
                                index: n,
                                id: Some(id),
                                kind: Some("function"),
                                function: FunctionDelta {
                                    name: Some(name),
                                    arguments: "",
                                },
                            }]),
                            ..ChunkDelta::default()
                        };
                        self.write_chunk(out, delta, None);
                        BlockRole::Tool(n)
                    }
                    _ => BlockRole::Ignored,
                };
                self.blocks.retain(|(i, _)| *i != index);
                self.blocks.push((index, role));
            }
            StreamEvent::ContentBlockDelta { index, delta } => {
                let role = self.role_of(index);
                let chunk = match (&delta, role) {
                    (BlockDelta::TextDelta { text }, _) if !text.is_empty() => ChunkDelta {
                        content: Some(text),
                        ..ChunkDelta::default()
                    },
                    (BlockDelta::ThinkingDelta { thinking }, _) if !thinking.is_empty() => {
                        ChunkDelta {
                            reasoning_content: Some(thinking),
                            ..ChunkDelta::default()
                        }
                    }
                    (BlockDelta::InputJsonDelta { partial_json }, BlockRole::JsonAnswer)
                        if !partial_json.is_empty() =>
                    {
                        ChunkDelta {
                            content: Some(partial_json),
                            ..ChunkDelta::default()
                        }
                    }
                    (BlockDelta::InputJsonDelta { partial_json }, BlockRole::Tool(n))
                        if !partial_json.is_empty() =>
                    {
                        ChunkDelta {
                            tool_calls: Some([ToolCallDelta {
                                index: n,
                                id: None,
                                kind: None,
                                function: FunctionDelta {
                                    name: None,
                                    arguments: partial_json,
                                },
                            }]),
                            ..ChunkDelta::default()
                        }
                    }
                    _ => return,
                };
                self.write_chunk(out, chunk, None);
            }
            StreamEvent::ContentBlockStop { index } => self.blocks.retain(|(i, _)| *i != index),
            StreamEvent::MessageDelta { delta, usage } => {
                if let Some(u) = &usage {
                    self.update_usage(u);
                }
                if let Some(reason) = delta.stop_reason.as_deref() {
                    if !self.finish_sent {
                        self.finish_sent = true;
                        let finish = finish_reason(Some(reason), self.tool_calls > 0);
                        self.write_chunk(out, ChunkDelta::default(), Some(finish));
                    }
                }
            }
            StreamEvent::MessageStop => {
                if !self.finish_sent {
                    self.finish_sent = true;
                    self.write_chunk(out, ChunkDelta::default(), Some("stop"));
                }
                self.write_usage_chunk(out);
                out.extend_from_slice(b"data: [DONE]\n\n");
                self.phase = Phase::Done;
            }
            StreamEvent::Error { error } => {
                let kind = openai_kind(&error.kind);
                let code = if error.kind.is_empty() {
                    "provider_error"
                } else {
                    error.kind.as_str()
                };
                let message = if error.message.is_empty() {
                    "the provider reported an error mid-stream"
                } else {
                    error.message.as_str()
                };
                self.fail(out, kind, message, code);
            }
            StreamEvent::Ping | StreamEvent::Other { .. } => {}
        }
    }
}

/// The OpenAI error type for an Anthropic error type.
fn openai_kind(anthropic: &str) -> &'static str {
    match anthropic {
        "invalid_request_error" | "not_found_error" | "request_too_large" => {
            "invalid_request_error"
        }
        "authentication_error" => "authentication_error",
        "permission_error" => "permission_error",
        "rate_limit_error" => "rate_limit_error",
        _ => "server_error",
    }
}

fn write_data<T: Serialize>(out: &mut Vec<u8>, value: &T) {
    out.extend_from_slice(b"data: ");
    // Serializing these structs into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
    out.extend_from_slice(b"\n\n");
}

impl StreamConverter for Stream {
    fn push(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        if self.phase != Phase::Open {
            return out;
        }
        for ev in self.parser.push(bytes) {
            self.on_event(&ev, &mut out);
        }
        if self.phase == Phase::Open && self.parser.pending() > MAX_PENDING {
            self.parser = SseParser::new();
            self.fail(
                &mut out,
                "server_error",
                "the provider sent a stream event larger than the gateway accepts",
                "stream_event_too_large",
            );
        }
        out
    }

    fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.phase == Phase::Open {
            // A last event without its blank line is still a whole event.
            if let Some(ev) = self.parser.finish() {
                self.on_event(&ev, &mut out);
            }
        }
        if self.phase == Phase::Open {
            self.fail(
                &mut out,
                "server_error",
                "the provider's stream ended before the response was complete",
                "stream_interrupted",
            );
        }
        out
    }

    fn usage(&self) -> Option<&Usage> {
        self.usage.as_ref()
    }
}

// ---------------------------------------------------------------------------
// Errors

/// Longest message kept from a provider body that is not Anthropic's JSON.
const MAX_RAW_MESSAGE: usize = 512;

/// Reads Anthropic's error body; tolerates any other body.
pub fn error(status: u16, body: &[u8]) -> ProviderError {
    if let Ok(env) = serde_json::from_slice::<wire::ErrorEnvelope>(body) {
        return ProviderError {
            status,
            kind: (!env.error.kind.is_empty()).then_some(env.error.kind),
            message: (!env.error.message.is_empty()).then_some(env.error.message),
            code: None,
            param: None,
        };
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    ProviderError {
        status,
        kind: None,
        message: (!text.is_empty()).then(|| truncate(text, MAX_RAW_MESSAGE).to_owned()),
        code: None,
        param: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_json_keeps_order_and_strings() {
        assert_eq!(
            compact_json("{ \"b\" : 1,\n \"a\": \"x y\\\" z\", \"c\": [1, 2] }"),
            r#"{"b":1,"a":"x y\" z","c":[1,2]}"#
        );
        assert_eq!(compact_json(r#"{"p":"a\\"}"#), r#"{"p":"a\\"}"#);
    }

    #[test]
    fn usage_formula_adds_cache_counts_to_prompt_tokens() {
        let u = usage_of(&wire::Usage {
            input_tokens: Some(10),
            output_tokens: Some(5),
            cache_creation_input_tokens: Some(100),
            cache_read_input_tokens: Some(1000),
        })
        .unwrap();
        assert_eq!(u.input_tokens, Some(1110));
        assert_eq!(u.total_tokens, Some(1115));
        assert_eq!(u.cached_input_tokens, Some(1000));
        assert_eq!(usage_of(&wire::Usage::default()), None);
    }
}
