//! Gemini `generateContent` wire format: routing, request parsing and response building, for
//! `POST …/models/{model}:generateContent` and `POST …/models/{model}:streamGenerateContent`.
//!
//! Pure like `openai.rs`: bytes or typed values in, bytes out.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::json;
use crate::reply::{count_words, Content, Finish, Output, ToolArguments, TOOL_ARGUMENTS};

/// How a streamed reply is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `?alt=sse`: server-sent events, `data: <json>\r\n\r\n`.
    Sse,
    /// Without `alt=sse`: one JSON array, `[<json>`, `,\r\n<json>`…, `]`.
    JsonArray,
}

/// Which method a Gemini path calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `:generateContent`: one JSON response.
    Generate,
    /// `:streamGenerateContent`, framed as the query asks.
    Stream(Framing),
}

/// The model and action of a path ending `/models/{model}:generateContent` or
/// `/models/{model}:streamGenerateContent` (any prefix: `/v1beta`, Vertex's
/// `/v1/projects/…/publishers/google`, none); `query` decides a stream's framing.
pub fn route<'a>(path: &'a str, query: Option<&str>) -> Option<(&'a str, Action)> {
    let (rest, method) = path.rsplit_once(':')?;
    let action = match method {
        "generateContent" => Action::Generate,
        "streamGenerateContent" => Action::Stream(framing(query)),
        _ => return None,
    };
    let (prefix, model) = rest.rsplit_once('/')?;
    (prefix.ends_with("/models") && !model.is_empty()).then_some((model, action))
}

/// `alt=sse` among the query parameters: SSE; otherwise Gemini's default, a JSON array.
fn framing(query: Option<&str>) -> Framing {
    let sse = query
        .unwrap_or_default()
        .split('&')
        .any(|pair| pair == "alt=sse");
    if sse {
        Framing::Sse
    } else {
        Framing::JsonArray
    }
}

/// The parts of a `GenerateContentRequest` the mock looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateRequest {
    /// From the path.
    pub model: String,
    /// `generationConfig.maxOutputTokens`.
    pub max_output_tokens: Option<u64>,
    pub prompt_tokens: u64,
}

/// Gemini's JSON parser takes both the proto (camelCase) and the original (snake_case) field
/// names; so does the mock.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRequest {
    #[serde(default)]
    contents: Option<Value>,
    #[serde(default, alias = "system_instruction")]
    system_instruction: Option<Value>,
    #[serde(default, alias = "generation_config")]
    generation_config: Option<Value>,
    #[serde(default)]
    tools: Option<Value>,
}

/// Parse a `generateContent` body for `model` (from the path). Like Gemini, `contents` must
/// be a non-empty list, each with a non-empty `parts` list and a `role` (if any) of `user`
/// or `model`. The error is a message for the client.
pub fn parse_request(body: &[u8], model: &str) -> Result<GenerateRequest, String> {
    let raw: RawRequest =
        serde_json::from_slice(body).map_err(|e| format!("Invalid JSON payload received. {e}"))?;
    let contents = match &raw.contents {
        None | Some(Value::Null) => None,
        Some(Value::Array(contents)) => Some(contents),
        Some(_) => {
            return Err(
                "Invalid JSON payload received. Invalid value at 'contents': not a list".to_owned(),
            )
        }
    };
    let contents = contents
        .filter(|c| !c.is_empty())
        .ok_or("* GenerateContentRequest.contents: contents is not specified")?;
    let mut prompt_tokens = 0;
    for (i, content) in contents.iter().enumerate() {
        match content.get("role") {
            None | Some(Value::Null) => {}
            Some(Value::String(role)) if role == "user" || role == "model" => {}
            Some(_) => return Err("Please use a valid role: user, model.".to_owned()),
        }
        let words = parts_words(content).ok_or_else(|| {
            format!(
                "* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty."
            )
        })?;
        prompt_tokens += words + 1;
    }
    match &raw.system_instruction {
        None | Some(Value::Null) => {}
        Some(instruction @ Value::Object(_)) => {
            prompt_tokens += parts_words(instruction).unwrap_or(0) + 1;
        }
        Some(_) => {
            return Err("Invalid JSON payload received. Invalid value at \
                        'system_instruction': not a Content object"
                .to_owned())
        }
    }
    let max_output_tokens = match &raw.generation_config {
        None | Some(Value::Null) => None,
        Some(Value::Object(config)) => {
            match config
                .get("maxOutputTokens")
                .or_else(|| config.get("max_output_tokens"))
            {
                None | Some(Value::Null) => None,
                Some(n) => Some(n.as_u64().ok_or(
                    "Invalid JSON payload received. Invalid value at \
                     'generation_config.max_output_tokens': not an integer",
                )?),
            }
        }
        Some(_) => {
            return Err("Invalid JSON payload received. Invalid value at \
                        'generation_config': not an object"
                .to_owned())
        }
    };
    match &raw.tools {
        None | Some(Value::Null | Value::Array(_)) => {}
        Some(_) => {
            return Err(
                "Invalid JSON payload received. Invalid value at 'tools': not a list".to_owned(),
            )
        }
    }
    Ok(GenerateRequest {
        model: model.to_owned(),
        max_output_tokens,
        prompt_tokens,
    })
}

