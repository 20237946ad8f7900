//! OpenAI Chat Completions (client) → Google Gemini `generateContent`
//! (provider), and Gemini's answers back. See `convert/mod.rs` for the
//! interface; this header is the mapping, field by field.
//!
//! Upstream: `POST {base}/models/{model}:generateContent`, or
//! `:streamGenerateContent?alt=sse` for streams ([`path`]); key in
//! `x-goog-api-key`. JSON Schemas go in the JSON Schema members
//! (`parametersJsonSchema`, `responseJsonSchema`), which Gemini 2.5 and later
//! accept.
//!
//! Request (`messages` → `contents`):
//! - `system` and `developer` messages, wherever they appear, become
//!   `systemInstruction` parts, in order.
//! - `user` → role `user`; `assistant` → role `model`; consecutive turns of
//!   the same role are merged (Gemini wants them alternating).
//! - Text parts with empty text are left out (Gemini rejects them); a message
//!   that ends up empty adds nothing. A request with no turn left is a 400.
//! - Images: `data:<mime>;base64,` URLs → `inlineData`; `http(s)` URLs →
//!   `fileData` with the MIME type taken from the file extension (png, jpg,
//!   jpeg, webp, gif, heic, heif, pdf). Gemini Files API and YouTube URLs go
//!   without a MIME type. Any other URL is a 400 (send a data URL instead).
//!   `detail` is ignored.
//! - `input_audio` (wav, mp3, aiff, aac, ogg, flac) → `inlineData audio/<fmt>`;
//!   `file` with `file_data` as a data URL → `inlineData`; `file_id` is a 400
//!   (OpenAI file ids mean nothing to Gemini). Other part types: 400.
//! - Assistant `tool_calls` → `functionCall` parts (`args` parsed from the
//!   argument string; empty means `{}`; invalid JSON or a non-object: 400).
//!   A thought signature comes back from the client in
//!   `tool_calls[].extra_content.google.thought_signature` (the convention of
//!   Gemini's own OpenAI endpoint); when an assistant turn carries none, its
//!   first call gets Google's documented placeholder
//!   `skip_thought_signature_validator`, so Gemini 3 accepts histories from
//!   clients that drop the field (or from other models).
//! - `tool` messages → `functionResponse` parts in a `user` turn, `name` found
//!   through the `tool_call_id` of an earlier assistant tool call (unknown id:
//!   400). Output that is a JSON object is sent as the response object; any
//!   other output is wrapped as `{"content": "<output text>"}`.
//! - `tools` (function only; other types 400) → one `functionDeclarations`
//!   tool; `parameters` cleaned to the JSON Schema keywords Gemini documents:
//!   `$id $defs $ref $anchor type format title description enum items
//!   prefixItems minItems maxItems minimum maximum anyOf properties
//!   additionalProperties required propertyOrdering`. `oneOf` becomes `anyOf`,
//!   `const` becomes a one-value `enum`, `definitions` becomes `$defs`,
//!   a one-member `allOf` is merged into its parent, a `$ref` with sibling
//!   keywords is wrapped in a one-member `anyOf`; every other keyword
//!   (`pattern`, `minLength`, `default`, `$schema`, a several-member `allOf`,
//!   ...) is dropped. An empty `parameters` object is left out. `strict` is
//!   ignored.
//! - `tool_choice`: `auto` → AUTO, `none` → NONE, `required` → ANY, a named
//!   function → ANY + `allowedFunctionNames`; `allowed_tools` → ANY +
//!   `allowedFunctionNames` (mode `required`) or only those declarations
//!   (mode `auto`). Naming an undeclared function, or forcing a call without
//!   `tools`, is a 400.
//! - `generationConfig`: `temperature`, `top_p` → `topP`, `top_k` (not
//!   OpenAI, sent by some clients) → `topK`, `max_completion_tokens` (else
//!   `max_tokens`) → `maxOutputTokens` (nothing sent when absent),
//!   `stop` (string or list; empty strings left out) → `stopSequences`,
//!   `n` → `candidateCount`
//!   (n > 1 supported: one choice per candidate), `presence_penalty`,
//!   `frequency_penalty`, `seed`; `response_format` `json_object` →
//!   `responseMimeType: application/json`, `json_schema` → the same plus
//!   `responseJsonSchema` (cleaned as above); `reasoning_effort` →
//!   `thinkingConfig.thinkingBudget` (none 0, minimal/low 1024, medium 8192,
//!   high/xhigh 24576).
//! - Rejected with a 400: `logprobs: true`, a non-empty `logit_bias`, audio
//!   output (`audio`, `modalities` with `audio`), `web_search_options`, the
//!   legacy (non-empty) `functions`, assistant `function_call` and the
//!   `function` role.
//! - Ignored: `stream` and `stream_options` (the path decides), `user`,
//!   `metadata`, `store`, `service_tier`, `parallel_tool_calls` (Gemini may
//!   always call several functions), `prediction`, `verbosity`, a top-level
//!   `function_call` without `functions`, unknown fields.
//!
//! Response (`GenerateContentResponse` → `chat.completion`):
//! - `id`: `chatcmpl-<responseId>`, or `chatcmpl-<ctx.id>` without one;
//!   `model`: `modelVersion`, else the context's model; `created` from the
//!   context. Each candidate is a choice (`index` from the candidate).
//! - Text parts joined; `thought` parts (summaries, only sent when asked for)
//!   are dropped. Other part kinds (inline images, code execution) are dropped.
//! - `functionCall` parts → `tool_calls` with ids `call_<responseId or
//!   ctx.id>_<n>` (n counts calls in the choice: unique across turns, and the
//!   same for a given response), arguments as compact JSON in Gemini's key
//!   order, and the part's thought signature in
//!   `extra_content.google.thought_signature`.
//! - `finishReason`: STOP → `stop`, or `tool_calls` when the choice has
//!   calls; MAX_TOKENS → `length`; SAFETY, RECITATION, BLOCKLIST,
//!   PROHIBITED_CONTENT, SPII and the IMAGE_ safety reasons →
//!   `content_filter`; anything else → `tool_calls` when the choice has calls,
//!   else `stop`.
//! - A prompt blocked by Gemini (`promptFeedback.blockReason`, no candidate)
//!   is a 400 `invalid_request_error` with code `content_filter` (as Azure
//!   OpenAI answers a filtered prompt); in a stream, the same error as an
//!   error event, without `[DONE]`. No candidate and no block reason: 502.
//! - `usage`: `prompt_tokens` = promptTokenCount + toolUsePromptTokenCount;
//!   `completion_tokens` = candidatesTokenCount + thoughtsTokenCount
//!   (OpenAI counts reasoning in completion tokens), with
//!   `completion_tokens_details.reasoning_tokens` = thoughtsTokenCount;
//!   `total_tokens` = totalTokenCount; `prompt_tokens_details.cached_tokens` =
//!   cachedContentTokenCount. No `usageMetadata`: no `usage`.
//!
//! Stream (Gemini SSE, each event a full response with new parts only):
//! a choice's first event gives a chunk with `role`; text → `delta.content`;
//! each function call (Gemini sends it whole) → one `tool_calls` delta with
//! index, id, name and the complete arguments; `finishReason` → a chunk with
//! empty delta and `finish_reason`. The latest `usageMetadata` is kept. When
//! the provider closes after every choice got its `finishReason`, the usage
//! chunk (`choices: []`, if usage is known) and `data: [DONE]` follow; a
//! stream that ends before that ends with an error event
//! (`stream_interrupted`) and no `[DONE]`. An `error` object in the stream
//! becomes an OpenAI error event.

use std::collections::HashMap;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

