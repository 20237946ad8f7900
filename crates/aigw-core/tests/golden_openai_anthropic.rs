//! Golden tests for the OpenAI chat → Anthropic Messages converter.
//!
//! Fixtures live in `fixtures/openai_anthropic/`: requests as
//! `req_<case>.openai.json` → `req_<case>.anthropic.json`, responses as
//! `resp_<case>.anthropic.json` → `resp_<case>.openai.json`, streams as
//! `stream_<case>.anthropic.sse` → `stream_<case>.openai.sse`. JSON is compared
//! semantically; SSE event by event: the framing (`data: ...` + blank line)
//! exactly, each event's JSON semantically. Fixtures are compiled in with
//! `include_str!` so the tests also run under a WASI runner without a
//! filesystem.

// Test helpers (outside `#[test]` functions) may panic on a broken fixture.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aigw_core::convert::openai_anthropic::{self, Stream, JSON_OBJECT_TOOL};
use aigw_core::convert::{RequestContext, ResponseContext, StreamConverter, DEFAULT_MAX_TOKENS};
use aigw_core::usage::{Usage, UsageSource};
use serde_json::{json, Value};

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("fixtures/openai_anthropic/", $name))
    };
}

const REQ_CTX: RequestContext<'static> = RequestContext {
    model: "claude-sonnet-4-5",
    default_max_tokens: DEFAULT_MAX_TOKENS,
};

const RESP_CTX: ResponseContext<'static> = ResponseContext {
    model: "claude-fallback-name",
    created: 1_700_000_000,
    id: "gw-1",
};

fn parse(text: &[u8]) -> Value {
    serde_json::from_slice(text)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(text)))
}

fn convert_request(body: &str) -> Value {
    let out = openai_anthropic::request(body.as_bytes(), &REQ_CTX)
        .unwrap_or_else(|e| panic!("request rejected: {e:?}"));
    parse(&out)
}

fn assert_request(input: &str, expected: &str) {
    assert_eq!(convert_request(input), parse(expected.as_bytes()));
}

fn assert_response(input: &str, expected: &str) {
    let out = openai_anthropic::response(input.as_bytes(), &RESP_CTX)
        .unwrap_or_else(|e| panic!("response rejected: {e:?}"));
    assert_eq!(parse(&out), parse(expected.as_bytes()));
}

fn request_error(body: Value) -> aigw_core::error::ApiError {
    let text = serde_json::to_vec(&body).unwrap();
    match openai_anthropic::request(&text, &REQ_CTX) {
        Ok(out) => panic!(
            "expected a 400 for {body}, got {}",
            String::from_utf8_lossy(&out)
        ),
        Err(e) => e,
    }
}

/// Feeds `chunks` to a fresh stream converter, then finishes it.
fn run_stream(chunks: &[&[u8]]) -> (Vec<u8>, Option<Usage>) {
    let mut s = Stream::new(&RESP_CTX);
    let mut out = Vec::new();
    for c in chunks {
        out.extend(s.push(c));
    }
    out.extend(s.finish());
    (out, s.usage().cloned())
}

/// SSE text as events: each must be `data: <payload>` followed by a blank line.
fn events(sse: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(sse).unwrap();
    assert!(
        text.is_empty() || text.ends_with("\n\n"),
        "stream does not end with a blank line: {text:?}"
    );
    text.split_terminator("\n\n")
        .map(|ev| {
            let payload = ev
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("not a data event: {ev:?}"));
            assert!(!payload.contains('\n'), "multi-line event: {ev:?}");
            if payload == "[DONE]" {
                Value::String("[DONE]".into())
            } else {
                parse(payload.as_bytes())
            }
        })
        .collect()
}