/// Whitespace-separated words in the `text` of a `Content`'s parts (`functionCall`,
/// `functionResponse`, `inlineData` and other parts count zero); `None` when `parts` is
/// missing or empty.
fn parts_words(content: &Value) -> Option<u64> {
    let parts = content.get("parts")?.as_array().filter(|p| !p.is_empty())?;
    Some(
        parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .map(count_words)
            .sum(),
    )
}

/// Everything needed to render one reply, streamed or not.
#[derive(Debug, Clone)]
pub struct GenerateReply {
    /// `mock-<n>`.
    pub response_id: String,
    pub model: String,
    pub output: Output,
    pub prompt_tokens: u64,
    /// Leave `usageMetadata` out (Gemini's schema has it optional).
    pub omit_usage: bool,
}

impl GenerateReply {
    /// `STOP` (a tool call too, as Gemini does) or `MAX_TOKENS`.
    pub fn finish_reason(&self) -> &'static str {
        match self.output.finish {
            Finish::Stop | Finish::ToolCall => "STOP",
            Finish::MaxTokens => "MAX_TOKENS",
        }
    }

    /// One response carrying `part`; the final one also carries the finish reason and usage.
    fn response<'a>(&'a self, part: Part<'a>, last: bool) -> Response<'a> {
        let candidates = self.output.completion_tokens();
        Response {
            candidates: [Candidate {
                content: CandidateContent {
                    role: "model",
                    parts: [part],
                },
                finish_reason: last.then(|| self.finish_reason()),
                index: 0,
            }],
            usage_metadata: (last && !self.omit_usage).then_some(UsageMetadata {
                prompt_token_count: self.prompt_tokens,
                candidates_token_count: candidates,
                total_token_count: self.prompt_tokens + candidates,
            }),
            model_version: &self.model,
            response_id: &self.response_id,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Response<'a> {
    candidates: [Candidate<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage_metadata: Option<UsageMetadata>,
    model_version: &'a str,
    response_id: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Candidate<'a> {
    content: CandidateContent<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finish_reason: Option<&'static str>,
    index: u32,
}

#[derive(Serialize)]
struct CandidateContent<'a> {
    role: &'static str,
    parts: [Part<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum Part<'a> {
    Text(&'a str),
    FunctionCall(FunctionCall<'a>),
}

#[derive(Serialize)]
struct FunctionCall<'a> {
    name: &'a str,
    args: ToolArguments,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    prompt_token_count: u64,
    candidates_token_count: u64,
    total_token_count: u64,
}

/// A non-streaming `GenerateContentResponse`: one candidate whose one part is the whole text
/// (possibly empty) or a `functionCall`.
pub fn response_json(reply: &GenerateReply) -> Bytes {
    let text = reply.output.text();
    let part = match &reply.output.content {
        Content::Text(_) => Part::Text(&text),
        Content::ToolCall(name) => function_call(name),
    };
    json::to_bytes(&reply.response(part, true))
}

fn function_call(name: &str) -> Part<'_> {
    Part::FunctionCall(FunctionCall {
        name,
        args: TOOL_ARGUMENTS,
    })
}

/// Every event of a streamed reply: one full `GenerateContentResponse` per word (a reply with
/// no words sends one with an empty text part; a tool call one with the `functionCall`), the
/// last also carrying `finishReason` and `usageMetadata`.
///
/// [`Framing::Sse`] frames each `data: <json>\r\n\r\n`, as Gemini does. [`Framing::JsonArray`]
/// sends `[<json>`, then `,\r\n<json>` for each further response, then a final `]` event, so
/// the concatenated body is one JSON array.
pub fn stream_events(reply: &GenerateReply, framing: Framing) -> Vec<Bytes> {
    let parts: Vec<Part<'_>> = match &reply.output.content {
        Content::Text(words) if words.is_empty() => vec![Part::Text("")],
        Content::Text(words) => words.iter().map(|w| Part::Text(w)).collect(),
        Content::ToolCall(name) => vec![function_call(name)],
    };
    let count = parts.len();
    let mut events: Vec<Bytes> = parts
        .into_iter()
        .enumerate()
        .map(|(i, part)| {
            let response = reply.response(part, i + 1 == count);
            match framing {
                Framing::Sse => json::framed(b"data: ", &response, b"\r\n\r\n"),
                Framing::JsonArray if i == 0 => json::framed(b"[", &response, b""),
                Framing::JsonArray => json::framed(b",\r\n", &response, b""),
            }
        })
        .collect();
    if framing == Framing::JsonArray {
        events.push(Bytes::from_static(b"]"));
    }
    events
}

/// The `google.rpc.Code` name Google APIs send with an HTTP status: Gemini's documented ones
/// (400, 403, 404, 429, 500, 503, 504), the canonical mapping for 401, 409, 499 and 501, any
/// other 5xx `INTERNAL`, anything else `UNKNOWN`.
pub fn status(code: u16) -> &'static str {
    match code {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        500..=599 => "INTERNAL",
        _ => "UNKNOWN",
    }
}