use super::{
    openai_error_type, unsupported, ProviderError, RequestContext, ResponseContext, StreamConverter,
};
use crate::error::{openai_error_body, ApiError};
use crate::schema::gemini::{
    Blob, Candidate, Content, ErrorBody, ErrorEnvelope, FileData, FunctionCall,
    FunctionCallingConfig, FunctionDeclaration, FunctionResponse, GenerateContentRequest,
    GenerateContentResponse, GenerationConfig, Part, ThinkingConfig, Tool, ToolConfig,
    UsageMetadata,
};
use crate::sse::SseParser;
use crate::usage::{Usage, UsageSource};

/// Google's documented placeholder for a function call without a thought
/// signature (history written by another model or a client that dropped it).
pub const SKIP_THOUGHT_SIGNATURE: &str = "skip_thought_signature_validator";

/// Longest stream event held while waiting for its end. Gemini sends whole
/// parts per event; inline images can make one large, hence more than the
/// parser's pass-through limit.
pub const MAX_STREAM_EVENT: usize = 16 << 20;

// ---------------------------------------------------------------------------
// Path
// ---------------------------------------------------------------------------

/// The upstream path below the provider's base path (normally `/v1beta`):
/// `{base}/models/{model}:generateContent`, or
/// `{base}/models/{model}:streamGenerateContent?alt=sse`. A model given as
/// `models/x` is not doubled; `tunedModels/x` addresses a tuned model. The
/// model name is percent-encoded (anything but `A-Z a-z 0-9 - . _ ~`), so a
/// `/`, `:` or `?` in it cannot change the path's meaning.
pub fn path(base_path: &str, model: &str, stream: bool) -> String {
    let base = base_path.trim_end_matches('/');
    let (collection, name) = if let Some(rest) = model.strip_prefix("models/") {
        ("models", rest)
    } else if let Some(rest) = model.strip_prefix("tunedModels/") {
        ("tunedModels", rest)
    } else {
        ("models", model)
    };
    let mut out = String::with_capacity(base.len() + name.len() + 48);
    if !base.is_empty() && !base.starts_with('/') {
        out.push('/');
    }
    out.push_str(base);
    out.push('/');
    out.push_str(collection);
    out.push('/');
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
    out.push_str(if stream {
        ":streamGenerateContent?alt=sse"
    } else {
        ":generateContent"
    });
    out
}

// ---------------------------------------------------------------------------
// A JSON value that keeps object members in document order
// ---------------------------------------------------------------------------

/// JSON with object members in document order (`serde_json::Value` sorts
/// them). Schemas keep their property order, which Gemini follows when it
/// writes structured output; call arguments keep the model's order.
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    fn raw(&self) -> Option<Box<RawValue>> {
        serde_json::value::to_raw_value(self).ok()
    }

    fn compact(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Json::Null, Json::Number))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Json, D::Error> {
        Json::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
        while let Some(entry) = map.next_entry::<String, Json>()? {
            members.push(entry);
        }
        Ok(Json::Object(members))
    }
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => s.serialize_unit(),
            Json::Bool(b) => s.serialize_bool(*b),
            Json::Number(n) => n.serialize(s),
            Json::String(v) => s.serialize_str(v),
            Json::Array(items) => s.collect_seq(items),
            Json::Object(members) => s.collect_map(members.iter().map(|(k, v)| (k, v))),
        }
    }
}

// ---------------------------------------------------------------------------
// OpenAI request shapes (only what this converter reads)
// ---------------------------------------------------------------------------

