//! Golden tests for `convert::openai_gemini`: OpenAI chat clients served by
//! Google Gemini.
//!
//! Fixtures live in `fixtures/openai_gemini/` and are compiled in with
//! `include_str!` (these tests also run as wasm without a filesystem):
//! - `req_<case>.openai.json` → `req_<case>.gemini.json` (request bodies),
//! - `resp_<case>.gemini.json` → `resp_<case>.openai.json` (responses),
//! - `stream_<case>.gemini.sse` → `stream_<case>.openai.sse` (streams),
//! - `error_<case>.gemini.*` → `error_<case>.expected.json` (provider errors).
//!
//! JSON bodies are compared semantically (parsed on both sides). Streams are
//! compared event by event: each expected event's data is compared as JSON
//! (or exactly, for `[DONE]`), and every event must be framed as
//! `data: ...\n\n`. Each stream is also fed whole, split at every byte
//! boundary, and one byte at a time, and must give byte-identical output.

// Test code: the helpers below may unwrap and panic like the tests do.
#![cfg(test)]

use aigw_core::convert::openai_gemini::{self, Stream, SKIP_THOUGHT_SIGNATURE};
use aigw_core::convert::{RequestContext, ResponseContext, StreamConverter};
use aigw_core::error::ApiError;
use aigw_core::usage::{Usage, UsageSource};
use serde_json::{json, Value};

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("fixtures/openai_gemini/", $name))
    };
}

const REQ_CTX: RequestContext<'static> = RequestContext {
    model: "gemini-2.5-flash",
    default_max_tokens: 4096,
};

const RESP_CTX: ResponseContext<'static> = ResponseContext {
    model: "gemini-2.5-flash",
    created: 1_700_000_000,
    id: "gw123",
};

fn parse(text: &[u8]) -> Value {
    serde_json::from_slice(text)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(text)))
}

fn convert_request(body: &str) -> Result<Value, ApiError> {
    openai_gemini::request(body.as_bytes(), &REQ_CTX).map(|b| parse(&b))
}

fn assert_request(input: &str, expected: &str) {
    let got = convert_request(input).unwrap_or_else(|e| panic!("rejected: {e:?}"));
    assert_eq!(got, parse(expected.as_bytes()), "\ngot: {got:#}");
}

fn assert_response(input: &str, expected: &str) {
    let got = openai_gemini::response(input.as_bytes(), &RESP_CTX)
        .unwrap_or_else(|e| panic!("rejected: {e:?}"));
    let got = parse(&got);
    assert_eq!(got, parse(expected.as_bytes()), "\ngot: {got:#}");
}

fn rejection(body: Value) -> ApiError {
    match openai_gemini::request(body.to_string().as_bytes(), &REQ_CTX) {
        Ok(out) => panic!("accepted {body}: {}", String::from_utf8_lossy(&out)),
        Err(e) => e,
    }
}

/// Feeds `input` in the given pieces; returns the output and the converter.
fn run_stream(pieces: &[&[u8]]) -> (Vec<u8>, Stream) {
    let mut s = Stream::new(&RESP_CTX);
    let mut out = Vec::new();
    for p in pieces {
        out.extend(s.push(p));
    }
    out.extend(s.finish());
    (out, s)
}

/// Splits SSE output into event data, checking the framing.
fn events(out: &[u8]) -> Vec<String> {
    let text = std::str::from_utf8(out).unwrap();
    assert!(
        text.is_empty() || text.ends_with("\n\n"),
        "unterminated: {text:?}"
    );
    text.split_terminator("\n\n")
        .map(|e| {
            assert!(!e.contains('\n'), "multi-line event: {e:?}");
            e.strip_prefix("data: ")
                .unwrap_or_else(|| panic!("not a data event: {e:?}"))
                .to_owned()
        })
        .collect()
}

fn assert_same_events(got: &[u8], expected: &str) {
    let got = events(got);
    let want = events(expected.as_bytes());
    let show = |v: &[String]| v.join("\n");
    assert_eq!(
        got.len(),
        want.len(),
        "\ngot:\n{}\nwant:\n{}",
        show(&got),
        show(&want)
    );
    for (g, w) in got.iter().zip(&want) {
        if w.starts_with('{') {
            assert_eq!(
                parse(g.as_bytes()),
                parse(w.as_bytes()),
                "\ngot:\n{}",
                show(&got)
            );
        } else {
            assert_eq!(g, w);
        }
    }
}