/// Converts the transcript whole, split in two at every byte, and one byte at
/// a time: all outputs must be byte-identical and match `expected`.
fn assert_stream(input: &str, expected: &str) -> Option<Usage> {
    let bytes = input.as_bytes();
    let (whole, usage) = run_stream(&[bytes]);
    assert_eq!(events(&whole), events(expected.as_bytes()));
    for i in 0..=bytes.len() {
        let (split, split_usage) = run_stream(&[&bytes[..i], &bytes[i..]]);
        assert_eq!(split, whole, "split at byte {i}");
        assert_eq!(split_usage, usage, "usage, split at byte {i}");
    }
    let singles: Vec<&[u8]> = bytes.chunks(1).collect();
    let (one_by_one, one_usage) = run_stream(&singles);
    assert_eq!(one_by_one, whole, "one byte at a time");
    assert_eq!(one_usage, usage);
    usage
}

fn reported(input: u64, output: u64, cached: Option<u64>) -> Option<Usage> {
    Some(Usage {
        input_tokens: Some(input),
        output_tokens: Some(output),
        total_tokens: Some(input + output),
        cached_input_tokens: cached,
        reasoning_tokens: None,
        source: UsageSource::Reported,
    })
}

// --- Requests --------------------------------------------------------------

#[test]
fn maps_a_plain_text_request_with_the_target_model_and_default_max_tokens() {
    assert_request(
        fixture!("req_plain_text.openai.json"),
        fixture!("req_plain_text.anthropic.json"),
    );
}

#[test]
fn hoists_system_and_developer_messages_into_system_blocks_in_order() {
    assert_request(
        fixture!("req_system_prompts.openai.json"),
        fixture!("req_system_prompts.anthropic.json"),
    );
}

#[test]
fn merges_consecutive_turns_of_one_role_and_drops_empty_text() {
    assert_request(
        fixture!("req_multi_turn.openai.json"),
        fixture!("req_multi_turn.anthropic.json"),
    );
}

#[test]
fn maps_tools_tool_choice_tool_calls_and_tool_results_in_multi_turn_tool_use() {
    assert_request(
        fixture!("req_tools_multi_turn.openai.json"),
        fixture!("req_tools_multi_turn.anthropic.json"),
    );
}

#[test]
fn merges_parallel_tool_results_into_one_user_turn() {
    assert_request(
        fixture!("req_parallel_tool_calls.openai.json"),
        fixture!("req_parallel_tool_calls.anthropic.json"),
    );
}

#[test]
fn maps_data_url_and_http_url_images_to_image_blocks() {
    assert_request(
        fixture!("req_images.openai.json"),
        fixture!("req_images.anthropic.json"),
    );
}

#[test]
fn maps_sampling_parameters_stop_user_and_stream_and_drops_neutral_fields() {
    assert_request(
        fixture!("req_sampling.openai.json"),
        fixture!("req_sampling.anthropic.json"),
    );
    assert_request(
        fixture!("req_stop_array.openai.json"),
        fixture!("req_stop_array.anthropic.json"),
    );
}

#[test]
fn maps_json_schema_response_format_to_structured_output() {
    assert_request(
        fixture!("req_json_schema.openai.json"),
        fixture!("req_json_schema.anthropic.json"),
    );
}

#[test]
fn honours_json_object_response_format_with_the_gateway_tool() {
    assert_request(
        fixture!("req_json_object.openai.json"),
        fixture!("req_json_object.anthropic.json"),
    );
    assert_request(
        fixture!("req_json_object_with_tools.openai.json"),
        fixture!("req_json_object_with_tools.anthropic.json"),
    );
}

#[test]
fn maps_reasoning_effort_to_adaptive_thinking_and_sends_thinking_blocks_back() {
    assert_request(
        fixture!("req_reasoning.openai.json"),
        fixture!("req_reasoning.anthropic.json"),
    );
}

#[test]
fn ignores_unknown_fields_and_null_options() {
    assert_request(
        fixture!("req_unknown_fields.openai.json"),
        fixture!("req_unknown_fields.anthropic.json"),
    );
}

#[test]
fn copies_cache_control_from_parts_messages_and_tools() {
    assert_request(
        fixture!("req_prompt_caching.openai.json"),
        fixture!("req_prompt_caching.anthropic.json"),
    );
}