#[derive(Deserialize)]
struct ChatRequest {
    #[serde(default)]
    messages: Option<Vec<Message>>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    top_k: Option<u32>,
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    max_completion_tokens: Option<u64>,
    #[serde(default)]
    stop: Option<Stop>,
    #[serde(default)]
    n: Option<u32>,
    #[serde(default)]
    presence_penalty: Option<f64>,
    #[serde(default)]
    frequency_penalty: Option<f64>,
    #[serde(default)]
    seed: Option<i64>,
    #[serde(default)]
    response_format: Option<ResponseFormat>,
    #[serde(default)]
    tools: Option<Vec<ToolDef>>,
    #[serde(default)]
    tool_choice: Option<ToolChoice>,
    #[serde(default)]
    reasoning_effort: Option<String>,
    #[serde(default)]
    logprobs: Option<bool>,
    #[serde(default)]
    logit_bias: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    functions: Option<Vec<IgnoredAny>>,
    #[serde(default)]
    modalities: Option<Vec<String>>,
    #[serde(default)]
    audio: Option<IgnoredAny>,
    #[serde(default)]
    web_search_options: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct Message {
    role: String,
    #[serde(default)]
    content: Option<MessageContent>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCallIn>>,
    #[serde(default)]
    tool_call_id: Option<String>,
    #[serde(default)]
    function_call: Option<IgnoredAny>,
}

/// `content`: a string or an array of parts (read without buffering).
enum MessageContent {
    Text(String),
    Parts(Vec<ContentPart>),
}

impl<'de> Deserialize<'de> for MessageContent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MessageContent;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an array of content parts")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<MessageContent, E> {
                Ok(MessageContent::Text(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<MessageContent, E> {
                Ok(MessageContent::Text(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<MessageContent, A::Error> {
                Vec::<ContentPart>::deserialize(de::value::SeqAccessDeserializer::new(seq))
                    .map(MessageContent::Parts)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
struct ContentPart {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    image_url: Option<ImageUrl>,
    #[serde(default)]
    input_audio: Option<InputAudio>,
    #[serde(default)]
    file: Option<FileIn>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ImageUrl {
    Url(String),
    Object { url: String },
}

impl ImageUrl {
    fn url(&self) -> &str {
        match self {
            ImageUrl::Url(u) | ImageUrl::Object { url: u } => u,
        }
    }
}

#[derive(Deserialize)]
struct InputAudio {
    data: String,
    format: String,
}

#[derive(Deserialize)]
struct FileIn {
    #[serde(default)]
    file_data: Option<String>,
    #[serde(default)]
    file_id: Option<String>,
    #[serde(default)]
    filename: Option<String>,
}

#[derive(Deserialize)]
struct ToolCallIn {
    #[serde(default)]
    id: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    function: Option<FunctionIn>,
    #[serde(default)]
    extra_content: Option<ExtraContent>,
}

#[derive(Deserialize)]
struct FunctionIn {
    name: String,
    /// A JSON string as OpenAI defines it; an object is accepted too.
    #[serde(default)]
    arguments: Option<Json>,
}

/// `extra_content.google.thought_signature`, as Gemini's own OpenAI
/// endpoint sends and reads it.
#[derive(Serialize, Deserialize)]
struct ExtraContent {
    #[serde(default)]
    google: Option<GoogleExtra>,
}

#[derive(Serialize, Deserialize)]
struct GoogleExtra {
    #[serde(default)]
    thought_signature: Option<String>,
}

impl ToolCallIn {
    fn signature(&self) -> Option<&str> {
        self.extra_content
            .as_ref()?
            .google
            .as_ref()?
            .thought_signature
            .as_deref()
            .filter(|s| !s.is_empty())
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Stop {
    One(String),
    Many(Vec<String>),
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
    schema: Option<Json>,
}

#[derive(Deserialize)]
struct ToolDef {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    function: Option<FunctionDef>,
}

#[derive(Deserialize)]
struct FunctionDef {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<Json>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ToolChoice {
    Mode(String),
    Object(ToolChoiceObject),
}

#[derive(Deserialize)]
struct ToolChoiceObject {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    function: Option<NamedFunction>,
    #[serde(default)]
    allowed_tools: Option<AllowedTools>,
}

#[derive(Deserialize)]
struct NamedFunction {
    name: String,
}

#[derive(Deserialize)]
struct AllowedTools {
    mode: String,
    #[serde(default)]
    tools: Vec<AllowedTool>,
}

#[derive(Deserialize)]
struct AllowedTool {
    #[serde(default)]
    function: Option<NamedFunction>,
}

// ---------------------------------------------------------------------------
// Request
// ---------------------------------------------------------------------------

/// The client's chat completion request as a Gemini `GenerateContentRequest`
/// body. The model goes in the path ([`path`]), not the body.
pub fn request(body: &[u8], _ctx: &RequestContext<'_>) -> Result<Vec<u8>, ApiError> {
    let req: ChatRequest = serde_json::from_slice(body).map_err(|e| {
        if e.is_data() {
            ApiError::bad_request("invalid_value", format!("invalid request: {e}"))
        } else {
            ApiError::bad_request(
                "invalid_json",
                format!("request body is not valid JSON: {e}"),
            )
        }
    })?;
    reject_unsupported(&req)?;

    let messages = req.messages.ok_or_else(|| {
        ApiError::bad_request("missing_required_parameter", "you must provide `messages`")
            .with_param("messages")
    })?;
    let mut turns = Turns::default();
    for m in messages {
        turns.add(m)?;
    }
    if turns.contents.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_value",
            "`messages` must contain at least one user, assistant or tool message with content",
        )
        .with_param("messages"));
    }

    let (tools, tool_config) = convert_tools(req.tools, req.tool_choice)?;

    let mut config = GenerationConfig {
        stop_sequences: match req.stop {
            None => None,
            Some(Stop::One(s)) => Some(vec![s]),
            Some(Stop::Many(v)) => Some(v),
        }
        .map(|v| v.into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>())
        .filter(|v| !v.is_empty()),
        candidate_count: req.n.filter(|n| *n != 1),
        max_output_tokens: req.max_completion_tokens.or(req.max_tokens),
        temperature: req.temperature,
        top_p: req.top_p,
        top_k: req.top_k,
        seed: req.seed,
        presence_penalty: req.presence_penalty,
        frequency_penalty: req.frequency_penalty,
        ..GenerationConfig::default()
    };
    if let Some(effort) = req.reasoning_effort.as_deref() {
        config.thinking_config = Some(ThinkingConfig {
            thinking_budget: thinking_budget(effort)?,
        });
    }
    if let Some(format) = req.response_format {
        match format.kind.as_str() {
            "text" => {}
            "json_object" => config.response_mime_type = Some("application/json"),
            "json_schema" => {
                config.response_mime_type = Some("application/json");
                if let Some(schema) = format.json_schema.and_then(|f| f.schema) {
                    config.response_json_schema = clean_schema(schema).raw();
                }
            }
            other => {
                return Err(ApiError::bad_request(
                    "invalid_value",
                    format!(
                    "`response_format.type` `{other}` is not one of text, json_object, json_schema"
                ),
                )
                .with_param("response_format"))
            }
        }
    }

    let out = GenerateContentRequest {
        contents: turns.contents,
        system_instruction: (!turns.system.is_empty()).then_some(Content {
            role: None,
            parts: turns.system,
        }),
        tools,
        tool_config,
        generation_config: (!config.is_empty()).then_some(config),
    };
    serde_json::to_vec(&out).map_err(|e| {
        ApiError::new(
            500,
            "server_error",
            "conversion_failed",
            format!("could not write the Gemini request: {e}"),
        )
    })
}

fn reject_unsupported(req: &ChatRequest) -> Result<(), ApiError> {
    if req.logprobs == Some(true) {
        return Err(unsupported(
            "logprobs",
            "`logprobs` is not supported for Gemini models",
        ));
    }
    if req.logit_bias.as_ref().is_some_and(|m| !m.is_empty()) {
        return Err(unsupported(
            "logit_bias",
            "`logit_bias` is not supported for Gemini models",
        ));
    }
    if req.audio.is_some()
        || req
            .modalities
            .as_ref()
            .is_some_and(|m| m.iter().any(|x| x == "audio"))
    {
        return Err(unsupported(
            "modalities",
            "audio output is not supported for Gemini models",
        ));
    }
    if req.web_search_options.is_some() {
        return Err(unsupported(
            "web_search_options",
            "`web_search_options` is not supported for Gemini models",
        ));
    }
    if req.functions.as_ref().is_some_and(|f| !f.is_empty()) {
        return Err(unsupported(
            "functions",
            "the deprecated `functions`/`function_call` are not supported for Gemini models; use `tools`",
        ));
    }
    Ok(())
}

fn thinking_budget(effort: &str) -> Result<u32, ApiError> {
    match effort {
        "none" => Ok(0),
        "minimal" | "low" => Ok(1024),
        "medium" => Ok(8192),
        "high" | "xhigh" => Ok(24576),
        other => Err(ApiError::bad_request(
            "invalid_value",
            format!("`reasoning_effort` `{other}` is not one of none, minimal, low, medium, high, xhigh"),
        )
        .with_param("reasoning_effort")),
    }
}

/// The conversation as Gemini turns, built message by message.
#[derive(Default)]
struct Turns {
    contents: Vec<Content>,
    system: Vec<Part>,
    /// Function name of every assistant tool call seen so far, by call id.
    call_names: HashMap<String, String>,
}

impl Turns {
    fn add(&mut self, m: Message) -> Result<(), ApiError> {
        if m.function_call.is_some() {
            return Err(unsupported(
                "messages",
                "the deprecated assistant `function_call` is not supported for Gemini models; use `tool_calls`",
            ));
        }
        match m.role.as_str() {
            "system" | "developer" => {
                let parts = text_parts(m.content, "system")?;
                self.system.extend(parts);
            }
            "user" => {
                let parts = user_parts(m.content)?;
                self.push("user", parts);
            }
            "assistant" => {
                let mut parts = text_parts(m.content, "assistant")?;
                let calls = m.tool_calls.unwrap_or_default();
                let signed = calls.iter().any(|c| c.signature().is_some());
                for (i, call) in calls.into_iter().enumerate() {
                    parts.push(self.function_call(call, i == 0 && !signed)?);
                }
                self.push("model", parts);
            }
            "tool" => {
                let id = m.tool_call_id.ok_or_else(|| {
                    ApiError::bad_request(
                        "missing_required_parameter",
                        "a `tool` message needs `tool_call_id`",
                    )
                    .with_param("messages")
                })?;
                let name = self.call_names.get(&id).cloned().ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_value",
                        format!("`tool_call_id` `{id}` does not match a tool call of an earlier assistant message"),
                    )
                    .with_param("messages")
                })?;
                let output = tool_output(m.content)?;
                let part = Part {
                    function_response: Some(FunctionResponse {
                        id: None,
                        name,
                        response: tool_response(output)?,
                    }),
                    ..Part::default()
                };
                self.push("user", vec![part]);
            }
            "function" => {
                return Err(unsupported(
                    "messages",
                    "the deprecated `function` role is not supported for Gemini models; use `tool`",
                ))
            }
            other => {
                return Err(ApiError::bad_request(
                    "invalid_value",
                    format!("unknown message role `{other}`"),
                )
                .with_param("messages"))
            }
        }
        Ok(())
    }

    fn function_call(&mut self, call: ToolCallIn, placeholder: bool) -> Result<Part, ApiError> {
        if let Some(kind) = call.kind.as_deref().filter(|k| *k != "function") {
            return Err(unsupported(
                "messages",
                format!(
                    "assistant tool calls of type `{kind}` are not supported for Gemini models"
                ),
            ));
        }
        let signature = call
            .signature()
            .map(str::to_owned)
            .or_else(|| placeholder.then(|| SKIP_THOUGHT_SIGNATURE.to_owned()));
        let function = call.function.ok_or_else(|| {
            ApiError::bad_request(
                "missing_required_parameter",
                "an assistant tool call needs `function`",
            )
            .with_param("messages")
        })?;
        let args = call_arguments(function.arguments, &function.name)?;
        if let Some(id) = call.id {
            self.call_names.insert(id, function.name.clone());
        }
        Ok(Part {
            function_call: Some(FunctionCall {
                id: None,
                name: function.name,
                args: Some(args),
            }),
            thought_signature: signature,
            ..Part::default()
        })
    }

    /// Adds a turn, merged into the previous one when it has the same role.
    fn push(&mut self, role: &str, parts: Vec<Part>) {
        if parts.is_empty() {
            return;
        }
        if let Some(last) = self.contents.last_mut() {
            if last.role.as_deref() == Some(role) {
                last.parts.extend(parts);
                return;
            }
        }
        self.contents.push(Content {
            role: Some(role.to_owned()),
            parts,
        });
    }
}

/// A tool call's `arguments` as a JSON object for `args`.
fn call_arguments(arguments: Option<Json>, name: &str) -> Result<Box<RawValue>, ApiError> {
    let invalid = |why: &str| {
        ApiError::bad_request(
            "invalid_value",
            format!("the arguments of the assistant tool call `{name}` {why}"),
        )
        .with_param("messages")
    };
    let value = match arguments {
        None | Some(Json::Null) => Json::Object(Vec::new()),
        Some(Json::String(s)) if s.trim().is_empty() => Json::Object(Vec::new()),
        Some(Json::String(s)) => {
            serde_json::from_str::<Json>(&s).map_err(|_| invalid("are not valid JSON"))?
        }
        Some(other) => other,
    };
    if !matches!(value, Json::Object(_)) {
        return Err(invalid("are not a JSON object"));
    }
    value.raw().ok_or_else(|| invalid("could not be written"))
}

/// A tool's output as the `response` object: a JSON object as is, anything
/// else as `{"content": "<output>"}`.
fn tool_response(output: String) -> Result<Box<RawValue>, ApiError> {
    let value = match serde_json::from_str::<Json>(&output) {
        Ok(object @ Json::Object(_)) => object,
        _ => Json::Object(vec![("content".to_owned(), Json::String(output))]),
    };
    value.raw().ok_or_else(|| {
        ApiError::new(
            500,
            "server_error",
            "conversion_failed",
            "could not write a tool result",
        )
    })
}

fn tool_output(content: Option<MessageContent>) -> Result<String, ApiError> {
    match content {
        None => Ok(String::new()),
        Some(MessageContent::Text(s)) => Ok(s),
        Some(MessageContent::Parts(parts)) => {
            let mut out = String::new();
            for p in parts {
                match (p.kind.as_str(), p.text) {
                    ("text", Some(t)) => out.push_str(&t),
                    ("text", None) => return Err(missing_part_field("text")),
                    (kind, _) => {
                        return Err(unsupported(
                            "messages",
                            format!("content part type `{kind}` is not supported in tool messages for Gemini models"),
                        ))
                    }
                }
            }
            Ok(out)
        }
    }
}

/// Text-only content (system, assistant): text parts, empty ones left out.
fn text_parts(content: Option<MessageContent>, role: &str) -> Result<Vec<Part>, ApiError> {
    let mut out = Vec::new();
    match content {
        None => {}
        Some(MessageContent::Text(s)) => push_text(&mut out, s),
        Some(MessageContent::Parts(parts)) => {
            for p in parts {
                match (p.kind.as_str(), p.text, p.refusal) {
                    ("text", Some(t), _) => push_text(&mut out, t),
                    ("text", None, _) => return Err(missing_part_field("text")),
                    ("refusal", _, Some(r)) if role == "assistant" => push_text(&mut out, r),
                    ("refusal", _, None) if role == "assistant" => {
                        return Err(missing_part_field("refusal"))
                    }
                    (kind, _, _) => {
                        return Err(unsupported(
                            "messages",
                            format!(
                                "content part type `{kind}` is not supported in {role} messages"
                            ),
                        ))
                    }
                }
            }
        }
    }
    Ok(out)
}

fn push_text(out: &mut Vec<Part>, text: String) {
    if !text.is_empty() {
        out.push(Part::text(text));
    }
}

fn user_parts(content: Option<MessageContent>) -> Result<Vec<Part>, ApiError> {
    let mut out = Vec::new();
    match content {
        None => {}
        Some(MessageContent::Text(s)) => push_text(&mut out, s),
        Some(MessageContent::Parts(parts)) => {
            for p in parts {
                match p.kind.as_str() {
                    "text" => {
                        let text = p.text.ok_or_else(|| missing_part_field("text"))?;
                        push_text(&mut out, text);
                    }
                    "image_url" => {
                        let image = p.image_url.ok_or_else(|| missing_part_field("image_url"))?;
                        out.push(media_from_url(image.url())?);
                    }
                    "input_audio" => {
                        let audio = p
                            .input_audio
                            .ok_or_else(|| missing_part_field("input_audio"))?;
                        out.push(audio_part(audio)?);
                    }
                    "file" => {
                        let file = p.file.ok_or_else(|| missing_part_field("file"))?;
                        out.push(file_part(file)?);
                    }
                    other => {
                        return Err(unsupported(
                            "messages",
                            format!(
                                "content part type `{other}` is not supported for Gemini models"
                            ),
                        ))
                    }
                }
            }
        }
    }
    Ok(out)
}

fn missing_part_field(field: &str) -> ApiError {
    ApiError::bad_request(
        "missing_required_parameter",
        format!("a content part of type `{field}` needs `{field}`"),
    )
    .with_param("messages")
}

fn inline(mime_type: &str, data: &str) -> Part {
    Part {
        inline_data: Some(Blob {
            mime_type: mime_type.to_owned(),
            data: data.to_owned(),
        }),
        ..Part::default()
    }
}

/// `data:<mime>[;param...];base64,<data>` → `(mime, data)`.
fn parse_data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url
        .get(5..)
        .filter(|_| has_prefix_ignore_case(url, "data:"))?;
    let (meta, data) = rest.split_once(',')?;
    let mut fields = meta.split(';');
    let mime = fields.next()?.trim();
    let base64 = fields.any(|f| f.trim().eq_ignore_ascii_case("base64"));
    (base64 && mime.contains('/') && !data.is_empty()).then_some((mime, data))
}

fn media_from_url(url: &str) -> Result<Part, ApiError> {
    if has_prefix_ignore_case(url, "data:") {
        let (mime, data) = parse_data_url(url).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_value",
                "an image data URL must look like `data:<mime type>;base64,<data>`",
            )
            .with_param("messages")
        })?;
        return Ok(inline(mime, data));
    }
    let Some(rest) = strip_http_scheme(url) else {
        return Err(ApiError::bad_request(
            "invalid_value",
            "an image URL must be a `data:` URL or an `http(s)` URL",
        )
        .with_param("messages"));
    };
    let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let host = rest[..host_end].rsplit('@').next().unwrap_or("");
    let host = host.split(':').next().unwrap_or("").to_ascii_lowercase();
    let mime_type = if matches!(
        host.as_str(),
        "generativelanguage.googleapis.com"
            | "youtube.com"
            | "www.youtube.com"
            | "m.youtube.com"
            | "youtu.be"
    ) {
        None
    } else {
        let path = &rest[host_end..];
        let path = path.split(['?', '#']).next().unwrap_or("");
        let file = path.rsplit('/').next().unwrap_or("");
        let ext = file.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
        let mime = ext.as_deref().and_then(mime_for_extension).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_value",
                "the image URL's type cannot be told from its extension (png, jpg, jpeg, webp, gif, heic, heif, pdf); send the image as a base64 data URL",
            )
            .with_param("messages")
        })?;
        Some(mime.to_owned())
    };
    Ok(Part {
        file_data: Some(FileData {
            mime_type,
            file_uri: url.to_owned(),
        }),
        ..Part::default()
    })
}