/// Converts the transcript whole, at every two-piece split and byte by byte:
/// identical bytes every time, matching the expected events. Returns the
/// converter fed whole.
fn assert_stream(input: &str, expected: &str) -> Stream {
    let input = input.as_bytes();
    let (whole, stream) = run_stream(&[input]);
    assert_same_events(&whole, expected);
    for i in 0..=input.len() {
        let (out, s) = run_stream(&[&input[..i], &input[i..]]);
        assert_eq!(out, whole, "split at {i}");
        assert_eq!(s.usage(), stream.usage(), "split at {i}");
    }
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    let (out, _) = run_stream(&bytes);
    assert_eq!(out, whole, "byte by byte");
    stream
}

fn error_json(status: u16, body: &str) -> Value {
    let e = openai_gemini::error(status, body.as_bytes());
    json!({"status": e.status, "kind": e.kind, "message": e.message, "code": e.code, "param": e.param})
}

// ---------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------

#[test]
fn builds_generate_content_and_stream_paths() {
    assert_eq!(
        openai_gemini::path("/v1beta", "gemini-2.5-flash", false),
        "/v1beta/models/gemini-2.5-flash:generateContent"
    );
    assert_eq!(
        openai_gemini::path("/v1beta/", "gemini-2.5-flash", true),
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    );
}

#[test]
fn does_not_double_the_models_prefix() {
    assert_eq!(
        openai_gemini::path("/v1beta", "models/gemini-2.0-flash-001", false),
        "/v1beta/models/gemini-2.0-flash-001:generateContent"
    );
    assert_eq!(
        openai_gemini::path("/v1beta", "tunedModels/my-model-7", true),
        "/v1beta/tunedModels/my-model-7:streamGenerateContent?alt=sse"
    );
}

#[test]
fn percent_encodes_model_names_that_could_change_the_path() {
    assert_eq!(
        openai_gemini::path("/v1beta", "a/b:c?d e%", false),
        "/v1beta/models/a%2Fb%3Ac%3Fd%20e%25:generateContent"
    );
    assert_eq!(
        openai_gemini::path("", "gémini", false),
        "/models/g%C3%A9mini:generateContent"
    );
    assert_eq!(
        openai_gemini::path("/", "m", false),
        "/models/m:generateContent"
    );
    assert_eq!(
        openai_gemini::path("v1", "m", false),
        "/v1/models/m:generateContent"
    );
}

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

#[test]
fn converts_a_plain_text_request() {
    assert_request(
        fixture!("req_plain_text.openai.json"),
        fixture!("req_plain_text.gemini.json"),
    );
}

#[test]
fn moves_system_and_developer_messages_to_the_system_instruction() {
    assert_request(
        fixture!("req_system_prompts.openai.json"),
        fixture!("req_system_prompts.gemini.json"),
    );
}

#[test]
fn maps_roles_and_merges_consecutive_turns_of_one_role() {
    assert_request(
        fixture!("req_multi_turn.openai.json"),
        fixture!("req_multi_turn.gemini.json"),
    );
}

#[test]
fn maps_tools_tool_calls_and_tool_results_over_several_turns() {
    assert_request(
        fixture!("req_tools_multi_turn.openai.json"),
        fixture!("req_tools_multi_turn.gemini.json"),
    );
}

#[test]
fn maps_parallel_tool_calls_and_their_results_into_one_turn() {
    assert_request(
        fixture!("req_parallel_tool_calls.openai.json"),
        fixture!("req_parallel_tool_calls.gemini.json"),
    );
}

#[test]
fn maps_a_named_tool_choice_to_any_with_allowed_function_names() {
    assert_request(
        fixture!("req_tool_choice_named.openai.json"),
        fixture!("req_tool_choice_named.gemini.json"),
    );
}

#[test]
fn maps_images_audio_and_files_to_inline_and_file_data() {
    assert_request(
        fixture!("req_images.openai.json"),
        fixture!("req_images.gemini.json"),
    );
}

#[test]
fn maps_sampling_limits_stops_candidates_thinking_and_json_schema() {
    assert_request(
        fixture!("req_generation_config.openai.json"),
        fixture!("req_generation_config.gemini.json"),
    );
}

