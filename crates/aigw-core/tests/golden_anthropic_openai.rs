//! Golden tests for `convert::anthropic_openai`: an Anthropic Messages client
//! in front of an OpenAI-compatible provider.
//!
//! Fixtures live in `fixtures/anthropic_openai/` and are embedded with
//! `include_str!` (these tests also run as wasm without a filesystem).
//! Request and response bodies are compared as JSON values; streams are
//! compared byte for byte, fed whole, split at every byte boundary, and one
//! byte at a time.

// Test helpers outside `#[test]` functions may unwrap too.
#![allow(clippy::unwrap_used, clippy::panic)]

use aigw_core::convert::anthropic_openai::{error, error_body, request, response, Stream};
use aigw_core::convert::{ProviderError, RequestContext, ResponseContext, StreamConverter};
use aigw_core::usage::{Usage, UsageSource};
use serde_json::{json, Value};

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("fixtures/anthropic_openai/", $name))
    };
}

const REQUEST_CTX: RequestContext<'static> = RequestContext {
    model: "gpt-4o-mini",
    default_max_tokens: 4096,
};

const RESPONSE_CTX: ResponseContext<'static> = ResponseContext {
    model: "claude-sonnet-4-5",
    created: 1_700_000_000,
    id: "gw-req-1",
};

fn json(text: &[u8]) -> Value {
    serde_json::from_slice(text).unwrap()
}

fn assert_request(input: &str, expected: &str) {
    let out = request(input.as_bytes(), &REQUEST_CTX).unwrap();
    assert_eq!(json(&out), json(expected.as_bytes()));
}

fn assert_response(input: &str, expected: &str) {
    let out = response(input.as_bytes(), &RESPONSE_CTX).unwrap();
    assert_eq!(json(&out), json(expected.as_bytes()));
}

fn run_stream(pieces: &[&[u8]]) -> (String, Option<Usage>) {
    let mut s = Stream::new(&RESPONSE_CTX);
    let mut out = Vec::new();
    for p in pieces {
        out.extend(s.push(p));
    }
    out.extend(s.finish());
    (String::from_utf8(out).unwrap(), s.usage().cloned())
}

/// The whole transcript, every two-piece split, and byte by byte all give `expected`.
fn assert_stream(input: &str, expected: &str) -> Option<Usage> {
    let bytes = input.as_bytes();
    let (whole, usage) = run_stream(&[bytes]);
    assert_eq!(whole, expected);
    for i in 0..=bytes.len() {
        let (split, split_usage) = run_stream(&[&bytes[..i], &bytes[i..]]);
        assert_eq!(split, expected, "split at byte {i}");
        assert_eq!(split_usage, usage, "usage, split at byte {i}");
    }
    let single: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(run_stream(&single).0, expected, "one byte at a time");
    usage
}

/// The events of an Anthropic SSE body: (event name, data as JSON).
fn events(sse: &str) -> Vec<(String, Value)> {
    sse.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let (name, data) = e.split_once('\n').unwrap();
            let name = name.strip_prefix("event: ").unwrap().to_string();
            let data = data.strip_prefix("data: ").unwrap();
            let data: Value = serde_json::from_str(data).unwrap();
            assert_eq!(
                data["type"],
                Value::String(name.clone()),
                "event name matches its type"
            );
            (name, data)
        })
        .collect()
}

fn reported(input: u64, output: u64, cached: Option<u64>, reasoning: Option<u64>) -> Usage {
    Usage {
        input_tokens: Some(input),
        output_tokens: Some(output),
        total_tokens: Some(input + output),
        cached_input_tokens: cached,
        reasoning_tokens: reasoning,
        source: UsageSource::Reported,
    }
}

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

#[test]
fn converts_a_plain_text_request() {
    assert_request(
        fixture!("request_plain_text.anthropic.json"),
        fixture!("request_plain_text.openai.json"),
    );
}

#[test]
fn converts_a_claude_code_session_with_cached_system_blocks_and_tool_use_history() {
    assert_request(
        fixture!("request_claude_code.anthropic.json"),
        fixture!("request_claude_code.openai.json"),
    );
}