fn strip_http_scheme(url: &str) -> Option<&str> {
    ["https://", "http://"]
        .into_iter()
        .find(|scheme| has_prefix_ignore_case(url, scheme))
        .and_then(|scheme| url.get(scheme.len()..))
}

/// ASCII-case-insensitive prefix test that never slices inside a character.
fn has_prefix_ignore_case(s: &str, prefix: &str) -> bool {
    s.as_bytes()
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
}

fn mime_for_extension(ext: &str) -> Option<&'static str> {
    Some(match ext {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "pdf" => "application/pdf",
        _ => return None,
    })
}

fn audio_part(audio: InputAudio) -> Result<Part, ApiError> {
    let mime = match audio.format.as_str() {
        "wav" => "audio/wav",
        "mp3" => "audio/mp3",
        "aiff" => "audio/aiff",
        "aac" => "audio/aac",
        "ogg" => "audio/ogg",
        "flac" => "audio/flac",
        other => {
            return Err(unsupported(
                "messages",
                format!("input audio format `{other}` is not supported for Gemini models"),
            ))
        }
    };
    Ok(inline(mime, &audio.data))
}

fn file_part(file: FileIn) -> Result<Part, ApiError> {
    if let Some(data) = file.file_data.as_deref() {
        if let Some((mime, data)) = parse_data_url(data) {
            return Ok(inline(mime, data));
        }
        let ext = file
            .filename
            .as_deref()
            .and_then(|f| f.rsplit_once('.'))
            .map(|(_, e)| e.to_ascii_lowercase());
        if let Some(mime) = ext.as_deref().and_then(mime_for_extension) {
            return Ok(inline(mime, data));
        }
        return Err(ApiError::bad_request(
            "invalid_value",
            "`file.file_data` must be a base64 data URL (`data:<mime type>;base64,...`)",
        )
        .with_param("messages"));
    }
    if file.file_id.is_some() {
        return Err(unsupported(
            "messages",
            "`file.file_id` refers to an OpenAI file, which Gemini cannot read; send `file_data`",
        ));
    }
    Err(missing_part_field("file"))
}