#[test]
fn maps_json_object_a_single_stop_string_and_max_tokens() {
    assert_request(
        fixture!("req_json_object_stop_string.openai.json"),
        fixture!("req_json_object_stop_string.gemini.json"),
    );
}

#[test]
fn ignores_unknown_fields_and_fields_gemini_does_not_need() {
    assert_request(
        fixture!("req_unknown_fields_ignored.openai.json"),
        fixture!("req_unknown_fields_ignored.gemini.json"),
    );
}

#[test]
fn keeps_schema_property_order_for_structured_output() {
    let out = openai_gemini::request(
        fixture!("req_generation_config.openai.json").as_bytes(),
        &REQ_CTX,
    )
    .unwrap();
    let text = String::from_utf8(out).unwrap();
    let at = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("{needle} in {text}"))
    };
    assert!(
        at("\"reasoning\"") < at("\"name\"")
            && at("\"name\"") < at("\"age\"")
            && at("\"age\"") < at("\"pet\"")
    );
    // Tool call arguments keep the client's order too.
    let out = convert_request(
        r#"{"messages":[{"role":"assistant","tool_calls":[{"id":"1","type":"function","function":{"name":"f","arguments":"{\"z\":1,\"a\":2}"}}]},
            {"role":"tool","tool_call_id":"1","content":"{\"y\":1,\"b\":2}"}]}"#,
    )
    .unwrap();
    assert_eq!(
        out["contents"][0]["parts"][0]["functionCall"]["args"],
        json!({"z":1,"a":2})
    );
    let raw = openai_gemini::request(
        br#"{"messages":[{"role":"assistant","tool_calls":[{"id":"1","type":"function","function":{"name":"f","arguments":"{\"z\":1,\"a\":2}"}}]},
            {"role":"tool","tool_call_id":"1","content":"{\"y\":1,\"b\":2}"}]}"#,
        &REQ_CTX,
    )
    .unwrap();
    let raw = String::from_utf8(raw).unwrap();
    assert!(raw.contains(r#""args":{"z":1,"a":2}"#), "{raw}");
    assert!(raw.contains(r#""response":{"y":1,"b":2}"#), "{raw}");
}

#[test]
fn maps_every_tool_choice_mode() {
    let with_tools = |choice: Value| {
        convert_request(
            &json!({"messages":[{"role":"user","content":"x"}],
                "tools":[{"type":"function","function":{"name":"a"}},{"type":"function","function":{"name":"b"}}],
                "tool_choice": choice})
            .to_string(),
        )
        .unwrap()
    };
    assert_eq!(
        with_tools(json!("none"))["toolConfig"],
        json!({"functionCallingConfig":{"mode":"NONE"}})
    );
    assert_eq!(
        with_tools(json!("auto"))["toolConfig"],
        json!({"functionCallingConfig":{"mode":"AUTO"}})
    );
    assert_eq!(
        with_tools(json!("required"))["toolConfig"],
        json!({"functionCallingConfig":{"mode":"ANY"}})
    );
    assert_eq!(with_tools(Value::Null).get("toolConfig"), None);
    let required = with_tools(
        json!({"type":"allowed_tools","allowed_tools":{"mode":"required","tools":[{"type":"function","function":{"name":"b"}}]}}),
    );
    assert_eq!(
        required["toolConfig"],
        json!({"functionCallingConfig":{"mode":"ANY","allowedFunctionNames":["b"]}})
    );
    assert_eq!(
        required["tools"][0]["functionDeclarations"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let auto = with_tools(
        json!({"type":"allowed_tools","allowed_tools":{"mode":"auto","tools":[{"type":"function","function":{"name":"a"}}]}}),
    );
    assert_eq!(
        auto["toolConfig"],
        json!({"functionCallingConfig":{"mode":"AUTO"}})
    );
    assert_eq!(
        auto["tools"],
        json!([{"functionDeclarations":[{"name":"a"}]}])
    );
    // Without tools, `none` and `auto` say nothing.
    let none = convert_request(
        r#"{"messages":[{"role":"user","content":"x"}],"tool_choice":"none","functions":[],"function_call":"none"}"#,
    )
    .unwrap();
    assert_eq!(none.get("toolConfig"), None);
    assert_eq!(none.get("tools"), None);
}

#[test]
fn maps_every_reasoning_effort_to_a_thinking_budget() {
    for (effort, budget) in [
        ("none", 0),
        ("minimal", 1024),
        ("low", 1024),
        ("medium", 8192),
        ("high", 24576),
        ("xhigh", 24576),
    ] {
        let out = convert_request(
            &json!({"messages":[{"role":"user","content":"x"}],"reasoning_effort": effort})
                .to_string(),
        )
        .unwrap();
        assert_eq!(
            out["generationConfig"],
            json!({"thinkingConfig":{"thinkingBudget": budget}}),
            "{effort}"
        );
    }
}

#[test]
fn places_the_signature_placeholder_only_on_unsigned_assistant_turns() {
    let out = convert_request(
        &json!({"messages":[
            {"role":"assistant","tool_calls":[
                {"id":"1","type":"function","function":{"name":"f","arguments":"{}"}},
                {"id":"2","type":"function","function":{"name":"f","arguments":"{}"},"extra_content":{"google":{"thought_signature":"real"}}}]},
            {"role":"tool","tool_call_id":"1","content":"a"},
            {"role":"tool","tool_call_id":"2","content":"b"}]})
        .to_string(),
    )
    .unwrap();
    let parts = &out["contents"][0]["parts"];
    assert_eq!(parts[0].get("thoughtSignature"), None);
    assert_eq!(parts[1]["thoughtSignature"], "real");
    assert_ne!(parts[1]["thoughtSignature"], SKIP_THOUGHT_SIGNATURE);
}

#[test]
fn sends_the_latest_call_name_when_clients_reuse_tool_call_ids() {
    let out = convert_request(
        &json!({"messages":[
            {"role":"assistant","tool_calls":[{"id":"call_0","type":"function","function":{"name":"first","arguments":"{}"}}]},
            {"role":"tool","tool_call_id":"call_0","content":"1"},
            {"role":"assistant","tool_calls":[{"id":"call_0","type":"function","function":{"name":"second","arguments":"{}"}}]},
            {"role":"tool","tool_call_id":"call_0","content":"2"}]})
        .to_string(),
    )
    .unwrap();
    assert_eq!(
        out["contents"][1]["parts"][0]["functionResponse"]["name"],
        "first"
    );
    assert_eq!(
        out["contents"][3]["parts"][0]["functionResponse"]["name"],
        "second"
    );
}

#[test]
fn rejects_what_gemini_cannot_honour_with_a_400_naming_the_field() {
    let user = json!([{"role":"user","content":"x"}]);
    let cases: Vec<(Value, &str, Option<&str>)> = vec![
        (
            json!({"messages": user, "logprobs": true}),
            "unsupported_parameter",
            Some("logprobs"),
        ),
        (
            json!({"messages": user, "logit_bias": {"50256": -100}}),
            "unsupported_parameter",
            Some("logit_bias"),
        ),
        (
            json!({"messages": user, "modalities": ["text", "audio"]}),
            "unsupported_parameter",
            Some("modalities"),
        ),
        (
            json!({"messages": user, "audio": {"voice": "alloy", "format": "wav"}}),
            "unsupported_parameter",
            Some("modalities"),
        ),
        (
            json!({"messages": user, "web_search_options": {}}),
            "unsupported_parameter",
            Some("web_search_options"),
        ),
        (
            json!({"messages": user, "functions": [{"name": "f"}]}),
            "unsupported_parameter",
            Some("functions"),
        ),
        (
            json!({"messages": user, "tools": [{"type": "custom", "custom": {"name": "c"}}]}),
            "unsupported_parameter",
            Some("tools"),
        ),
        (
            json!({"messages": [{"role": "function", "name": "f", "content": "1"}]}),
            "unsupported_parameter",
            Some("messages"),
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "video_url", "video_url": {"url": "x"}}]}]}),
            "unsupported_parameter",
            Some("messages"),
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-abc"}}]}]}),
            "unsupported_parameter",
            Some("messages"),
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "x", "format": "opus"}}]}]}),
            "unsupported_parameter",
            Some("messages"),
        ),
        (
            json!({"messages": [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}]}]}),
            "unsupported_parameter",
            Some("messages"),
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://example.com/image"}}]}]}),
            "invalid_value",
            Some("messages"),
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://example.com/a.png"}}]}]}),
            "invalid_value",
            Some("messages"),
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png,rawbytes"}}]}]}),
            "invalid_value",
            Some("messages"),
        ),
        (
            json!({"messages": [{"role": "assistant", "tool_calls": [{"id": "1", "type": "function", "function": {"name": "f", "arguments": "{not json"}}]}]}),
            "invalid_value",
            Some("messages"),
        ),
        (
            json!({"messages": [{"role": "assistant", "tool_calls": [{"id": "1", "type": "function", "function": {"name": "f", "arguments": "[1,2]"}}]}]}),
            "invalid_value",
            Some("messages"),
        ),
        (
            json!({"messages": [{"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "nope", "content": "1"}]}),
            "invalid_value",
            Some("messages"),
        ),
        (
            json!({"messages": [{"role": "tool", "content": "1"}]}),
            "missing_required_parameter",
            Some("messages"),
        ),
        (
            json!({"messages": [{"role": "wizard", "content": "x"}]}),
            "invalid_value",
            Some("messages"),
        ),
        (
            json!({"messages": [{"role": "system", "content": "only a system prompt"}]}),
            "invalid_value",
            Some("messages"),
        ),
        (json!({"messages": []}), "invalid_value", Some("messages")),
        (
            json!({"model": "m"}),
            "missing_required_parameter",
            Some("messages"),
        ),
        (
            json!({"messages": user, "tool_choice": "required"}),
            "invalid_value",
            Some("tool_choice"),
        ),
        (
            json!({"messages": user, "tool_choice": "sometimes", "tools": [{"type": "function", "function": {"name": "f"}}]}),
            "invalid_value",
            Some("tool_choice"),
        ),
        (
            json!({"messages": user, "tool_choice": {"type": "function", "function": {"name": "g"}}, "tools": [{"type": "function", "function": {"name": "f"}}]}),
            "invalid_value",
            Some("tool_choice"),
        ),
        (
            json!({"messages": user, "reasoning_effort": "extreme"}),
            "invalid_value",
            Some("reasoning_effort"),
        ),
        (
            json!({"messages": user, "response_format": {"type": "yaml"}}),
            "invalid_value",
            Some("response_format"),
        ),
        (
            json!({"messages": user, "temperature": "hot"}),
            "invalid_value",
            None,
        ),
        (
            json!({"messages": [{"content": "no role"}]}),
            "invalid_value",
            None,
        ),
    ];
    for (body, code, param) in cases {
        let e = rejection(body.clone());
        assert_eq!((e.status, e.kind), (400, "invalid_request_error"), "{body}");
        assert_eq!(e.code, code, "{body}: {}", e.message);
        assert_eq!(e.param, param, "{body}: {}", e.message);
    }
}

#[test]
fn leaves_out_empty_stop_strings_and_empty_parameter_schemas() {
    let out = convert_request(
        &json!({"messages":[{"role":"user","content":"x"}],"stop":["", "END"],
            "tools":[{"type":"function","function":{"name":"f","parameters":{}}}]})
        .to_string(),
    )
    .unwrap();
    assert_eq!(out["generationConfig"], json!({"stopSequences":["END"]}));
    assert_eq!(
        out["tools"],
        json!([{"functionDeclarations":[{"name":"f"}]}])
    );
    let out =
        convert_request(&json!({"messages":[{"role":"user","content":"x"}],"stop":""}).to_string())
            .unwrap();
    assert_eq!(out.get("generationConfig"), None);
}

#[test]
fn rejects_content_parts_without_their_data() {
    for content in [
        json!([{"type":"text"}]),
        json!([{"type":"image_url"}]),
        json!([{"type":"input_audio"}]),
        json!([{"type":"file","file":{}}]),
    ] {
        let e = rejection(json!({"messages":[{"role":"user","content":content}]}));
        assert_eq!(
            (e.status, e.code),
            (400, "missing_required_parameter"),
            "{content}"
        );
    }
    let e = rejection(json!({"messages":[{"role":"system","content":[{"type":"text"}]}]}));
    assert_eq!(e.code, "missing_required_parameter");
}

#[test]
fn reads_urls_with_multibyte_characters_anywhere() {
    for url in [
        "dataé:x",
        "httpé://x.png",
        "https://é.example/ü.png",
        "é",
        "data:é;base64,AA",
        "https://x/é",
    ] {
        let body = json!({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":url}}]}]});
        let _ = openai_gemini::request(body.to_string().as_bytes(), &REQ_CTX);
    }
    let out = convert_request(
        &json!({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://é.example/ü.PNG"}}]}]}).to_string(),
    )
    .unwrap();
    assert_eq!(
        out["contents"][0]["parts"][0]["fileData"]["mimeType"],
        "image/png"
    );
}

#[test]
fn never_panics_on_truncated_inputs() {
    let requests = [
        fixture!("req_tools_multi_turn.openai.json"),
        fixture!("req_images.openai.json"),
        fixture!("req_generation_config.openai.json"),
        fixture!("req_parallel_tool_calls.openai.json"),
    ];
    for body in requests {
        // Every proper prefix of the JSON text (the file ends in a newline).
        for i in 0..body.trim_end().len() {
            assert!(openai_gemini::request(&body.as_bytes()[..i], &REQ_CTX).is_err());
        }
    }
    let responses = [
        fixture!("resp_tool_calls.gemini.json"),
        fixture!("resp_multiple_candidates.gemini.json"),
        fixture!("error_api_key_invalid.gemini.json"),
    ];
    for body in responses {
        for i in 0..body.len() {
            let _ = openai_gemini::response(&body.as_bytes()[..i], &RESP_CTX);
            let _ = openai_gemini::error(400, &body.as_bytes()[..i]);
        }
    }
    // Every stream cut at every byte ends in an error or a clean close, never a panic.
    let stream = fixture!("stream_tool_calls.gemini.sse").as_bytes();
    for i in 0..stream.len() {
        let (out, _) = run_stream(&[&stream[..i]]);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.ends_with("data: [DONE]\n\n") || text.contains("stream_interrupted"),
            "cut at {i}: {text}"
        );
    }
}

#[test]
fn rejects_bodies_that_are_not_json() {
    for body in [&b"not json"[..], b"", b"{\"messages\":", b"[]"] {
        let e = openai_gemini::request(body, &REQ_CTX).unwrap_err();
        assert_eq!(e.status, 400, "{}", String::from_utf8_lossy(body));
    }
    let e = openai_gemini::request(b"{\"messages\":", &REQ_CTX).unwrap_err();
    assert_eq!(e.code, "invalid_json");
}

// ---------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------

#[test]
fn converts_a_text_response_with_usage() {
    assert_response(
        fixture!("resp_text.gemini.json"),
        fixture!("resp_text.openai.json"),
    );
}

#[test]
fn maps_function_calls_to_tool_calls_with_signatures_and_reasoning_usage() {
    assert_response(
        fixture!("resp_tool_calls.gemini.json"),
        fixture!("resp_tool_calls.openai.json"),
    );
}

#[test]
fn falls_back_to_the_context_id_and_model_and_omits_unknown_usage() {
    assert_response(
        fixture!("resp_without_ids_or_usage.gemini.json"),
        fixture!("resp_without_ids_or_usage.openai.json"),
    );
}

#[test]
fn maps_each_candidate_to_a_choice() {
    assert_response(
        fixture!("resp_multiple_candidates.gemini.json"),
        fixture!("resp_multiple_candidates.openai.json"),
    );
}

#[test]
fn maps_every_finish_reason() {
    let cases = [
        ("STOP", false, "stop"),
        ("STOP", true, "tool_calls"),
        ("MAX_TOKENS", false, "length"),
        ("MAX_TOKENS", true, "length"),
        ("SAFETY", false, "content_filter"),
        ("RECITATION", false, "content_filter"),
        ("BLOCKLIST", false, "content_filter"),
        ("PROHIBITED_CONTENT", false, "content_filter"),
        ("SPII", false, "content_filter"),
        ("IMAGE_SAFETY", false, "content_filter"),
        ("LANGUAGE", false, "stop"),
        ("OTHER", false, "stop"),
        ("MALFORMED_FUNCTION_CALL", false, "stop"),
        ("UNEXPECTED_TOOL_CALL", false, "stop"),
        ("FINISH_REASON_UNSPECIFIED", false, "stop"),
        ("OTHER", true, "tool_calls"),
        ("SOMETHING_NEW", false, "stop"),
    ];
    for (reason, call, expected) in cases {
        let mut parts = vec![json!({"text": "t"})];
        if call {
            parts.push(json!({"functionCall": {"name": "f", "args": {}}}));
        }
        let body = json!({"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": reason}]});
        let out = parse(&openai_gemini::response(body.to_string().as_bytes(), &RESP_CTX).unwrap());
        assert_eq!(
            out["choices"][0]["finish_reason"], expected,
            "{reason} calls={call}"
        );

        let sse = format!("data: {body}\r\n\r\n");
        let (out, _) = run_stream(&[sse.as_bytes()]);
        let finish: Vec<Value> = events(&out)
            .iter()
            .filter(|e| e.starts_with('{'))
            .map(|e| parse(e.as_bytes())["choices"][0]["finish_reason"].clone())
            .filter(|f| !f.is_null())
            .collect();
        assert_eq!(
            finish,
            vec![json!(expected)],
            "stream: {reason} calls={call}"
        );
    }
}

#[test]
fn answers_a_blocked_prompt_with_a_content_filter_400() {
    let body = br#"{"promptFeedback":{"blockReason":"SAFETY","safetyRatings":[]},"usageMetadata":{"promptTokenCount":4,"totalTokenCount":4},"modelVersion":"gemini-2.5-flash"}"#;
    let e = openai_gemini::response(body, &RESP_CTX).unwrap_err();
    assert_eq!(
        (e.status, e.kind, e.code),
        (400, "invalid_request_error", "content_filter")
    );
    assert!(e.message.contains("SAFETY"), "{}", e.message);
}

#[test]
fn answers_unusable_provider_responses_with_a_502() {
    for body in [
        &b"{\"candidates\":[]}"[..],
        b"not json",
        b"{\"candidates\":\"x\"}",
    ] {
        let e = openai_gemini::response(body, &RESP_CTX).unwrap_err();
        assert_eq!(
            (e.status, e.kind),
            (502, "server_error"),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}

// ---------------------------------------------------------------------------
// Streams
// ---------------------------------------------------------------------------

#[test]
fn streams_text_then_finish_then_usage_then_done() {
    let s = assert_stream(
        fixture!("stream_text.gemini.sse"),
        fixture!("stream_text.openai.sse"),
    );
    assert_eq!(
        s.usage(),
        Some(&Usage {
            input_tokens: Some(7),
            output_tokens: Some(23),
            total_tokens: Some(30),
            cached_input_tokens: None,
            reasoning_tokens: Some(20),
            source: UsageSource::Reported,
        })
    );
}

#[test]
fn streams_each_function_call_as_one_tool_call_delta() {
    let s = assert_stream(
        fixture!("stream_tool_calls.gemini.sse"),
        fixture!("stream_tool_calls.openai.sse"),
    );
    let u = s.usage().unwrap();
    assert_eq!(
        (u.input_tokens, u.output_tokens, u.cached_input_tokens),
        (Some(300), Some(22), Some(256))
    );
}

#[test]
fn ends_a_cut_stream_with_an_error_and_no_done() {
    let s = assert_stream(
        fixture!("stream_cut.gemini.sse"),
        fixture!("stream_cut.openai.sse"),
    );
    assert_eq!(s.usage().unwrap().total_tokens, Some(6));
    assert_stream(
        fixture!("stream_cut_mid_event.gemini.sse"),
        fixture!("stream_cut_mid_event.openai.sse"),
    );
    // Nothing at all.
    let (out, s) = run_stream(&[]);
    assert_eq!(events(&out).len(), 1);
    assert!(String::from_utf8(out)
        .unwrap()
        .contains("stream_interrupted"));
    assert_eq!(s.usage(), None);
}

#[test]
fn streams_a_blocked_prompt_as_a_content_filter_error() {
    let s = assert_stream(
        fixture!("stream_blocked_prompt.gemini.sse"),
        fixture!("stream_blocked_prompt.openai.sse"),
    );
    assert_eq!(s.usage().unwrap().input_tokens, Some(9));
}

#[test]
fn streams_a_provider_error_as_an_openai_error_event() {
    assert_stream(
        fixture!("stream_provider_error.gemini.sse"),
        fixture!("stream_provider_error.openai.sse"),
    );
}

#[test]
fn closes_a_stream_without_usage_without_a_usage_chunk() {
    let s = assert_stream(
        fixture!("stream_max_tokens_without_usage.gemini.sse"),
        fixture!("stream_max_tokens_without_usage.openai.sse"),
    );
    assert_eq!(s.usage(), None);
}

#[test]
fn streams_several_candidates_as_several_choices() {
    assert_stream(
        fixture!("stream_multiple_candidates.gemini.sse"),
        fixture!("stream_multiple_candidates.openai.sse"),
    );
}

#[test]
fn keeps_the_latest_usage_even_when_it_comes_after_the_finish() {
    let s = assert_stream(
        fixture!("stream_usage_after_finish.gemini.sse"),
        fixture!("stream_usage_after_finish.openai.sse"),
    );
    let u = s.usage().unwrap();
    assert_eq!(
        (u.output_tokens, u.total_tokens, u.reasoning_tokens),
        (Some(7), Some(17), Some(5))
    );
}

#[test]
fn emits_each_event_as_soon_as_it_is_complete() {
    let input = fixture!("stream_text.gemini.sse").as_bytes();
    let first_end = input.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let mut s = Stream::new(&RESP_CTX);
    assert!(
        s.push(&input[..first_end - 1]).is_empty(),
        "held until the event is complete"
    );
    let out = s.push(&input[first_end - 1..first_end]);
    let got = events(&out);
    assert_eq!(
        got.len(),
        2,
        "role chunk and first text, without waiting: {got:?}"
    );
    assert!(got[1].contains("\"Hel\""));
}

#[test]
fn accepts_a_last_event_without_its_blank_line() {
    let input = fixture!("stream_text.gemini.sse");
    let trimmed = input.trim_end();
    let (out, _) = run_stream(&[trimmed.as_bytes()]);
    let (whole, _) = run_stream(&[input.as_bytes()]);
    assert_eq!(out, whole);
}

#[test]
fn writes_nothing_after_the_stream_is_closed() {
    let mut s = Stream::new(&RESP_CTX);
    let out = s.push(fixture!("stream_provider_error.gemini.sse").as_bytes());
    assert!(!out.is_empty());
    assert!(s
        .push(fixture!("stream_text.gemini.sse").as_bytes())
        .is_empty());
    assert!(s.finish().is_empty());
    assert!(s.finish().is_empty());
}

#[test]
fn reports_an_unreadable_stream_event_as_an_error() {
    let (out, _) =
        run_stream(&[b"data: {\"candidates\": [\r\n\r\ndata: {\"candidates\":[]}\r\n\r\n"]);
    let got = events(&out);
    assert_eq!(got.len(), 1, "{got:?}");
    let e = parse(got[0].as_bytes());
    assert_eq!(e["error"]["code"], "invalid_provider_response");
    assert_eq!(e["error"]["type"], "server_error");
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

#[test]
fn reads_gemini_errors_of_every_status_class() {
    let cases = [
        (
            400,
            fixture!("error_invalid_argument.gemini.json"),
            fixture!("error_invalid_argument.expected.json"),
        ),
        (
            400,
            fixture!("error_api_key_invalid.gemini.json"),
            fixture!("error_api_key_invalid.expected.json"),
        ),
        (
            401,
            fixture!("error_unauthenticated.gemini.json"),
            fixture!("error_unauthenticated.expected.json"),
        ),
        (
            403,
            fixture!("error_permission_denied.gemini.json"),
            fixture!("error_permission_denied.expected.json"),
        ),
        (
            404,
            fixture!("error_not_found.gemini.json"),
            fixture!("error_not_found.expected.json"),
        ),
        (
            429,
            fixture!("error_resource_exhausted.gemini.json"),
            fixture!("error_resource_exhausted.expected.json"),
        ),
        (
            500,
            fixture!("error_internal.gemini.json"),
            fixture!("error_internal.expected.json"),
        ),
        (
            503,
            fixture!("error_unavailable.gemini.json"),
            fixture!("error_unavailable.expected.json"),
        ),
        (
            502,
            fixture!("error_html_page.gemini.txt"),
            fixture!("error_html_page.expected.json"),
        ),
        (
            504,
            fixture!("error_plain_text.gemini.txt"),
            fixture!("error_plain_text.expected.json"),
        ),
    ];
    for (status, body, expected) in cases {
        assert_eq!(
            error_json(status, body),
            parse(expected.as_bytes()),
            "{body}"
        );
    }
}

#[test]
fn tolerates_empty_and_odd_error_bodies() {
    for body in [
        "",
        "{}",
        "[]",
        "null",
        "{\"error\":null}",
        "{\"error\":\"flat string\"}",
        "[{\"x\":1}]",
    ] {
        let e = openai_gemini::error(500, body.as_bytes());
        assert_eq!(
            (e.status, e.kind, e.message, e.code),
            (500, None, None, None),
            "{body}"
        );
    }
}