#[test]
fn puts_the_system_prompt_first_and_keeps_every_turn_in_order() {
    assert_request(
        fixture!("request_system_string_multi_turn.anthropic.json"),
        fixture!("request_system_string_multi_turn.openai.json"),
    );
}

#[test]
fn maps_sampling_parameters_stop_sequences_and_user_and_drops_top_k() {
    assert_request(
        fixture!("request_sampling_parameters.anthropic.json"),
        fixture!("request_sampling_parameters.openai.json"),
    );
}

#[test]
fn ignores_unknown_fields_cache_control_and_tool_choice_without_tools() {
    assert_request(
        fixture!("request_unknown_fields.anthropic.json"),
        fixture!("request_unknown_fields.openai.json"),
    );
}

#[test]
fn converts_base64_and_url_images_and_moves_tool_result_images_to_the_next_user_message() {
    assert_request(
        fixture!("request_images.anthropic.json"),
        fixture!("request_images.openai.json"),
    );
}

#[test]
fn maps_a_named_tool_choice_and_disable_parallel_tool_use() {
    assert_request(
        fixture!("request_tool_choice_named.anthropic.json"),
        fixture!("request_tool_choice_named.openai.json"),
    );
}

#[test]
fn maps_tool_choice_any_to_required() {
    assert_request(
        fixture!("request_tool_choice_any.anthropic.json"),
        fixture!("request_tool_choice_any.openai.json"),
    );
}

#[test]
fn maps_tool_choice_none_and_marks_failed_tool_results_as_errors() {
    assert_request(
        fixture!("request_tool_choice_none.anthropic.json"),
        fixture!("request_tool_choice_none.openai.json"),
    );
}

#[test]
fn converts_text_and_content_documents_to_text_and_pdfs_to_file_parts() {
    assert_request(
        fixture!("request_documents.anthropic.json"),
        fixture!("request_documents.openai.json"),
    );
}

#[test]
fn maps_a_json_schema_output_format_to_response_format() {
    assert_request(
        fixture!("request_structured_output.anthropic.json"),
        fixture!("request_structured_output.openai.json"),
    );
    // The beta spelling says the same.
    let beta = json!({"max_tokens": 10, "messages": [{"role": "user", "content": "x"}],
        "output_format": {"type": "json_schema", "schema": {"type": "object"}}});
    let out = json(&request(beta.to_string().as_bytes(), &REQUEST_CTX).unwrap());
    assert_eq!(
        out["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "output", "schema": {"type": "object"}, "strict": true}})
    );
}

#[test]
fn a_streaming_request_asks_for_usage_and_a_missing_max_tokens_stays_missing() {
    let body = json!({"stream": true, "messages": [{"role": "user", "content": "x"}]});
    let out = json(&request(body.to_string().as_bytes(), &REQUEST_CTX).unwrap());
    assert_eq!(out["stream"], json!(true));
    assert_eq!(out["stream_options"], json!({"include_usage": true}));
    assert!(out.get("max_tokens").is_none());
    assert_eq!(out["model"], json!("gpt-4o-mini"));
}

#[test]
fn tool_use_input_keeps_its_member_order_in_the_arguments() {
    // Pretty-printed, keys not sorted, as some SDKs send it.
    let body = r#"{
      "max_tokens": 10,
      "messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": [
          {"type": "tool_use", "id": "t", "name": "f",
           "input": {"z": 1, "a": {"y": [1, 2], "b": "s p a c e \" \\"}}}
        ]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "ok"}]}
      ]
    }"#;
    let out = json(&request(body.as_bytes(), &REQUEST_CTX).unwrap());
    assert_eq!(
        out["messages"][1]["tool_calls"][0]["function"]["arguments"],
        json!(r#"{"z":1,"a":{"y":[1,2],"b":"s p a c e \" \\"}}"#)
    );
}