fn convert_tools(
    tools: Option<Vec<ToolDef>>,
    choice: Option<ToolChoice>,
) -> Result<(Vec<Tool>, Option<ToolConfig>), ApiError> {
    let mut declarations = Vec::new();
    for t in tools.unwrap_or_default() {
        if t.kind != "function" {
            return Err(unsupported(
                "tools",
                format!(
                    "tools of type `{}` are not supported for Gemini models",
                    t.kind
                ),
            ));
        }
        let f = t.function.ok_or_else(|| {
            ApiError::bad_request(
                "missing_required_parameter",
                "a function tool needs `function`",
            )
            .with_param("tools")
        })?;
        declarations.push(FunctionDeclaration {
            name: f.name,
            description: f.description,
            parameters_json_schema: f
                .parameters
                .map(clean_schema)
                .filter(|s| !matches!(s, Json::Object(m) if m.is_empty()))
                .and_then(|s| s.raw()),
        });
    }
    let invalid_choice =
        |msg: String| ApiError::bad_request("invalid_value", msg).with_param("tool_choice");
    let config = |mode: &'static str, names: Vec<String>| ToolConfig {
        function_calling_config: FunctionCallingConfig {
            mode,
            allowed_function_names: names,
        },
    };
    let declared = |name: &str, declarations: &[FunctionDeclaration]| {
        declarations.iter().any(|d| d.name == name)
    };
    let tool_config = match choice {
        None => None,
        Some(ToolChoice::Mode(mode)) => match mode.as_str() {
            "auto" | "none" if declarations.is_empty() => None,
            "auto" => Some(config("AUTO", Vec::new())),
            "none" => Some(config("NONE", Vec::new())),
            "required" if declarations.is_empty() => {
                return Err(invalid_choice(
                    "`tool_choice` `required` needs `tools`".into(),
                ))
            }
            "required" => Some(config("ANY", Vec::new())),
            other => {
                return Err(invalid_choice(format!(
                    "`tool_choice` `{other}` is not one of none, auto, required"
                )))
            }
        },
        Some(ToolChoice::Object(obj)) => match obj.kind.as_str() {
            "function" => {
                let name = obj.function.map(|f| f.name).ok_or_else(|| {
                    invalid_choice("`tool_choice.function.name` is required".into())
                })?;
                if !declared(&name, &declarations) {
                    return Err(invalid_choice(format!(
                        "`tool_choice` names `{name}`, which is not in `tools`"
                    )));
                }
                Some(config("ANY", vec![name]))
            }
            "allowed_tools" => {
                let allowed = obj.allowed_tools.ok_or_else(|| {
                    invalid_choice("`tool_choice.allowed_tools` is required".into())
                })?;
                let mut names = Vec::new();
                for t in allowed.tools {
                    let name = t.function.map(|f| f.name).ok_or_else(|| {
                        invalid_choice(
                            "`tool_choice.allowed_tools.tools` lists only function tools".into(),
                        )
                    })?;
                    if !declared(&name, &declarations) {
                        return Err(invalid_choice(format!(
                            "`tool_choice.allowed_tools` names `{name}`, which is not in `tools`"
                        )));
                    }
                    names.push(name);
                }
                match allowed.mode.as_str() {
                    "required" => Some(config("ANY", names)),
                    "auto" => {
                        declarations.retain(|d| names.contains(&d.name));
                        Some(config("AUTO", Vec::new()))
                    }
                    other => {
                        return Err(invalid_choice(format!(
                        "`tool_choice.allowed_tools.mode` `{other}` is not one of auto, required"
                    )))
                    }
                }
            }
            other => {
                return Err(unsupported(
                    "tool_choice",
                    format!("`tool_choice` of type `{other}` is not supported for Gemini models"),
                ))
            }
        },
    };
    let tools = if declarations.is_empty() {
        Vec::new()
    } else {
        vec![Tool {
            function_declarations: declarations,
        }]
    };
    Ok((tools, tool_config))
}

// ---------------------------------------------------------------------------
// JSON Schema cleaning
// ---------------------------------------------------------------------------

/// Keeps the JSON Schema keywords Gemini documents for its JSON Schema
/// members (see the module header), recursively.
fn clean_schema(schema: Json) -> Json {
    match schema {
        Json::Object(members) => Json::Object(clean_schema_object(members)),
        other => other,
    }
}