#[test]
fn keeps_tool_schemas_and_arguments_byte_for_byte() {
    let body = r#"{"model":"m","messages":[
        {"role":"user","content":"x"},
        {"role":"assistant","tool_calls":[{"id":"t1","type":"function","function":{"name":"f","arguments":"{\"z\":1,\"a\":{\"y\":2,\"b\":3}}"}}]},
        {"role":"tool","tool_call_id":"t1","content":"ok"}],
        "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"z":{"type":"integer"},"a":{"type":"object"}}}}}]}"#;
    let out = openai_anthropic::request(body.as_bytes(), &REQ_CTX).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains(r#""input":{"z":1,"a":{"y":2,"b":3}}"#),
        "{text}"
    );
    assert!(
        text.contains(r#""input_schema":{"type":"object","properties":{"z":{"type":"integer"},"a":{"type":"object"}}}"#),
        "{text}"
    );
}

#[test]
fn maps_each_tool_choice() {
    let tools = json!([{"type": "function", "function": {"name": "f"}}]);
    for (choice, parallel, expected) in [
        (json!("auto"), None, json!({"type": "auto"})),
        (json!("none"), None, json!({"type": "none"})),
        (json!("required"), None, json!({"type": "any"})),
        (
            json!({"type": "function", "function": {"name": "f"}}),
            None,
            json!({"type": "tool", "name": "f"}),
        ),
        (
            json!("auto"),
            Some(false),
            json!({"type": "auto", "disable_parallel_tool_use": true}),
        ),
        (
            json!("required"),
            Some(false),
            json!({"type": "any", "disable_parallel_tool_use": true}),
        ),
        (json!("none"), Some(false), json!({"type": "none"})),
        (
            json!(null),
            Some(false),
            json!({"type": "auto", "disable_parallel_tool_use": true}),
        ),
        (json!("auto"), Some(true), json!({"type": "auto"})),
    ] {
        let mut body = json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": tools, "tool_choice": choice});
        if let Some(p) = parallel {
            body["parallel_tool_calls"] = json!(p);
        }
        let out = convert_request(&body.to_string());
        assert_eq!(out["tool_choice"], expected, "{body}");
    }
    // Without a tool_choice and without parallel_tool_calls: none is sent.
    let out = convert_request(
        &json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": tools})
            .to_string(),
    );
    assert!(out.get("tool_choice").is_none());
}

#[test]
fn maps_each_reasoning_effort() {
    for (effort, expected) in [
        ("minimal", Some("low")),
        ("low", Some("low")),
        ("medium", Some("medium")),
        ("high", Some("high")),
        ("xhigh", Some("xhigh")),
        ("none", None),
    ] {
        let out = convert_request(
            &json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "reasoning_effort": effort})
                .to_string(),
        );
        match expected {
            Some(e) => {
                assert_eq!(out["thinking"], json!({"type": "adaptive"}), "{effort}");
                assert_eq!(out["output_config"], json!({"effort": e}), "{effort}");
            }
            None => {
                assert!(out.get("thinking").is_none(), "{effort}");
                assert!(out.get("output_config").is_none(), "{effort}");
            }
        }
    }
}

#[test]
fn max_completion_tokens_wins_over_max_tokens_and_the_default() {
    let base = json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
    let with = |extra: Value| {
        let mut b = base.clone();
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        convert_request(&b.to_string())["max_tokens"].clone()
    };
    assert_eq!(with(json!({})), json!(DEFAULT_MAX_TOKENS));
    assert_eq!(with(json!({"max_tokens": 10})), json!(10));
    assert_eq!(
        with(json!({"max_completion_tokens": 20, "max_tokens": 10})),
        json!(20)
    );
    let ctx = RequestContext {
        model: "m",
        default_max_tokens: 77,
    };
    let out = openai_anthropic::request(base.to_string().as_bytes(), &ctx).unwrap();
    assert_eq!(parse(&out)["max_tokens"], json!(77));
}