#[test]
fn rejects_what_the_provider_cannot_honour_with_a_400_naming_the_field() {
    let msg = |content: Value| json!([{"role": "user", "content": content}]);
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({"messages": msg(json!("x")), "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 5}]}),
            "tools",
            "web_search_20250305",
        ),
        (
            json!({"messages": msg(json!("x")), "tools": [{"name": "ok", "input_schema": {"type": "object"}}, {"type": "bash_20250124", "name": "bash"}]}),
            "tools",
            "bash_20250124",
        ),
        (
            json!({"messages": msg(json!("x")), "tools": [{"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"}]}),
            "tools",
            "text_editor_20250728",
        ),
        (
            json!({"messages": msg(json!("x")), "mcp_servers": [{"type": "url", "url": "https://example.com/sse", "name": "x"}]}),
            "mcp_servers",
            "mcp_servers",
        ),
        (
            json!({"messages": msg(json!("x")), "container": "container_011CPR5CNjB747bTd36fQLFk"}),
            "container",
            "container",
        ),
        (
            json!({"messages": msg(json!([{"type": "image", "source": {"type": "file", "file_id": "file_011"}}]))}),
            "messages",
            "image source type `file`",
        ),
        (
            json!({"messages": msg(json!([{"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}}]))}),
            "messages",
            "document source type `url`",
        ),
        (
            json!({"messages": msg(json!([{"type": "search_result", "source": "s", "title": "t", "content": []}]))}),
            "messages",
            "`search_result`",
        ),
        (
            json!({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": [{"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}]}]}),
            "messages",
            "`server_tool_use`",
        ),
        (
            json!({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": [{"type": "image", "source": {"type": "url", "url": "u"}}]}]}),
            "messages",
            "messages[1].content[0]",
        ),
        (
            json!({"messages": msg(json!([{"type": "tool_result", "tool_use_id": "t", "content": [{"type": "search_result", "source": "s", "title": "t", "content": []}]}]))}),
            "messages",
            "tool result block type `search_result`",
        ),
        (
            json!({"messages": [{"role": "system", "content": "x"}]}),
            "messages",
            "`system` is not a Messages role",
        ),
        (
            json!({"system": [{"type": "image", "source": {"type": "url", "url": "u"}}], "messages": msg(json!("x"))}),
            "system",
            "system[0]",
        ),
        (
            json!({"messages": msg(json!(null))}),
            "messages",
            "messages[0].content",
        ),
        (
            json!({"messages": msg(json!([{"text": "no type"}]))}),
            "messages",
            "missing field `type`",
        ),
        (
            json!({"messages": msg(json!([{"type": "tool_use", "name": "f", "input": {}}]))}),
            "messages",
            "`tool_use`",
        ),
        (
            json!({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": [{"type": "tool_use", "name": "f", "input": {}}]}]}),
            "messages",
            "missing field `id`",
        ),
        (
            json!({"messages": msg(json!("x")), "tools": [{"name": "f", "input_schema": {}}], "tool_choice": {"type": "tool"}}),
            "tool_choice",
            "tool_choice.name",
        ),
        (
            json!({"messages": msg(json!("x")), "tools": [{"name": "f", "input_schema": {}}], "tool_choice": {"type": "sometimes"}}),
            "tool_choice",
            "sometimes",
        ),
        (
            json!({"messages": msg(json!("x")), "output_format": {"type": "regex", "pattern": "a+"}}),
            "output_format",
            "regex",
        ),
        (json!({"max_tokens": 5}), "messages", "messages"),
    ];
    for (body, param, needle) in cases {
        let err = request(body.to_string().as_bytes(), &REQUEST_CTX).unwrap_err();
        assert_eq!(err.status, 400, "{body}");
        assert_eq!(err.param, Some(param), "{body}: {}", err.message);
        assert!(
            err.message.contains(needle),
            "{body}: message {:?} should name {needle:?}",
            err.message
        );
    }
}

#[test]
fn rejects_bodies_that_are_not_a_messages_request() {
    for body in [
        &b"not json"[..],
        b"[1,2]",
        b"",
        br#"{"messages": "x"}"#,
        br#"{"messages": [], "temperature": "hot"}"#,
        br#"{"messages": [{"role": "user"}]}"#,
    ] {
        let err = request(body, &REQUEST_CTX).unwrap_err();
        assert_eq!(err.status, 400, "{}", String::from_utf8_lossy(body));
        assert_eq!(
            err.code,
            "invalid_json",
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}

// ---------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------

#[test]
fn converts_a_text_completion_to_an_end_turn_message() {
    assert_response(
        fixture!("response_text.openai.json"),
        fixture!("response_text.anthropic.json"),
    );
}

#[test]
fn converts_parallel_tool_calls_to_tool_use_blocks_with_cache_read_tokens() {
    assert_response(
        fixture!("response_parallel_tool_calls.openai.json"),
        fixture!("response_parallel_tool_calls.anthropic.json"),
    );
}

#[test]
fn maps_length_to_max_tokens() {
    assert_response(
        fixture!("response_length.openai.json"),
        fixture!("response_length.anthropic.json"),
    );
}

#[test]
fn maps_content_filter_to_refusal() {
    assert_response(
        fixture!("response_content_filter.openai.json"),
        fixture!("response_content_filter.anthropic.json"),
    );
}

#[test]
fn turns_an_openai_refusal_into_text_with_a_refusal_stop_reason() {
    assert_response(
        fixture!("response_refusal.openai.json"),
        fixture!("response_refusal.anthropic.json"),
    );
}

#[test]
fn reports_the_stop_sequence_a_vllm_server_names() {
    assert_response(
        fixture!("response_vllm_stop_sequence.openai.json"),
        fixture!("response_vllm_stop_sequence.anthropic.json"),
    );
}

#[test]
fn drops_deepseek_reasoning_content() {
    assert_response(
        fixture!("response_deepseek_reasoning_and_cache.openai.json"),
        fixture!("response_deepseek_reasoning_and_cache.anthropic.json"),
    );
}

#[test]
fn reads_deepseek_cache_hits_as_cache_read_tokens() {
    assert_response(
        fixture!("response_deepseek_cache_hit.openai.json"),
        fixture!("response_deepseek_cache_hit.anthropic.json"),
    );
}

#[test]
fn tool_calls_make_tool_use_even_when_the_server_says_stop_and_missing_usage_is_zero() {
    assert_response(
        fixture!("response_tool_calls_stop_without_usage.openai.json"),
        fixture!("response_tool_calls_stop_without_usage.anthropic.json"),
    );
}

#[test]
fn wraps_unparsable_arguments_and_unwraps_double_encoded_ones() {
    assert_response(
        fixture!("response_malformed_arguments.openai.json"),
        fixture!("response_malformed_arguments.anthropic.json"),
    );
}

#[test]
fn maps_a_legacy_function_call_to_tool_use() {
    assert_response(
        fixture!("response_legacy_function_call.openai.json"),
        fixture!("response_legacy_function_call.anthropic.json"),
    );
}

#[test]
fn unusable_provider_responses_are_502() {
    for body in [
        &b"<html>oops</html>"[..],
        br#"{"id":"x","choices":[]}"#,
        br#"{"id":"x"}"#,
        br#"{"error":{"message":"upstream failed"}}"#,
    ] {
        let err = response(body, &RESPONSE_CTX).unwrap_err();
        assert_eq!(err.status, 502, "{}", String::from_utf8_lossy(body));
    }
    let err = response(br#"{"error":{"message":"upstream failed"}}"#, &RESPONSE_CTX).unwrap_err();
    assert_eq!(err.message, "upstream failed");
}

#[test]
fn ignores_unknown_response_fields_and_uses_the_context_when_the_provider_names_nothing() {
    let body = json!({"choices": [{"message": {"content": "hi", "audio": null, "future": {"x": 1}}, "finish_reason": "stop", "extra": true}], "future_top": [1]});
    let out = json(&response(body.to_string().as_bytes(), &RESPONSE_CTX).unwrap());
    assert_eq!(out["id"], json!("msg_gw-req-1"));
    assert_eq!(out["model"], json!("claude-sonnet-4-5"));
    assert_eq!(out["content"], json!([{"type": "text", "text": "hi"}]));
    assert_eq!(out["usage"], json!({"input_tokens": 0, "output_tokens": 0}));
}

#[test]
fn maps_every_finish_reason() {
    for (finish, stop_reason) in [
        (json!("stop"), "end_turn"),
        (json!("length"), "max_tokens"),
        (json!("tool_calls"), "tool_use"),
        (json!("function_call"), "tool_use"),
        (json!("content_filter"), "refusal"),
        (json!("insufficient_system_resource"), "end_turn"),
        (json!(null), "end_turn"),
    ] {
        let body = json!({"id": "c", "choices": [{"index": 0, "message": {"content": "x"}, "finish_reason": finish}]});
        let out = json(&response(body.to_string().as_bytes(), &RESPONSE_CTX).unwrap());
        assert_eq!(out["stop_reason"], json!(stop_reason), "{finish}");
        assert_eq!(out["stop_sequence"], json!(null));
    }
}

// ---------------------------------------------------------------------------
// Streams
// ---------------------------------------------------------------------------

#[test]
fn streams_text_in_anthropic_event_order_with_usage_in_message_delta() {
    let usage = assert_stream(
        fixture!("stream_text.openai.sse"),
        fixture!("stream_text.anthropic.sse"),
    );
    assert_eq!(usage, Some(reported(19, 10, Some(0), Some(0))));
}

#[test]
fn streams_tool_calls_with_arguments_split_across_deltas() {
    let usage = assert_stream(
        fixture!("stream_tool_calls.openai.sse"),
        fixture!("stream_tool_calls.anthropic.sse"),
    );
    assert_eq!(usage, Some(reported(2006, 52, Some(1920), None)));
}

#[test]
fn keeps_interleaved_parallel_tool_calls_whole_and_in_order() {
    let expected = fixture!("stream_interleaved_tool_calls.anthropic.sse");
    assert_stream(
        fixture!("stream_interleaved_tool_calls.openai.sse"),
        expected,
    );
    // Each block: one start, its deltas, one stop, and nothing for it afterwards.
    let evs = events(expected);
    for index in 0..3 {
        let touching: Vec<&str> = evs
            .iter()
            .filter(|(_, d)| d["index"] == json!(index))
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(touching.first(), Some(&"content_block_start"));
        assert_eq!(touching.last(), Some(&"content_block_stop"));
        assert_eq!(
            touching
                .iter()
                .filter(|n| **n == "content_block_stop")
                .count(),
            1
        );
    }
}

#[test]
fn tells_ollama_tool_calls_apart_by_id_when_every_index_is_zero() {
    let usage = assert_stream(
        fixture!("stream_ollama_tool_calls.openai.sse"),
        fixture!("stream_ollama_tool_calls.anthropic.sse"),
    );
    assert_eq!(usage, None);
}

#[test]
fn waits_for_a_tool_name_that_arrives_after_the_id() {
    assert_stream(
        fixture!("stream_tool_name_late.openai.sse"),
        fixture!("stream_tool_name_late.anthropic.sse"),
    );
}

#[test]
fn streams_length_as_max_tokens() {
    assert_stream(
        fixture!("stream_length.openai.sse"),
        fixture!("stream_length.anthropic.sse"),
    );
}

#[test]
fn streams_content_filter_as_refusal() {
    assert_stream(
        fixture!("stream_content_filter.openai.sse"),
        fixture!("stream_content_filter.anthropic.sse"),
    );
}

#[test]
fn streams_the_stop_sequence_a_vllm_server_names() {
    assert_stream(
        fixture!("stream_vllm_stop_sequence.openai.sse"),
        fixture!("stream_vllm_stop_sequence.anthropic.sse"),
    );
}

#[test]
fn drops_streamed_reasoning_content_and_reads_cached_tokens() {
    let usage = assert_stream(
        fixture!("stream_deepseek_reasoning.openai.sse"),
        fixture!("stream_deepseek_reasoning.anthropic.sse"),
    );
    assert_eq!(usage, Some(reported(1200, 30, Some(1152), Some(26))));
}

#[test]
fn turns_keep_alive_comments_into_pings_reads_crlf_and_keeps_the_latest_usage() {
    let usage = assert_stream(
        fixture!("stream_keepalive_crlf_usage_twice.openai.sse"),
        fixture!("stream_keepalive_crlf_usage_twice.anthropic.sse"),
    );
    assert_eq!(usage, Some(reported(10, 3, Some(4), None)));
}

#[test]
fn ends_cleanly_when_the_stream_stops_after_finish_reason_without_done() {
    assert_stream(
        fixture!("stream_finish_without_done.openai.sse"),
        fixture!("stream_finish_without_done.anthropic.sse"),
    );
}

#[test]
fn a_stream_cut_mid_text_ends_with_an_error_event_and_no_message_stop() {
    let expected = fixture!("stream_cut_mid_text.anthropic.sse");
    assert_stream(fixture!("stream_cut_mid_text.openai.sse"), expected);
    let evs = events(expected);
    let (last, data) = evs.last().unwrap();
    assert_eq!(last, "error");
    assert_eq!(data["error"]["type"], json!("api_error"));
    assert!(evs.iter().all(|(n, _)| n != "message_stop"));
}

#[test]
fn a_stream_cut_mid_tool_call_ends_with_an_error_event() {
    let expected = fixture!("stream_cut_mid_tool_call.anthropic.sse");
    assert_stream(fixture!("stream_cut_mid_tool_call.openai.sse"), expected);
    assert!(events(expected).iter().all(|(n, _)| n != "message_stop"));
}

#[test]
fn forwards_a_provider_error_chunk_as_an_error_event_and_stops() {
    assert_stream(
        fixture!("stream_provider_error.openai.sse"),
        fixture!("stream_provider_error.anthropic.sse"),
    );
}

#[test]
fn forwards_a_vllm_error_chunk_typed_from_its_code() {
    assert_stream(
        fixture!("stream_vllm_error.openai.sse"),
        fixture!("stream_vllm_error.anthropic.sse"),
    );
}

#[test]
fn an_empty_stream_is_an_error_not_a_message() {
    let (out, usage) = run_stream(&[]);
    let evs = events(&out);
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].0, "error");
    assert_eq!(usage, None);
}

#[test]
fn a_done_without_chunks_still_closes_the_message() {
    let (out, _) = run_stream(&[b"data: [DONE]\n\n"]);
    let names: Vec<String> = events(&out).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["message_start", "message_delta", "message_stop"]);
}

#[test]
fn emits_each_event_as_soon_as_its_chunk_is_complete() {
    let input = fixture!("stream_tool_calls.openai.sse").as_bytes();
    let mut s = Stream::new(&RESPONSE_CTX);
    // The first chunk: message_start at once.
    let first_end = input.windows(2).position(|w| w == b"\n\n").unwrap() + 2;
    let out = String::from_utf8(s.push(&input[..first_end])).unwrap();
    assert_eq!(events(&out).len(), 1);
    assert!(out.starts_with("event: message_start\n"));
    // Half of the next chunk: nothing yet; the rest: its text delta.
    let second_end = first_end
        + input[first_end..]
            .windows(2)
            .position(|w| w == b"\n\n")
            .unwrap()
        + 2;
    let mid = (first_end + second_end) / 2;
    assert!(s.push(&input[first_end..mid]).is_empty());
    let out = String::from_utf8(s.push(&input[mid..second_end])).unwrap();
    let evs = events(&out);
    assert_eq!(evs[0].0, "content_block_start");
    assert_eq!(
        evs[1].1["delta"],
        json!({"type": "text_delta", "text": "Checking both"})
    );
}

#[test]
fn every_stream_fixture_has_consistent_block_lifecycles() {
    for sse in [
        fixture!("stream_text.anthropic.sse"),
        fixture!("stream_tool_calls.anthropic.sse"),
        fixture!("stream_interleaved_tool_calls.anthropic.sse"),
        fixture!("stream_ollama_tool_calls.anthropic.sse"),
        fixture!("stream_tool_name_late.anthropic.sse"),
        fixture!("stream_keepalive_crlf_usage_twice.anthropic.sse"),
        fixture!("stream_deepseek_reasoning.anthropic.sse"),
    ] {
        let mut open: Option<u64> = None;
        let mut next = 0u64;
        let mut started = false;
        for (name, data) in events(sse) {
            match name.as_str() {
                "message_start" => started = true,
                "content_block_start" => {
                    assert!(started && open.is_none(), "{sse}");
                    assert_eq!(data["index"], json!(next));
                    open = Some(next);
                    next += 1;
                }
                "content_block_delta" => assert_eq!(Some(data["index"].as_u64().unwrap()), open),
                "content_block_stop" => {
                    assert_eq!(Some(data["index"].as_u64().unwrap()), open);
                    open = None;
                }
                "message_delta" | "message_stop" => assert!(open.is_none()),
                "ping" => {}
                other => panic!("unexpected event {other}"),
            }
        }
        assert!(sse.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
    }
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

#[test]
fn reads_the_error_shapes_openai_compatible_servers_send() {
    let e = error(
        429,
        br#"{"error":{"message":"Rate limit reached for gpt-4o","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
    );
    assert_eq!(
        e,
        ProviderError {
            status: 429,
            kind: Some("requests".into()),
            message: Some("Rate limit reached for gpt-4o".into()),
            code: Some("rate_limit_exceeded".into()),
            param: None,
        }
    );
    let e = error(400, br#"{"error":{"message":"bad","type":"invalid_request_error","param":"messages","code":400}}"#);
    assert_eq!(e.param.as_deref(), Some("messages"));
    assert_eq!(e.code.as_deref(), Some("400"));
    // Ollama
    let e = error(
        404,
        br#"{"error":"model \"llama9\" not found, try pulling it first"}"#,
    );
    assert_eq!(
        e.message.as_deref(),
        Some("model \"llama9\" not found, try pulling it first")
    );
    // vLLM
    let e = error(400, br#"{"object":"error","message":"maximum context length is 4096","type":"BadRequestError","param":null,"code":400}"#);
    assert_eq!(e.message.as_deref(), Some("maximum context length is 4096"));
    assert_eq!(e.kind.as_deref(), Some("BadRequestError"));
    // FastAPI
    assert_eq!(
        error(401, br#"{"detail":"Not authenticated"}"#)
            .message
            .as_deref(),
        Some("Not authenticated")
    );
    let e = error(422, br#"{"detail":[{"loc":["body","messages"],"msg":"field required","type":"missing"},{"msg":"bad model"}]}"#);
    assert_eq!(e.message.as_deref(), Some("field required; bad model"));
    // Plain text is quoted; HTML and empty bodies are not.
    assert_eq!(
        error(503, b"upstream connect error\n").message.as_deref(),
        Some("upstream connect error")
    );
    assert_eq!(
        error(502, b"<html><body>Bad Gateway</body></html>").message,
        None
    );
    assert_eq!(error(500, b"").message, None);
    assert_eq!(error(500, b"").status, 500);
}

#[test]
fn writes_provider_errors_in_anthropic_envelopes_typed_by_status() {
    for (status, kind) in [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (422, "invalid_request_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (503, "api_error"),
        (529, "overloaded_error"),
    ] {
        let body = error_body(&error(
            status,
            br#"{"error":{"message":"boom","type":"x"}}"#,
        ));
        assert_eq!(
            json(&body),
            json!({"type": "error", "error": {"type": kind, "message": "boom"}}),
            "{status}"
        );
    }
    let body = error_body(&error(503, b""));
    assert_eq!(
        json(&body),
        json!({"type": "error", "error": {"type": "api_error", "message": "the provider returned HTTP 503"}})
    );
}

#[test]
fn words_context_length_errors_as_anthropic_does() {
    let e = error(
        400,
        br#"{"error":{"message":"This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#,
    );
    let body = json(&error_body(&e));
    assert_eq!(body["error"]["type"], json!("invalid_request_error"));
    assert_eq!(
        body["error"]["message"],
        json!("prompt is too long: This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens.")
    );
}

// ---------------------------------------------------------------------------
// Robustness
// ---------------------------------------------------------------------------

const REQUEST_FIXTURES: [&str; 11] = [
    fixture!("request_plain_text.anthropic.json"),
    fixture!("request_claude_code.anthropic.json"),
    fixture!("request_system_string_multi_turn.anthropic.json"),
    fixture!("request_sampling_parameters.anthropic.json"),
    fixture!("request_unknown_fields.anthropic.json"),
    fixture!("request_images.anthropic.json"),
    fixture!("request_tool_choice_named.anthropic.json"),
    fixture!("request_tool_choice_any.anthropic.json"),
    fixture!("request_tool_choice_none.anthropic.json"),
    fixture!("request_documents.anthropic.json"),
    fixture!("request_structured_output.anthropic.json"),
];

const RESPONSE_FIXTURES: [&str; 11] = [
    fixture!("response_text.openai.json"),
    fixture!("response_parallel_tool_calls.openai.json"),
    fixture!("response_length.openai.json"),
    fixture!("response_content_filter.openai.json"),
    fixture!("response_refusal.openai.json"),
    fixture!("response_vllm_stop_sequence.openai.json"),
    fixture!("response_deepseek_reasoning_and_cache.openai.json"),
    fixture!("response_deepseek_cache_hit.openai.json"),
    fixture!("response_tool_calls_stop_without_usage.openai.json"),
    fixture!("response_malformed_arguments.openai.json"),
    fixture!("response_legacy_function_call.openai.json"),
];

const STREAM_FIXTURES: [&str; 15] = [
    fixture!("stream_text.openai.sse"),
    fixture!("stream_tool_calls.openai.sse"),
    fixture!("stream_interleaved_tool_calls.openai.sse"),
    fixture!("stream_ollama_tool_calls.openai.sse"),
    fixture!("stream_tool_name_late.openai.sse"),
    fixture!("stream_length.openai.sse"),
    fixture!("stream_content_filter.openai.sse"),
    fixture!("stream_vllm_stop_sequence.openai.sse"),
    fixture!("stream_deepseek_reasoning.openai.sse"),
    fixture!("stream_keepalive_crlf_usage_twice.openai.sse"),
    fixture!("stream_finish_without_done.openai.sse"),
    fixture!("stream_cut_mid_text.openai.sse"),
    fixture!("stream_cut_mid_tool_call.openai.sse"),
    fixture!("stream_provider_error.openai.sse"),
    fixture!("stream_vllm_error.openai.sse"),
];

#[test]
fn truncated_requests_and_responses_are_errors_never_panics() {
    for body in REQUEST_FIXTURES {
        let bytes = body.as_bytes();
        for i in 0..bytes.len() {
            if let Err(e) = request(&bytes[..i], &REQUEST_CTX) {
                assert_eq!(e.status, 400);
            }
        }
    }
    for body in RESPONSE_FIXTURES {
        let bytes = body.as_bytes();
        for i in 0..bytes.len() {
            if let Err(e) = response(&bytes[..i], &RESPONSE_CTX) {
                assert_eq!(e.status, 502);
            }
        }
    }
}

#[test]
fn every_prefix_of_a_stream_ends_with_message_stop_or_an_error() {
    for sse in STREAM_FIXTURES {
        let bytes = sse.as_bytes();
        for i in 0..=bytes.len() {
            let (out, _) = run_stream(&[&bytes[..i]]);
            let evs = events(&out);
            let last = evs.last().map(|(n, _)| n.as_str());
            assert!(
                matches!(last, Some("message_stop" | "error")),
                "prefix of {i} bytes ends with {last:?}"
            );
            // Exactly one terminal event, and nothing after it.
            let terminals = evs
                .iter()
                .filter(|(n, _)| n == "message_stop" || n == "error")
                .count();
            assert_eq!(terminals, 1, "prefix of {i} bytes");
        }
    }
}

#[test]
fn garbage_and_foreign_events_in_a_stream_are_ignored() {
    let input = "event: whatever\ndata: not json\n\ndata: {\"choices\":\"nope\"}\n\ndata: 42\n\n\n\ndata: {\"id\":\"x\",\"choices\":[{\"index\":1,\"delta\":{\"content\":\"other choice\"}},{\"index\":0,\"delta\":{\"content\":\"ok\"}}]}\n\ndata: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
    let (out, _) = run_stream(&[input.as_bytes()]);
    let evs = events(&out);
    let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(evs[2].1["delta"]["text"], json!("ok"));
    assert_eq!(evs[0].1["message"]["id"], json!("msg_x"));
}

#[test]
fn an_empty_user_turn_stays_a_user_message() {
    let body = br#"{"max_tokens":5,"messages":[{"role":"user","content":[]},{"role":"assistant","content":"a"},{"role":"user","content":"b"}]}"#;
    let out = json(&request(body, &REQUEST_CTX).unwrap());
    assert_eq!(
        out["messages"],
        json!([{"role": "user", "content": ""}, {"role": "assistant", "content": "a"}, {"role": "user", "content": "b"}])
    );
}