fn clean_schema_object(members: Vec<(String, Json)>) -> Vec<(String, Json)> {
    let mut out: Vec<(String, Json)> = Vec::new();
    let mut constant = None;
    let mut all_of = None;
    for (key, value) in members {
        match key.as_str() {
            "$id" | "$anchor" | "type" | "format" | "title" | "description" | "enum"
            | "minItems" | "maxItems" | "minimum" | "maximum" | "required" | "propertyOrdering" => {
                set(&mut out, key, value)
            }
            "$ref" => set(&mut out, key, rewrite_ref(value)),
            "$defs" | "definitions" => {
                if let Json::Object(defs) = value {
                    let defs = clean_members(defs);
                    match out.iter_mut().find(|(k, _)| k == "$defs") {
                        Some((_, Json::Object(existing))) => existing.extend(defs),
                        _ => set(&mut out, "$defs".to_owned(), Json::Object(defs)),
                    }
                }
            }
            "properties" => {
                if let Json::Object(props) = value {
                    set(&mut out, key, Json::Object(clean_members(props)));
                }
            }
            "items" => match value {
                Json::Array(list) => set(&mut out, "prefixItems".to_owned(), clean_list(list)),
                other => set(&mut out, key, clean_schema(other)),
            },
            "prefixItems" => {
                if let Json::Array(list) = value {
                    set(&mut out, key, clean_list(list));
                }
            }
            "anyOf" | "oneOf" => {
                if let Json::Array(list) = value {
                    if !out.iter().any(|(k, _)| k == "anyOf") {
                        set(&mut out, "anyOf".to_owned(), clean_list(list));
                    }
                }
            }
            "additionalProperties" => set(&mut out, key, clean_schema(value)),
            "const" => constant = Some(value),
            "allOf" => all_of = Some(value),
            _ => {}
        }
    }
    if let Some(c) = constant {
        if !out.iter().any(|(k, _)| k == "enum") {
            out.push(("enum".to_owned(), Json::Array(vec![c])));
        }
    }
    if let Some(Json::Array(mut list)) = all_of {
        if list.len() == 1 {
            if let Some(Json::Object(inner)) = list.pop() {
                for (k, v) in clean_schema_object(inner) {
                    if !out.iter().any(|(existing, _)| *existing == k) {
                        out.push((k, v));
                    }
                }
            }
        }
    }
    // Gemini allows nothing but `$` keywords next to `$ref`.
    let has_ref = out.iter().any(|(k, _)| k == "$ref");
    if has_ref && out.iter().any(|(k, _)| !k.starts_with('$')) {
        if let Some(pos) = out.iter().position(|(k, _)| k == "$ref") {
            let (_, reference) = out.remove(pos);
            if !out.iter().any(|(k, _)| k == "anyOf") {
                let wrapped = Json::Object(vec![("$ref".to_owned(), reference)]);
                out.push(("anyOf".to_owned(), Json::Array(vec![wrapped])));
            }
        }
    }
    out
}

/// Sets a keyword once (a repeated keyword keeps its last value, as JSON
/// parsers do).
fn set(out: &mut Vec<(String, Json)>, key: String, value: Json) {
    match out.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = value,
        None => out.push((key, value)),
    }
}

fn clean_members(members: Vec<(String, Json)>) -> Vec<(String, Json)> {
    members
        .into_iter()
        .map(|(k, v)| (k, clean_schema(v)))
        .collect()
}

fn clean_list(list: Vec<Json>) -> Json {
    Json::Array(list.into_iter().map(clean_schema).collect())
}

fn rewrite_ref(value: Json) -> Json {
    match value {
        Json::String(r) => match r.strip_prefix("#/definitions/") {
            Some(rest) => Json::String(format!("#/$defs/{rest}")),
            None => Json::String(r),
        },
        other => other,
    }
}

// ---------------------------------------------------------------------------
// OpenAI response shapes (written)
// ---------------------------------------------------------------------------

#[derive(Serialize)]
struct Completion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: Vec<CompletionChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<UsageOut>,
}

#[derive(Serialize)]
struct CompletionChoice {
    index: u32,
    message: AssistantMessage,
    logprobs: Option<()>,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct AssistantMessage {
    role: &'static str,
    content: Option<String>,
    refusal: Option<()>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ToolCallOut>,
}

#[derive(Serialize)]
struct ToolCallOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<u32>,
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionOut,
    #[serde(skip_serializing_if = "Option::is_none")]
    extra_content: Option<ExtraContent>,
}

#[derive(Serialize)]
struct FunctionOut {
    name: String,
    arguments: String,
}

#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
struct UsageOut {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt_tokens_details: Option<PromptDetails>,
    #[serde(skip_serializing_if = "Option::is_none")]
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
struct PromptDetails {
    cached_tokens: u64,
}

#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
struct CompletionDetails {
    reasoning_tokens: u64,
}

#[derive(Serialize)]
struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: Vec<ChunkChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<&'a UsageOut>,
}

#[derive(Serialize)]
struct ChunkChoice {
    index: u32,
    delta: Delta,
    logprobs: Option<()>,
    finish_reason: Option<&'static str>,
}

#[derive(Serialize, Default)]
struct Delta {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ToolCallOut>,
}

// ---------------------------------------------------------------------------
// Response
// ---------------------------------------------------------------------------

/// Gemini usage as OpenAI's `usage` and the gateway's [`Usage`].
fn convert_usage(m: &UsageMetadata) -> (UsageOut, Usage) {
    let prompt = m
        .prompt_token_count
        .unwrap_or(0)
        .saturating_add(m.tool_use_prompt_token_count.unwrap_or(0));
    let completion = m
        .candidates_token_count
        .unwrap_or(0)
        .saturating_add(m.thoughts_token_count.unwrap_or(0));
    let total = m
        .total_token_count
        .unwrap_or_else(|| prompt.saturating_add(completion));
    let out = UsageOut {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: total,
        prompt_tokens_details: m
            .cached_content_token_count
            .map(|cached_tokens| PromptDetails { cached_tokens }),
        completion_tokens_details: m
            .thoughts_token_count
            .map(|reasoning_tokens| CompletionDetails { reasoning_tokens }),
    };
    let usage = Usage {
        input_tokens: Some(prompt),
        output_tokens: Some(completion),
        total_tokens: Some(total),
        cached_input_tokens: m.cached_content_token_count,
        reasoning_tokens: m.thoughts_token_count,
        source: UsageSource::Reported,
    };
    (out, usage)
}

fn finish_reason(reason: &str, has_calls: bool) -> &'static str {
    match reason {
        "MAX_TOKENS" => "length",
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION" => "content_filter",
        _ if has_calls => "tool_calls",
        _ => "stop",
    }
}

fn tool_call_id(key: &str, n: u32) -> String {
    format!("call_{key}_{n}")
}

/// The text and function calls of a candidate's parts (thoughts dropped).
fn read_parts(candidate: &Candidate) -> (String, Vec<(String, String, Option<String>)>) {
    let mut text = String::new();
    let mut calls = Vec::new();
    for part in candidate.content.iter().flat_map(|c| c.parts.iter()) {
        if part.thought == Some(true) {
            continue;
        }
        if let Some(t) = &part.text {
            text.push_str(t);
        }
        if let Some(call) = &part.function_call {
            let arguments = match &call.args {
                None => "{}".to_owned(),
                Some(raw) => serde_json::from_str::<Json>(raw.get())
                    .map_or_else(|_| raw.get().to_owned(), |j| j.compact()),
            };
            calls.push((call.name.clone(), arguments, part.thought_signature.clone()));
        }
    }
    (text, calls)
}

fn tool_call_out(
    index: Option<u32>,
    id: String,
    (name, arguments, signature): (String, String, Option<String>),
) -> ToolCallOut {
    ToolCallOut {
        index,
        id,
        kind: "function",
        function: FunctionOut { name, arguments },
        extra_content: signature.map(|s| ExtraContent {
            google: Some(GoogleExtra {
                thought_signature: Some(s),
            }),
        }),
    }
}

fn blocked_message(reason: &str) -> String {
    format!("the prompt was blocked by the provider's content filter (Gemini blockReason {reason})")
}