#[test]
fn rejects_unsupported_input_with_400_naming_the_field() {
    let user = json!([{"role": "user", "content": "x"}]);
    let with = |extra: Value| {
        let mut b = json!({"model": "m", "messages": user});
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        b
    };
    let part = |p: Value| json!({"model": "m", "messages": [{"role": "user", "content": [p]}]});
    let cases: Vec<(Value, &str)> = vec![
        (with(json!({"n": 2})), "n"),
        (with(json!({"n": 0})), "n"),
        (with(json!({"logprobs": true})), "logprobs"),
        (with(json!({"top_logprobs": 3})), "top_logprobs"),
        (with(json!({"temperature": 1.5})), "temperature"),
        (with(json!({"temperature": -0.1})), "temperature"),
        (with(json!({"presence_penalty": 0.5})), "presence_penalty"),
        (with(json!({"frequency_penalty": -1})), "frequency_penalty"),
        (with(json!({"logit_bias": {"50256": -100}})), "logit_bias"),
        (with(json!({"modalities": ["text", "audio"]})), "modalities"),
        (
            with(json!({"audio": {"voice": "alloy", "format": "wav"}})),
            "audio",
        ),
        (
            with(json!({"web_search_options": {}})),
            "web_search_options",
        ),
        (with(json!({"functions": [{"name": "f"}]})), "functions"),
        (
            with(json!({"reasoning_effort": "extreme"})),
            "reasoning_effort",
        ),
        (
            with(json!({"response_format": {"type": "grammar"}})),
            "response_format",
        ),
        (
            with(json!({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}})),
            "response_format",
        ),
        (
            with(json!({"tools": [{"type": "custom", "custom": {"name": "c"}}]})),
            "tools",
        ),
        (with(json!({"tools": [{"type": "function"}]})), "tools"),
        (with(json!({"tool_choice": "required"})), "tool_choice"),
        (
            with(json!({"tool_choice": {"type": "function", "function": {"name": "f"}}})),
            "tool_choice",
        ),
        (
            with(
                json!({"tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "sometimes"}),
            ),
            "tool_choice",
        ),
        (
            with(
                json!({"tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": {"type": "allowed_tools", "allowed_tools": {}}}),
            ),
            "tool_choice",
        ),
        (
            with(
                json!({"tools": [{"type": "function", "function": {"name": JSON_OBJECT_TOOL}}], "response_format": {"type": "json_object"}}),
            ),
            "tools",
        ),
        (
            part(json!({"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}})),
            "messages",
        ),
        (
            part(json!({"type": "file", "file": {"file_id": "file-1"}})),
            "messages",
        ),
        (part(json!({"type": "video", "video": {}})), "messages"),
        (
            part(json!({"type": "image_url", "image_url": {"url": "data:image/png,rawbytes"}})),
            "messages",
        ),
        (
            part(json!({"type": "image_url", "image_url": {"url": "data:image/tiff;base64,AAAA"}})),
            "messages",
        ),
        (
            part(
                json!({"type": "image_url", "image_url": {"url": "data:application/pdf;base64,AAAA"}}),
            ),
            "messages",
        ),
        (
            part(json!({"type": "image_url", "image_url": {"url": "ftp://host/x.png"}})),
            "messages",
        ),
        (
            part(json!({"type": "image_url", "image_url": {"url": "data:image/png;base64"}})),
            "messages",
        ),
        (
            json!({"model": "m", "messages": [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]}),
            "messages",
        ),
        (
            json!({"model": "m", "messages": [{"role": "function", "name": "f", "content": "1"}]}),
            "messages",
        ),
        (
            json!({"model": "m", "messages": [{"role": "robot", "content": "1"}]}),
            "messages",
        ),
        (
            json!({"model": "m", "messages": [{"role": "tool", "content": "1"}]}),
            "messages",
        ),
        (
            json!({"model": "m", "messages": [{"role": "assistant", "tool_calls": [{"id": "t", "type": "function", "function": {"name": "f", "arguments": "{not json"}}]}]}),
            "messages",
        ),
        (
            json!({"model": "m", "messages": [{"role": "assistant", "tool_calls": [{"id": "t", "type": "function", "function": {"name": "f", "arguments": "[1,2]"}}]}]}),
            "messages",
        ),
        (
            json!({"model": "m", "messages": [{"role": "assistant", "tool_calls": [{"id": "t", "type": "custom", "custom": {"name": "f", "input": "x"}}]}]}),
            "messages",
        ),
        (
            json!({"model": "m", "messages": [{"role": "assistant", "content": "x", "thinking_blocks": [{"type": "thinking", "thinking": "no signature"}]}]}),
            "messages",
        ),
        (
            json!({"model": "m", "messages": [{"role": "assistant", "content": "x", "thinking_blocks": [{"type": "text", "text": "t"}]}]}),
            "messages",
        ),
        (json!({"model": "m"}), "messages"),
    ];
    for (body, param) in cases {
        let err = request_error(body.clone());
        assert_eq!(err.status, 400, "{body}");
        assert_eq!(err.kind, "invalid_request_error", "{body}");
        assert_eq!(err.param, Some(param), "{body}: {}", err.message);
        assert!(!err.message.is_empty());
    }
}

#[test]
fn rejects_malformed_bodies_with_400() {
    for body in [
        &b"not json"[..],
        b"",
        b"[1]",
        br#"{"model":"m","messages":"hi"}"#,
        br#"{"model":"m","messages":[{"content":"no role"}]}"#,
        br#"{"model":"m","messages":[{"role":"user","content":42}]}"#,
        br#"{"model":"m","messages":[],"temperature":"hot"}"#,
        br#"{"model":"m","messages":[],"stop":7}"#,
    ] {
        let err = openai_anthropic::request(body, &REQ_CTX).unwrap_err();
        assert_eq!(err.status, 400, "{}", String::from_utf8_lossy(body));
    }
}

#[test]
fn accepts_neutral_values_of_rejected_fields() {
    let out = convert_request(
        &json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "n": 1, "logprobs": false, "top_logprobs": 0, "presence_penalty": 0, "frequency_penalty": 0,
            "logit_bias": {}, "modalities": ["text"], "audio": null, "seed": 7, "temperature": 0,
            "response_format": {"type": "text"}, "functions": null})
        .to_string(),
    );
    assert_eq!(out["temperature"], json!(0.0));
    for absent in [
        "n",
        "seed",
        "logprobs",
        "output_config",
        "tools",
        "tool_choice",
    ] {
        assert!(out.get(absent).is_none(), "{absent} in {out}");
    }
}

// --- Responses -------------------------------------------------------------

#[test]
fn converts_a_text_response_with_cache_usage() {
    assert_response(
        fixture!("resp_text.anthropic.json"),
        fixture!("resp_text.openai.json"),
    );
}

#[test]
fn converts_tool_use_blocks_to_tool_calls_with_compact_arguments() {
    assert_response(
        fixture!("resp_tool_use.anthropic.json"),
        fixture!("resp_tool_use.openai.json"),
    );
}

#[test]
fn content_is_null_when_the_message_is_only_tool_calls() {
    assert_response(
        fixture!("resp_tool_use_only.anthropic.json"),
        fixture!("resp_tool_use_only.openai.json"),
    );
}

#[test]
fn exposes_thinking_as_reasoning_content_and_thinking_blocks() {
    assert_response(
        fixture!("resp_thinking.anthropic.json"),
        fixture!("resp_thinking.openai.json"),
    );
}

#[test]
fn turns_the_json_object_tool_call_back_into_message_text() {
    assert_response(
        fixture!("resp_json_object.anthropic.json"),
        fixture!("resp_json_object.openai.json"),
    );
}

#[test]
fn maps_every_stop_reason_to_a_finish_reason() {
    for (stop, content, expected) in [
        (
            json!("end_turn"),
            json!([{"type": "text", "text": "a"}]),
            "stop",
        ),
        (
            json!("stop_sequence"),
            json!([{"type": "text", "text": "a"}]),
            "stop",
        ),
        (
            json!("pause_turn"),
            json!([{"type": "text", "text": "a"}]),
            "stop",
        ),
        (
            json!("max_tokens"),
            json!([{"type": "text", "text": "a"}]),
            "length",
        ),
        (
            json!("model_context_window_exceeded"),
            json!([{"type": "text", "text": "a"}]),
            "length",
        ),
        (json!("refusal"), json!([]), "content_filter"),
        (
            json!("tool_use"),
            json!([{"type": "tool_use", "id": "t", "name": "f", "input": {}}]),
            "tool_calls",
        ),
        (
            json!("tool_use"),
            json!([{"type": "tool_use", "id": "t", "name": JSON_OBJECT_TOOL, "input": {}}]),
            "stop",
        ),
        (json!("some_future_reason"), json!([]), "stop"),
        (json!(null), json!([]), "stop"),
    ] {
        let body = json!({"id": "msg_x", "type": "message", "role": "assistant", "model": "c",
            "content": content, "stop_reason": stop, "usage": {"input_tokens": 1, "output_tokens": 1}});
        let out =
            parse(&openai_anthropic::response(body.to_string().as_bytes(), &RESP_CTX).unwrap());
        assert_eq!(
            out["choices"][0]["finish_reason"],
            json!(expected),
            "{stop}"
        );
    }
    // The stream uses the same mapping.
    assert_eq!(
        openai_anthropic::finish_reason(Some("tool_use"), true),
        "tool_calls"
    );
}

#[test]
fn fills_id_and_model_from_the_context_when_the_provider_omits_them() {
    let out = parse(
        &openai_anthropic::response(
            br#"{"content":[{"type":"text","text":"hi"},{"type":"server_tool_use","id":"s","name":"web_search","input":{}}],"stop_reason":"end_turn"}"#,
            &RESP_CTX,
        )
        .unwrap(),
    );
    assert_eq!(out["id"], json!("chatcmpl-gw-1"));
    assert_eq!(out["model"], json!("claude-fallback-name"));
    assert_eq!(out["choices"][0]["message"]["content"], json!("hi"));
    assert!(
        out.get("usage").is_none(),
        "no usage reported, none invented"
    );
}

#[test]
fn a_response_that_is_not_an_anthropic_message_is_a_502() {
    for body in [&b"<html>oops</html>"[..], b"", br#"{"content":"text"}"#] {
        let err = openai_anthropic::response(body, &RESP_CTX).unwrap_err();
        assert_eq!(err.status, 502, "{}", String::from_utf8_lossy(body));
    }
}

#[test]
fn reads_usage_from_a_response_body() {
    let usage = openai_anthropic::response_usage(fixture!("resp_text.anthropic.json").as_bytes());
    assert_eq!(usage, reported(2112, 9, Some(2000)));
    assert_eq!(openai_anthropic::response_usage(br#"{"content":[]}"#), None);
    assert_eq!(openai_anthropic::response_usage(b"nope"), None);
}

// --- Streams ---------------------------------------------------------------

#[test]
fn streams_text_deltas_then_finish_then_usage_then_done() {
    let usage = assert_stream(
        fixture!("stream_text.anthropic.sse"),
        fixture!("stream_text.openai.sse"),
    );
    assert_eq!(usage, reported(1025, 15, Some(1000)));
}

#[test]
fn streams_tool_calls_with_arguments_split_across_deltas() {
    let usage = assert_stream(
        fixture!("stream_tool_calls.anthropic.sse"),
        fixture!("stream_tool_calls.openai.sse"),
    );
    assert_eq!(usage, reported(400, 90, None));
}

#[test]
fn streams_thinking_as_reasoning_content() {
    assert_stream(
        fixture!("stream_thinking.anthropic.sse"),
        fixture!("stream_thinking.openai.sse"),
    );
}

#[test]
fn streams_the_json_object_tool_input_as_content() {
    assert_stream(
        fixture!("stream_json_object.anthropic.sse"),
        fixture!("stream_json_object.openai.sse"),
    );
}

#[test]
fn an_error_event_becomes_an_openai_error_event_without_done() {
    let usage = assert_stream(
        fixture!("stream_error.anthropic.sse"),
        fixture!("stream_error.openai.sse"),
    );
    assert_eq!(usage, reported(10, 1, None));
}

#[test]
fn a_cut_stream_ends_with_stream_interrupted_and_no_done() {
    assert_stream(
        fixture!("stream_cut.anthropic.sse"),
        fixture!("stream_cut.openai.sse"),
    );
}

#[test]
fn a_stream_without_usage_reports_none_and_sends_no_usage_chunk() {
    let usage = assert_stream(
        fixture!("stream_max_tokens_no_usage.anthropic.sse"),
        fixture!("stream_max_tokens_no_usage.openai.sse"),
    );
    assert_eq!(usage, None);
}

#[test]
fn usage_reported_twice_keeps_the_latest_counts() {
    let usage = assert_stream(
        fixture!("stream_usage_twice.anthropic.sse"),
        fixture!("stream_usage_twice.openai.sse"),
    );
    assert_eq!(usage, reported(127, 4, Some(100)));
}

#[test]
fn emits_each_event_as_soon_as_it_is_complete() {
    let input = fixture!("stream_text.anthropic.sse").as_bytes();
    let mut s = Stream::new(&RESP_CTX);
    // message_start is the first event: its chunk comes out when its blank line arrives.
    let first_end = input.windows(2).position(|w| w == b"\n\n").unwrap() + 2;
    assert!(s.push(&input[..first_end - 1]).is_empty());
    let out = s.push(&input[first_end - 1..first_end]);
    assert_eq!(events(&out).len(), 1);
    assert_eq!(
        events(&out)[0]["choices"][0]["delta"]["role"],
        json!("assistant")
    );
}

#[test]
fn an_empty_stream_is_an_interruption() {
    let (out, usage) = run_stream(&[]);
    let evs = events(&out);
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0]["error"]["code"], json!("stream_interrupted"));
    assert_eq!(usage, None);
}

#[test]
fn a_final_event_without_its_blank_line_still_ends_the_stream_cleanly() {
    let input = fixture!("stream_text.anthropic.sse");
    let trimmed = input.trim_end_matches('\n');
    let (out, _) = run_stream(&[trimmed.as_bytes()]);
    assert_eq!(
        events(&out),
        events(fixture!("stream_text.openai.sse").as_bytes())
    );
}

#[test]
fn finish_after_the_end_adds_nothing_and_later_bytes_are_ignored() {
    let mut s = Stream::new(&RESP_CTX);
    let mut out = s.push(fixture!("stream_text.anthropic.sse").as_bytes());
    out.extend(s.push(b"event: ping\ndata: {\"type\":\"ping\"}\n\n"));
    out.extend(s.push(b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"late\"}}\n\n"));
    assert_eq!(
        out,
        run_stream(&[fixture!("stream_text.anthropic.sse").as_bytes()]).0
    );
    assert!(s.finish().is_empty());
    assert!(s.finish().is_empty());
}

#[test]
fn ignores_malformed_and_unknown_events() {
    let input = concat!(
        "event: message_start\n",
        "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_z\",\"model\":\"c\",\"usage\":{\"input_tokens\":3}}}\n\n",
        ": a comment\n\n",
        "event: something_new\ndata: {\"type\":\"something_new\",\"x\":1}\n\n",
        "data: {not json}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":5,\"delta\":{\"type\":\"citations_delta\",\"citation\":{}}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"ok\"}}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"refusal\"},\"usage\":{\"output_tokens\":2}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    );
    let (out, usage) = run_stream(&[input.as_bytes()]);
    let evs = events(&out);
    let contents: Vec<&Value> = evs
        .iter()
        .filter_map(|e| e.get("choices")?.get(0)?.get("delta")?.get("content"))
        .collect();
    assert_eq!(contents, [&json!(""), &json!("ok")]);
    assert_eq!(
        evs[2]["choices"][0]["finish_reason"],
        json!("content_filter")
    );
    assert_eq!(evs[2]["id"], json!("chatcmpl-msg_z"));
    assert_eq!(evs.last().unwrap(), &json!("[DONE]"));
    assert_eq!(usage, reported(3, 2, None));
}

// --- Errors ----------------------------------------------------------------

#[test]
fn reads_anthropic_errors_of_every_status_class() {
    for (status, kind) in [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (529, "overloaded_error"),
    ] {
        let body = json!({"type": "error", "error": {"type": kind, "message": format!("{kind} happened")}, "request_id": "req_1"});
        let e = openai_anthropic::error(status, body.to_string().as_bytes());
        assert_eq!(e.status, status);
        assert_eq!(e.kind.as_deref(), Some(kind));
        assert_eq!(e.message, Some(format!("{kind} happened")));
        assert_eq!((e.code, e.param), (None, None));
    }
}

#[test]
fn tolerates_error_bodies_that_are_not_anthropic_json() {
    let e = openai_anthropic::error(502, b"<html><body>Bad Gateway</body></html>\n");
    assert_eq!(e.status, 502);
    assert_eq!(e.kind, None);
    assert_eq!(
        e.message.as_deref(),
        Some("<html><body>Bad Gateway</body></html>")
    );

    let e = openai_anthropic::error(503, b"");
    assert_eq!((e.kind, e.message), (None, None));

    let e = openai_anthropic::error(500, br#"{"unexpected":"shape"}"#);
    assert_eq!(e.kind, None);
    assert_eq!(e.message.as_deref(), Some(r#"{"unexpected":"shape"}"#));

    let long = "x".repeat(10_000);
    let e = openai_anthropic::error(500, long.as_bytes());
    assert_eq!(e.message.unwrap().len(), 512);

    let e = openai_anthropic::error(500, &[0xff, 0xfe, b'a']);
    assert!(e.message.is_some());
}

#[test]
fn never_panics_on_truncated_or_corrupted_input() {
    let requests = [
        fixture!("req_tools_multi_turn.openai.json"),
        fixture!("req_images.openai.json"),
        fixture!("req_reasoning.openai.json"),
    ];
    let responses = [
        fixture!("resp_tool_use.anthropic.json"),
        fixture!("resp_thinking.anthropic.json"),
    ];
    for text in requests {
        let bytes = text.as_bytes();
        for i in 0..bytes.len() {
            let _ = openai_anthropic::request(&bytes[..i], &REQ_CTX);
            let mut flipped = bytes.to_vec();
            flipped[i] ^= 0x20;
            let _ = openai_anthropic::request(&flipped, &REQ_CTX);
        }
    }
    for text in responses {
        let bytes = text.as_bytes();
        for i in 0..bytes.len() {
            let _ = openai_anthropic::response(&bytes[..i], &RESP_CTX);
            let _ = openai_anthropic::error(500, &bytes[..i]);
            let mut flipped = bytes.to_vec();
            flipped[i] ^= 0x20;
            let _ = openai_anthropic::response(&flipped, &RESP_CTX);
        }
    }
    let stream = fixture!("stream_tool_calls.anthropic.sse").as_bytes();
    for i in 0..stream.len() {
        let mut flipped = stream.to_vec();
        flipped[i] ^= 0x20;
        let (out, _) = run_stream(&[&flipped]);
        // Whatever happened, the client stream ends with [DONE] or an error event.
        let last = events(&out).pop().unwrap();
        assert!(
            last == json!("[DONE]") || last.get("error").is_some(),
            "byte {i}: {last}"
        );
    }
}