#[derive(Serialize)]
struct ErrorEnvelope<'a> {
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: u16,
    message: &'a str,
    status: &'static str,
}

/// `{"error":{"code":N,"message":...,"status":...}}`
pub fn error_json(code: u16, message: &str) -> Bytes {
    json::to_bytes(&ErrorEnvelope {
        error: ErrorBody {
            code,
            message,
            status: status(code),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(body: Value) -> Result<GenerateRequest, String> {
        parse_request(body.to_string().as_bytes(), "gemini-x")
    }

    fn reply(output: Output, omit_usage: bool) -> GenerateReply {
        GenerateReply {
            response_id: "mock-1".into(),
            model: "gemini-x".into(),
            output,
            prompt_tokens: 3,
            omit_usage,
        }
    }

    fn text(chunks: Option<usize>) -> Output {
        Output::new("m1", "gemini-x", chunks, None, None)
    }

    fn tool() -> Output {
        Output::new("m1", "gemini-x", None, Some("get_weather"), None)
    }

    fn sse_json(event: &Bytes) -> Value {
        let text = std::str::from_utf8(event).unwrap();
        let data = text
            .strip_prefix("data: ")
            .and_then(|t| t.strip_suffix("\r\n\r\n"))
            .unwrap_or_else(|| panic!("badly framed {text:?}"));
        assert!(!data.contains('\n'), "{text:?}");
        serde_json::from_str(data).unwrap()
    }

    #[test]
    fn routes_take_the_model_from_the_path() {
        assert_eq!(
            route("/v1beta/models/gemini-2.0-flash:generateContent", None),
            Some(("gemini-2.0-flash", Action::Generate))
        );
        assert_eq!(
            route(
                "/v1beta/models/gemini-2.0-flash:streamGenerateContent",
                Some("alt=sse")
            ),
            Some(("gemini-2.0-flash", Action::Stream(Framing::Sse)))
        );
        assert_eq!(
            route("/models/g:streamGenerateContent", Some("key=k&alt=sse&x=1")),
            Some(("g", Action::Stream(Framing::Sse)))
        );
        assert_eq!(
            route("/v1beta/models/g:streamGenerateContent", Some("key=k")),
            Some(("g", Action::Stream(Framing::JsonArray)))
        );
        assert_eq!(
            route(
                "/v1/projects/p/locations/us-central1/publishers/google/models/g:generateContent",
                None
            ),
            Some(("g", Action::Generate))
        );
        assert_eq!(route("/v1beta/models/g:countTokens", None), None);
        assert_eq!(route("/v1beta/models/:generateContent", None), None);
        assert_eq!(route("/v1beta/tunedModels/t:generateContent", None), None);
        assert_eq!(route("/v1/chat/completions", None), None);
    }

    #[test]
    fn prompt_tokens_count_text_parts_and_the_system_instruction() {
        let req = parse(json!({
            "systemInstruction": {"parts": [{"text": "be brief"}]},
            "contents": [
                {"role": "user", "parts": [
                    {"text": "what is this"},
                    {"inlineData": {"mimeType": "image/png", "data": "AAAA"}}
                ]},
                {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {"a": "b c"}}}]},
                {"role": "user", "parts": [
                    {"functionResponse": {"name": "f", "response": {"r": "x y"}}}
                ]},
                {"parts": [{"text": "thanks"}]}
            ],
            "generationConfig": {"maxOutputTokens": 5, "temperature": 0.1},
            "tools": [{"functionDeclarations": [{"name": "f"}]}]
        }))
        .unwrap();
        // (3+1) + (0+1) + (0+1) + (1+1) + system (2+1)
        assert_eq!(req.prompt_tokens, 4 + 1 + 1 + 2 + 3);
        assert_eq!(req.max_output_tokens, Some(5));
        assert_eq!(req.model, "gemini-x");
        let snake = parse(json!({
            "system_instruction": {"parts": [{"text": "a"}]},
            "contents": [{"parts": [{"text": "b"}]}],
            "generation_config": {"max_output_tokens": 2}
        }))
        .unwrap();
        assert_eq!(snake.prompt_tokens, 4);
        assert_eq!(snake.max_output_tokens, Some(2));
    }

    #[test]
    fn requests_gemini_would_reject_are_rejected() {
        let no_contents = "* GenerateContentRequest.contents: contents is not specified";
        assert_eq!(parse(json!({})).unwrap_err(), no_contents);
        assert_eq!(parse(json!({"contents": []})).unwrap_err(), no_contents);
        assert_eq!(
            parse(json!({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}))
                .unwrap_err(),
            "Please use a valid role: user, model."
        );
        assert!(parse(json!({"contents": [{"role": "user", "parts": []}]}))
            .unwrap_err()
            .contains("contents[0].parts"));
        assert!(parse(json!({"contents": "hi"})).is_err());
        let ok = json!([{"parts": [{"text": "x"}]}]);
        assert!(parse(json!({"contents": ok, "systemInstruction": "be brief"})).is_err());
        assert!(
            parse(json!({"contents": ok, "generationConfig": {"maxOutputTokens": "5"}})).is_err()
        );
        assert!(parse(json!({"contents": ok, "tools": {}})).is_err());
        assert!(parse_request(b"{nope", "g").is_err());
    }

    #[test]
    fn non_streaming_response_has_the_gemini_shape() {
        let body: Value =
            serde_json::from_slice(&response_json(&reply(text(None), false))).unwrap();
        assert_eq!(
            body,
            json!({
                "candidates": [{
                    "content": {"role": "model", "parts": [{"text": "Hello from m1! You asked gemini-x."}]},
                    "finishReason": "STOP",
                    "index": 0
                }],
                "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 6, "totalTokenCount": 9},
                "modelVersion": "gemini-x",
                "responseId": "mock-1"
            })
        );
        let cut = Output::new("m1", "gemini-x", None, None, Some(1));
        let body: Value = serde_json::from_slice(&response_json(&reply(cut, true))).unwrap();
        assert_eq!(body["candidates"][0]["finishReason"], "MAX_TOKENS");
        assert_eq!(
            body["candidates"][0]["content"]["parts"],
            json!([{"text": "Hello"}])
        );
        assert!(body.get("usageMetadata").is_none());
    }

    #[test]
    fn tool_call_is_one_function_call_part_with_finish_reason_stop() {
        let body: Value = serde_json::from_slice(&response_json(&reply(tool(), false))).unwrap();
        assert_eq!(
            body["candidates"],
            json!([{
                "content": {"role": "model", "parts": [{"functionCall": {
                    "name": "get_weather", "args": {"location": "Paris", "unit": "celsius"}}}]},
                "finishReason": "STOP",
                "index": 0
            }])
        );
        assert_eq!(body["usageMetadata"]["candidatesTokenCount"], 3);
        let events = stream_events(&reply(tool(), false), Framing::Sse);
        assert_eq!(events.len(), 1);
        assert_eq!(sse_json(&events[0])["candidates"], body["candidates"]);
    }

    #[test]
    fn sse_stream_is_one_crlf_framed_response_per_word_the_last_with_finish_and_usage() {
        let events = stream_events(&reply(text(Some(3)), false), Framing::Sse);
        assert_eq!(events.len(), 3);
        assert_eq!(
            String::from_utf8(events[0].to_vec()).unwrap(),
            "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"w0\"}]},\
             \"index\":0}],\"modelVersion\":\"gemini-x\",\"responseId\":\"mock-1\"}\r\n\r\n"
        );
        let words: Vec<Value> = events
            .iter()
            .map(|e| sse_json(e)["candidates"][0]["content"]["parts"][0]["text"].clone())
            .collect();
        assert_eq!(words, [json!("w0"), json!(" w1"), json!(" w2")]);
        for event in &events[..2] {
            let response = sse_json(event);
            assert!(response["candidates"][0].get("finishReason").is_none());
            assert!(response.get("usageMetadata").is_none());
        }
        let last = sse_json(&events[2]);
        assert_eq!(last["candidates"][0]["finishReason"], "STOP");
        assert_eq!(
            last["usageMetadata"],
            json!({"promptTokenCount": 3, "candidatesTokenCount": 3, "totalTokenCount": 6})
        );
        assert_eq!(last["responseId"], "mock-1");
        assert_eq!(last["modelVersion"], "gemini-x");
    }

    #[test]
    fn stream_without_words_sends_one_empty_text_and_omitted_usage_is_absent() {
        let events = stream_events(&reply(text(Some(0)), true), Framing::Sse);
        assert_eq!(events.len(), 1);
        let only = sse_json(&events[0]);
        assert_eq!(
            only["candidates"][0]["content"]["parts"],
            json!([{"text": ""}])
        );
        assert_eq!(only["candidates"][0]["finishReason"], "STOP");
        assert!(only.get("usageMetadata").is_none());
    }

    #[test]
    fn json_array_stream_concatenates_to_one_array() {
        let events = stream_events(&reply(text(Some(2)), false), Framing::JsonArray);
        assert_eq!(events.len(), 3);
        assert!(events[0].starts_with(b"[{"));
        assert!(events[1].starts_with(b",\r\n{"));
        assert_eq!(events[2].as_ref(), b"]");
        let body: Value = serde_json::from_slice(&events.concat()).unwrap();
        let responses = body.as_array().unwrap();
        assert_eq!(responses.len(), 2);
        assert_eq!(responses[1]["candidates"][0]["finishReason"], "STOP");
        assert_eq!(responses[1]["usageMetadata"]["totalTokenCount"], 5);
    }

    #[test]
    fn error_envelope_and_statuses() {
        let body: Value = serde_json::from_slice(&error_json(429, "mock error 429")).unwrap();
        assert_eq!(
            body,
            json!({"error": {"code": 429, "message": "mock error 429", "status": "RESOURCE_EXHAUSTED"}})
        );
        let statuses: Vec<&str> = [400, 401, 403, 404, 429, 500, 502, 503, 504, 418]
            .into_iter()
            .map(status)
            .collect();
        assert_eq!(
            statuses,
            [
                "INVALID_ARGUMENT",
                "UNAUTHENTICATED",
                "PERMISSION_DENIED",
                "NOT_FOUND",
                "RESOURCE_EXHAUSTED",
                "INTERNAL",
                "INTERNAL",
                "UNAVAILABLE",
                "DEADLINE_EXCEEDED",
                "UNKNOWN"
            ]
        );
    }
}