/// A complete Gemini response as an OpenAI `chat.completion`.
pub fn response(body: &[u8], ctx: &ResponseContext<'_>) -> Result<Vec<u8>, ApiError> {
    let resp: GenerateContentResponse = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_gateway(
            "invalid_provider_response",
            format!("the provider's response could not be read: {e}"),
        )
    })?;
    if resp.candidates.is_empty() {
        if let Some(reason) = resp
            .prompt_feedback
            .as_ref()
            .and_then(|f| f.block_reason.as_deref())
        {
            return Err(ApiError::bad_request(
                "content_filter",
                blocked_message(reason),
            ));
        }
        return Err(ApiError::bad_gateway(
            "invalid_provider_response",
            "the provider returned no candidates",
        ));
    }
    let key = resp.response_id.as_deref().unwrap_or(ctx.id);
    let id = format!("chatcmpl-{key}");
    let mut choices = Vec::with_capacity(resp.candidates.len());
    for (pos, candidate) in resp.candidates.iter().enumerate() {
        let (text, calls) = read_parts(candidate);
        let has_calls = !calls.is_empty();
        let tool_calls = calls
            .into_iter()
            .zip(0u32..)
            .map(|(call, n)| tool_call_out(None, tool_call_id(key, n), call))
            .collect();
        choices.push(CompletionChoice {
            index: candidate
                .index
                .unwrap_or_else(|| u32::try_from(pos).unwrap_or(u32::MAX)),
            message: AssistantMessage {
                role: "assistant",
                content: (!text.is_empty()).then_some(text),
                refusal: None,
                tool_calls,
            },
            logprobs: None,
            finish_reason: finish_reason(
                candidate.finish_reason.as_deref().unwrap_or("STOP"),
                has_calls,
            ),
        });
    }
    let completion = Completion {
        id: &id,
        object: "chat.completion",
        created: ctx.created,
        model: resp.model_version.as_deref().unwrap_or(ctx.model),
        choices,
        usage: resp.usage_metadata.as_ref().map(|m| convert_usage(m).0),
    };
    serde_json::to_vec(&completion).map_err(|e| {
        ApiError::bad_gateway(
            "invalid_provider_response",
            format!("could not write the response: {e}"),
        )
    })
}

// ---------------------------------------------------------------------------
// Stream
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Converting events.
    Open,
    /// Ended: closed cleanly, or an error event was written. Nothing more is written.
    Closed,
}

#[derive(Debug)]
struct ChoiceState {
    index: u32,
    /// Tool calls sent so far (the next call's index).
    calls: u32,
    finished: bool,
}

/// Gemini's `streamGenerateContent?alt=sse` stream as OpenAI chunks.
#[derive(Debug)]
pub struct Stream {
    parser: SseParser,
    phase: Phase,
    created: u64,
    /// Fixed by the first event: `chatcmpl-<responseId>` and the key in tool call ids.
    id: String,
    key: String,
    model: String,
    identified: bool,
    choices: Vec<ChoiceState>,
    usage: Option<Usage>,
    usage_out: Option<UsageOut>,
}

impl Stream {
    pub fn new(ctx: &ResponseContext<'_>) -> Self {
        Stream {
            parser: SseParser::new(),
            phase: Phase::Open,
            created: ctx.created,
            id: format!("chatcmpl-{}", ctx.id),
            key: ctx.id.to_owned(),
            model: ctx.model.to_owned(),
            identified: false,
            choices: Vec::new(),
            usage: None,
            usage_out: None,
        }
    }

    fn event(&mut self, data: &str, out: &mut Vec<u8>) {
        if self.phase == Phase::Closed || data.is_empty() || data == "[DONE]" {
            return;
        }
        let ev: GenerateContentResponse = match serde_json::from_str(data) {
            Ok(ev) => ev,
            Err(_) => {
                self.fail(
                    out,
                    "server_error",
                    "invalid_provider_response",
                    "the provider sent a stream event that could not be read",
                );
                return;
            }
        };
        if let Some(err) = ev.error {
            self.provider_error(err, out);
            return;
        }
        if !self.identified {
            self.identified = true;
            if let Some(rid) = ev.response_id.filter(|r| !r.is_empty()) {
                self.id = format!("chatcmpl-{rid}");
                self.key = rid;
            }
            if let Some(model) = ev.model_version.filter(|m| !m.is_empty()) {
                self.model = model;
            }
        }
        if let Some(m) = &ev.usage_metadata {
            let (out_usage, usage) = convert_usage(m);
            self.usage_out = Some(out_usage);
            self.usage = Some(usage);
        }
        if ev.candidates.is_empty() {
            if let Some(reason) = ev
                .prompt_feedback
                .as_ref()
                .and_then(|f| f.block_reason.as_deref())
            {
                let message = blocked_message(reason);
                self.fail(out, "invalid_request_error", "content_filter", &message);
            }
            return;
        }
        for (pos, candidate) in ev.candidates.iter().enumerate() {
            let index = candidate
                .index
                .unwrap_or_else(|| u32::try_from(pos).unwrap_or(u32::MAX));
            self.candidate(index, candidate, out);
        }
    }

    fn candidate(&mut self, index: u32, candidate: &Candidate, out: &mut Vec<u8>) {
        let slot = match self.choices.iter().position(|c| c.index == index) {
            Some(slot) => slot,
            None => {
                self.choices.push(ChoiceState {
                    index,
                    calls: 0,
                    finished: false,
                });
                self.write_chunk(
                    out,
                    index,
                    Delta {
                        role: Some("assistant"),
                        content: Some(String::new()),
                        ..Delta::default()
                    },
                    None,
                );
                self.choices.len() - 1
            }
        };
        if self.choices[slot].finished {
            return;
        }
        let (text, calls) = read_parts(candidate);
        if !text.is_empty() {
            self.write_chunk(
                out,
                index,
                Delta {
                    content: Some(text),
                    ..Delta::default()
                },
                None,
            );
        }
        for call in calls {
            let n = self.choices[slot].calls;
            self.choices[slot].calls = n.saturating_add(1);
            let call = tool_call_out(Some(n), tool_call_id(&self.key, n), call);
            self.write_chunk(
                out,
                index,
                Delta {
                    tool_calls: vec![call],
                    ..Delta::default()
                },
                None,
            );
        }
        if let Some(reason) = candidate.finish_reason.as_deref() {
            let choice = &mut self.choices[slot];
            choice.finished = true;
            let finish = finish_reason(reason, choice.calls > 0);
            self.write_chunk(out, index, Delta::default(), Some(finish));
        }
    }

    fn write_chunk(
        &self,
        out: &mut Vec<u8>,
        index: u32,
        delta: Delta,
        finish: Option<&'static str>,
    ) {
        let chunk = Chunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            choices: vec![ChunkChoice {
                index,
                delta,
                logprobs: None,
                finish_reason: finish,
            }],
            usage: None,
        };
        write_data(out, &chunk);
    }

    fn provider_error(&mut self, err: ErrorBody, out: &mut Vec<u8>) {
        let status = err
            .code
            .and_then(|c| u16::try_from(c).ok())
            .filter(|c| (400..600).contains(c))
            .unwrap_or(500);
        let code = err.status.map(|s| s.to_ascii_lowercase());
        let message = err
            .message
            .unwrap_or_else(|| "the provider reported an error during the stream".to_owned());
        out.extend_from_slice(b"data: ");
        out.extend(openai_error_body(
            openai_error_type(status),
            &message,
            None,
            code.as_deref(),
        ));
        out.extend_from_slice(b"\n\n");
        self.phase = Phase::Closed;
    }

    /// Writes an OpenAI error event and closes the stream.
    fn fail(&mut self, out: &mut Vec<u8>, kind: &str, code: &str, message: &str) {
        out.extend_from_slice(b"data: ");
        out.extend(openai_error_body(kind, message, None, Some(code)));
        out.extend_from_slice(b"\n\n");
        self.phase = Phase::Closed;
    }

    /// Every choice seen has its finish reason: the provider's natural end.
    fn complete(&self) -> bool {
        !self.choices.is_empty() && self.choices.iter().all(|c| c.finished)
    }
}

fn write_data<T: Serialize>(out: &mut Vec<u8>, value: &T) {
    if let Ok(json) = serde_json::to_vec(value) {
        out.extend_from_slice(b"data: ");
        out.extend(json);
        out.extend_from_slice(b"\n\n");
    }
}

impl StreamConverter for Stream {
    fn push(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        if self.phase == Phase::Closed {
            return out;
        }
        for ev in self.parser.push(bytes) {
            self.event(&ev.data, &mut out);
        }
        if self.phase == Phase::Open && self.parser.pending() > MAX_STREAM_EVENT {
            self.parser = SseParser::new();
            let message = format!("a provider stream event exceeds {MAX_STREAM_EVENT} bytes");
            self.fail(&mut out, "server_error", "stream_event_too_large", &message);
        }
        out
    }

    fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.phase == Phase::Closed {
            return out;
        }
        // A last event without its blank line still counts when it is whole.
        if let Some(rest) = self.parser.finish() {
            if serde_json::from_str::<IgnoredAny>(&rest.data).is_ok() {
                self.event(&rest.data, &mut out);
                if self.phase == Phase::Closed {
                    return out;
                }
            }
        }
        if self.complete() {
            if let Some(usage) = &self.usage_out {
                let chunk = Chunk {
                    id: &self.id,
                    object: "chat.completion.chunk",
                    created: self.created,
                    model: &self.model,
                    choices: Vec::new(),
                    usage: Some(usage),
                };
                write_data(&mut out, &chunk);
            }
            out.extend_from_slice(b"data: [DONE]\n\n");
            self.phase = Phase::Closed;
        } else {
            self.fail(
                &mut out,
                "server_error",
                "stream_interrupted",
                "the provider's stream ended before the response was complete",
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
// ---------------------------------------------------------------------------

/// Reads Gemini's error body: `{"error":{"code","message","status","details"}}`,
/// possibly inside a one-element array. `kind` is the status word
/// (`INVALID_ARGUMENT`), `code` the `ErrorInfo` reason (`API_KEY_INVALID`),
/// `param` the first field violation. A body that is not JSON gives its text
/// as the message when it is short plain text (never an HTML page).
pub fn error(status: u16, body: &[u8]) -> ProviderError {
    let trimmed = body.trim_ascii();
    let parsed = if trimmed.first() == Some(&b'[') {
        serde_json::from_slice::<Vec<ErrorEnvelope>>(trimmed)
            .ok()
            .and_then(|v| v.into_iter().next())
            .and_then(|e| e.error)
    } else {
        serde_json::from_slice::<ErrorEnvelope>(trimmed)
            .ok()
            .and_then(|e| e.error)
    };
    match parsed {
        Some(err) => ProviderError {
            status,
            kind: err.status.filter(|s| !s.is_empty()),
            message: err.message.filter(|m| !m.is_empty()),
            code: err.details.iter().find_map(|d| d.reason.clone()),
            param: err
                .details
                .iter()
                .flat_map(|d| d.field_violations.iter())
                .find_map(|v| v.field.clone()),
        },
        None => ProviderError {
            status,
            kind: None,
            message: plain_text(trimmed),
            code: None,
            param: None,
        },
    }
}

/// A short plain-text body (not JSON, not HTML) as an error message.
fn plain_text(body: &[u8]) -> Option<String> {
    if serde_json::from_slice::<IgnoredAny>(body).is_ok() {
        return None;
    }
    let text = std::str::from_utf8(body).ok()?.trim();
    let usable = !text.is_empty()
        && text.len() <= 512
        && !text.starts_with('<')
        && !text.starts_with('{')
        && !text.starts_with('[')
        && !text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t');
    usable.then(|| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(schema: &str) -> String {
        clean_schema(serde_json::from_str(schema).unwrap()).compact()
    }

    #[test]
    fn ordered_json_keeps_member_order_and_values() {
        let text = r#"{"z":1,"a":[true,null,-2,1.5,"s"],"m":{"y":{},"b":[]}}"#;
        let j: Json = serde_json::from_str(text).unwrap();
        assert_eq!(j.compact(), text);
    }

    #[test]
    fn schema_keeps_documented_keywords_in_order() {
        assert_eq!(
            clean(
                r#"{"type":"object","properties":{"z":{"type":"string","pattern":"x","minLength":1},"a":{"type":["integer","null"],"minimum":0}},"required":["z"],"additionalProperties":false,"$schema":"http://json-schema.org/draft-07/schema#"}"#
            ),
            r#"{"type":"object","properties":{"z":{"type":"string"},"a":{"type":["integer","null"],"minimum":0}},"required":["z"],"additionalProperties":false}"#
        );
    }

    #[test]
    fn schema_rewrites_one_of_const_definitions_and_single_all_of() {
        assert_eq!(
            clean(
                r##"{"oneOf":[{"const":"a"},{"type":"integer","exclusiveMinimum":0}],"definitions":{"X":{"type":"string"}},"properties":{"x":{"$ref":"#/definitions/X"}}}"##
            ),
            r##"{"anyOf":[{"enum":["a"]},{"type":"integer"}],"$defs":{"X":{"type":"string"}},"properties":{"x":{"$ref":"#/$defs/X"}}}"##
        );
        assert_eq!(
            clean(r##"{"allOf":[{"$ref":"#/$defs/X"}],"description":"d","default":1}"##),
            r##"{"description":"d","anyOf":[{"$ref":"#/$defs/X"}]}"##
        );
        assert_eq!(
            clean(r#"{"allOf":[{"type":"string"}],"title":"t"}"#),
            r#"{"title":"t","type":"string"}"#
        );
        assert_eq!(
            clean(r#"{"allOf":[{"type":"string"},{"maxLength":3}],"title":"t"}"#),
            r#"{"title":"t"}"#
        );
        assert_eq!(
            clean(r#"{"items":[{"type":"string"}],"type":"array"}"#),
            r#"{"prefixItems":[{"type":"string"}],"type":"array"}"#
        );
    }

    #[test]
    fn schema_keeps_property_names_that_look_like_keywords() {
        assert_eq!(
            clean(
                r#"{"type":"object","properties":{"pattern":{"type":"string"},"default":{"type":"boolean","default":true}}}"#
            ),
            r#"{"type":"object","properties":{"pattern":{"type":"string"},"default":{"type":"boolean"}}}"#
        );
    }

    #[test]
    fn data_urls_are_parsed_strictly() {
        assert_eq!(
            parse_data_url("data:image/png;base64,AAA"),
            Some(("image/png", "AAA"))
        );
        assert_eq!(
            parse_data_url("DATA:image/jpeg;name=a.jpg;base64,QQ=="),
            Some(("image/jpeg", "QQ=="))
        );
        assert_eq!(parse_data_url("data:image/png,AAA"), None);
        assert_eq!(parse_data_url("data:;base64,AAA"), None);
        assert_eq!(parse_data_url("data:image/png;base64,"), None);
    }

    #[test]
    fn finish_reasons_map_to_openai() {
        assert_eq!(finish_reason("STOP", false), "stop");
        assert_eq!(finish_reason("STOP", true), "tool_calls");
        assert_eq!(finish_reason("MAX_TOKENS", true), "length");
        for r in [
            "SAFETY",
            "RECITATION",
            "BLOCKLIST",
            "PROHIBITED_CONTENT",
            "SPII",
            "IMAGE_SAFETY",
        ] {
            assert_eq!(finish_reason(r, false), "content_filter");
        }
        for r in [
            "OTHER",
            "LANGUAGE",
            "MALFORMED_FUNCTION_CALL",
            "FINISH_REASON_UNSPECIFIED",
            "NEW_REASON",
        ] {
            assert_eq!(finish_reason(r, false), "stop");
        }
    }
}
