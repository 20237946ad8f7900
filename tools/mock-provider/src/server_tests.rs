//! The server started in-process on port 0, driven by a raw HTTP/1.1 client so the tests see
//! the exact bytes and framing on the wire (chunks, missing terminators, aborts).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::service::State;

async fn start(name: &str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = Arc::new(State::new(name).unwrap());
    tokio::spawn(crate::serve(listener, state, std::future::pending()));
    addr
}

#[derive(Debug)]
struct RawResponse {
    status: u16,
    headers: Vec<(String, String)>,
    /// Body chunks as framed on the wire (one item for a content-length body).
    chunks: Vec<Vec<u8>>,
    /// Whether the body ended properly (terminating chunk, or the announced length).
    complete: bool,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn body(&self) -> Vec<u8> {
        self.chunks.concat()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body()).unwrap()
    }

    fn chunk_str(&self, i: usize) -> &str {
        std::str::from_utf8(&self.chunks[i]).unwrap()
    }
}

/// Send raw request bytes on a fresh connection and read until the server closes it.
async fn exchange(addr: SocketAddr, request: &[u8]) -> RawResponse {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let read_all = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => raw.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read_all)
        .await
        .expect("server did not close the connection");
    parse_response(&raw)
}

/// Like [`exchange`], but every read must succeed: the server ends the response and closes
/// the connection normally (EOF), it does not fail it.
async fn exchange_to_eof(addr: SocketAddr, request: &[u8]) -> RawResponse {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .expect("server did not close the connection")
        .expect("reading the response to EOF failed");
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> RawResponse {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = std::str::from_utf8(&raw[..split]).unwrap();
    let mut rest = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let mut chunks = Vec::new();
    let complete;
    if find("transfer-encoding").as_deref() == Some("chunked") {
        loop {
            let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
                complete = false;
                break;
            };
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap(), 16).unwrap();
            rest = &rest[eol + 2..];
            if size == 0 {
                complete = rest == b"\r\n";
                break;
            }
            if rest.len() < size + 2 {
                chunks.push(rest.to_vec());
                complete = false;
                break;
            }
            chunks.push(rest[..size].to_vec());
            rest = &rest[size + 2..];
        }
    } else if let Some(len) = find("content-length") {
        let len: usize = len.parse().unwrap();
        complete = rest.len() == len;
        chunks.push(rest.to_vec());
    } else {
        complete = true;
        chunks.push(rest.to_vec());
    }
    RawResponse {
        status,
        headers,
        chunks,
        complete,
    }
}

fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    request_on("close", method, path, headers, body)
}

/// A request with the given `connection` header (`close`, or `keep-alive` to reuse it).
fn request_on(
    connection: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nhost: test\r\nconnection: {connection}\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
    out.into_bytes()
}

async fn post(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: Value) -> RawResponse {
    exchange(addr, &request("POST", path, headers, &body.to_string())).await
}

async fn get(addr: SocketAddr, path: &str) -> RawResponse {
    exchange(addr, &request("GET", path, &[], "")).await
}

fn event_json(event: &str) -> Value {
    let payload = event
        .strip_prefix("data: ")
        .unwrap()
        .strip_suffix("\n\n")
        .unwrap();
    serde_json::from_str(payload).unwrap()
}

#[tokio::test]
async fn streams_each_event_as_its_own_chunk_with_a_usage_chunk_when_asked() {
    let addr = start("up1").await;
    let response = post(
        addr,
        "/compatible-mode/v1/chat/completions?api-version=1",
        &[],
        json!({
            "model": "qwen-max",
            "stream": true,
            "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "hi there"}]
        }),
    )
    .await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("text/event-stream"));
    assert_eq!(response.header("x-mock-name"), Some("up1"));
    assert!(response.complete, "{response:?}");
    // role, 6 words, finish, usage, [DONE]
    assert_eq!(response.chunks.len(), 10, "{response:?}");
    let mut text = String::new();
    for i in 0..8 {
        let chunk = event_json(response.chunk_str(i));
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["model"], "qwen-max");
        assert_eq!(chunk["usage"], Value::Null);
        assert!(chunk.as_object().unwrap().contains_key("usage"));
        if let Some(content) = chunk["choices"][0]["delta"]["content"].as_str() {
            text.push_str(content);
        }
    }
    assert_eq!(text, "Hello from up1! You asked qwen-max.");
    let finish = event_json(response.chunk_str(7));
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let usage = event_json(response.chunk_str(8));
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(
        usage["usage"],
        json!({"prompt_tokens": 3, "completion_tokens": 6, "total_tokens": 9})
    );
    assert_eq!(response.chunk_str(9), "data: [DONE]\n\n");
}

#[tokio::test]
async fn cut_after_ends_the_stream_without_done_or_terminating_chunk() {
    let addr = start("up1").await;
    let response = post(
        addr,
        "/v1/chat/completions",
        &[("x-mock-cut-after", "3"), ("x-mock-chunk-interval-ms", "5")],
        json!({"model": "m", "stream": true}),
    )
    .await;
    assert_eq!(response.status, 200);
    assert!(!response.complete, "{response:?}");
    assert_eq!(response.chunks.len(), 3, "{response:?}");
    assert_eq!(
        event_json(response.chunk_str(0))["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    assert_eq!(
        event_json(response.chunk_str(2))["choices"][0]["delta"]["content"],
        " from"
    );
    assert!(!String::from_utf8_lossy(&response.body()).contains("[DONE]"));
}

#[tokio::test]
async fn cut_after_larger_than_the_stream_still_withholds_done() {
    let addr = start("up1").await;
    let response = post(
        addr,
        "/v1/chat/completions",
        &[("x-mock-cut-after", "100"), ("x-mock-chunks", "2")],
        json!({"model": "m", "stream": true}),
    )
    .await;
    assert!(!response.complete);
    // role, 2 words, finish; no [DONE]
    assert_eq!(response.chunks.len(), 4, "{response:?}");
    assert!(!String::from_utf8_lossy(&response.body()).contains("[DONE]"));
}

#[tokio::test]
async fn cut_after_on_a_non_streaming_reply_sends_a_partial_body() {
    let addr = start("up1").await;
    let response = post(
        addr,
        "/v1/chat/completions",
        &[("x-mock-cut-after", "10")],
        json!({"model": "m"}),
    )
    .await;
    assert_eq!(response.status, 200);
    assert!(!response.complete, "{response:?}");
    assert_eq!(response.body(), b"{\"id\":\"cha");
}

#[tokio::test]
async fn end_after_ends_the_stream_cleanly_without_done() {
    let addr = start("up1").await;
    let body = json!({"model": "m", "stream": true}).to_string();
    let headers = [("x-mock-end-after", "3"), ("x-mock-chunk-interval-ms", "5")];
    let response = exchange_to_eof(
        addr,
        &request("POST", "/v1/chat/completions", &headers, &body),
    )
    .await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("text/event-stream"));
    assert_eq!(response.header("transfer-encoding"), Some("chunked"));
    // The terminating zero-length chunk was sent.
    assert!(response.complete, "{response:?}");
    assert_eq!(response.chunks.len(), 3, "{response:?}");
    assert_eq!(
        event_json(response.chunk_str(0))["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    assert_eq!(
        event_json(response.chunk_str(2))["choices"][0]["delta"]["content"],
        " from"
    );
    assert!(!String::from_utf8_lossy(&response.body()).contains("[DONE]"));
}

#[tokio::test]
async fn end_after_larger_than_the_stream_still_withholds_done() {
    let addr = start("up1").await;
    let response = post(
        addr,
        "/v1/chat/completions",
        &[("x-mock-end-after", "100"), ("x-mock-chunks", "2")],
        json!({"model": "m", "stream": true, "stream_options": {"include_usage": true}}),
    )
    .await;
    assert!(response.complete, "{response:?}");
    // role, 2 words, finish, usage; no [DONE]
    assert_eq!(response.chunks.len(), 5, "{response:?}");
    assert_eq!(
        event_json(response.chunk_str(3))["choices"][0]["finish_reason"],
        "stop"
    );
    assert_eq!(
        event_json(response.chunk_str(4))["usage"]["completion_tokens"],
        2
    );
    assert!(!String::from_utf8_lossy(&response.body()).contains("[DONE]"));

    let nothing = post(
        addr,
        "/v1/chat/completions",
        &[("x-mock-end-after", "0")],
        json!({"model": "m", "stream": true}),
    )
    .await;
    assert_eq!(nothing.status, 200);
    assert!(nothing.complete, "{nothing:?}");
    assert!(nothing.body().is_empty(), "{nothing:?}");
}

#[tokio::test]
async fn end_after_leaves_the_connection_usable() {
    let addr = start("up1").await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let body = json!({"model": "m", "stream": true}).to_string();
    let first = request_on(
        "keep-alive",
        "POST",
        "/v1/chat/completions",
        &[("x-mock-end-after", "2")],
        &body,
    );
    stream.write_all(&first).await.unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let read_first = async {
        while !raw.ends_with(b"\r\n0\r\n\r\n") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "connection closed: {:?}",
                String::from_utf8_lossy(&raw)
            );
            raw.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read_first)
        .await
        .expect("the body did not end");
    let ended = parse_response(&raw);
    assert!(ended.complete, "{ended:?}");
    assert_eq!(ended.chunks.len(), 2, "{ended:?}");

    // The same connection serves the next request.
    let second = request("POST", "/v1/chat/completions", &[], &body);
    stream.write_all(&second).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .expect("server did not close the connection")
        .unwrap();
    let next = parse_response(&raw);
    assert_eq!(next.status, 200);
    assert!(next.complete, "{next:?}");
    assert!(String::from_utf8_lossy(&next.body()).ends_with("data: [DONE]\n\n"));
}

#[tokio::test]
async fn end_after_on_a_non_streaming_reply_sends_a_short_complete_body() {
    let addr = start("up1").await;
    let response = exchange_to_eof(
        addr,
        &request(
            "POST",
            "/v1/chat/completions",
            &[("x-mock-end-after", "10")],
            &json!({"model": "m"}).to_string(),
        ),
    )
    .await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-length"), Some("10"));
    assert!(response.complete, "{response:?}");
    assert_eq!(response.body(), b"{\"id\":\"cha");

    // Never the whole body: at most all but its last byte.
    let embed = json!({"model": "e", "input": "a b"});
    let whole = post(addr, "/v1/embeddings", &[], embed.clone())
        .await
        .body();
    let short = post(
        addr,
        "/v1/embeddings",
        &[("x-mock-end-after", "100000")],
        embed,
    )
    .await;
    assert!(short.complete, "{short:?}");
    assert_eq!(short.body(), whole[..whole.len() - 1]);

    // Errors too.
    let error = post(
        addr,
        "/v1/chat/completions",
        &[("x-mock-status", "503"), ("x-mock-end-after", "9")],
        json!({"model": "m"}),
    )
    .await;
    assert_eq!(error.status, 503);
    assert!(error.complete, "{error:?}");
    assert_eq!(error.body(), b"{\"error\":");
}

#[tokio::test]
async fn end_after_withholds_anthropic_message_stop_and_gemini_last_response() {
    let addr = start("up1").await;
    let messages = json!({"model": "claude-x", "max_tokens": 10, "stream": true,
                          "messages": [{"role": "user", "content": "hi"}]});
    let anthropic = post(
        addr,
        "/v1/messages",
        &[("x-mock-end-after", "100"), ("x-mock-chunks", "1")],
        messages.clone(),
    )
    .await;
    assert!(anthropic.complete, "{anthropic:?}");
    let names: Vec<String> = (0..anthropic.chunks.len())
        .map(|i| anthropic_event(anthropic.chunk_str(i)).0)
        .collect();
    // message_delta (stop reason, usage) is sent; message_stop is withheld
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_stop",
            "message_delta"
        ]
    );
    let early = post(addr, "/v1/messages", &[("x-mock-end-after", "2")], messages).await;
    assert!(early.complete, "{early:?}");
    assert_eq!(early.chunks.len(), 2, "{early:?}");

    let contents = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
    let sse = post(
        addr,
        "/v1beta/models/gemini-pro:streamGenerateContent?alt=sse",
        &[("x-mock-end-after", "100")],
        contents.clone(),
    )
    .await;
    assert!(sse.complete, "{sse:?}");
    // 6 words; the last response (finishReason, usage) withheld
    assert_eq!(sse.chunks.len(), 5, "{sse:?}");
    for i in 0..5 {
        assert_eq!(
            gemini_event(sse.chunk_str(i))["candidates"][0]["content"]["role"],
            "model"
        );
    }
    let text = String::from_utf8_lossy(&sse.body()).into_owned();
    assert!(!text.contains("finishReason") && !text.contains("usageMetadata"));

    // JSON-array form: the last response and the closing `]` are both withheld.
    let array = post(
        addr,
        "/v1beta/models/gemini-pro:streamGenerateContent",
        &[("x-mock-end-after", "100"), ("x-mock-chunks", "3")],
        contents,
    )
    .await;
    assert_eq!(array.header("content-type"), Some("application/json"));
    assert!(array.complete, "{array:?}");
    assert_eq!(array.chunks.len(), 2, "{array:?}");
    let text = String::from_utf8_lossy(&array.body()).into_owned();
    assert!(text.starts_with("[{") && !text.ends_with(']'), "{text}");
    // Closed by hand, it is the first two responses, neither with a finish reason.
    let responses: Value = serde_json::from_str(&format!("{text}]")).unwrap();
    let responses = responses.as_array().unwrap();
    assert_eq!(responses.len(), 2, "{text}");
    assert!(responses
        .iter()
        .all(|r| r["candidates"][0].get("finishReason").is_none()));
}

#[tokio::test]
async fn cut_after_and_end_after_together_are_a_bad_request() {
    let addr = start("up1").await;
    let both = [("x-mock-cut-after", "1"), ("x-mock-end-after", "1")];
    let message =
        |v: &Value, pointer: &str| v.pointer(pointer).unwrap().as_str().unwrap().to_owned();

    let openai = post(addr, "/v1/chat/completions", &both, json!({"model": "m"})).await;
    assert_eq!(openai.status, 400);
    let body = openai.json();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let text = message(&body, "/error/message");
    assert!(
        text.contains("x-mock-end-after") && text.contains("x-mock-cut-after"),
        "{text}"
    );

    let chat = json!({"model": "claude-x", "max_tokens": 10, "stream": true,
                      "messages": [{"role": "user", "content": "hi"}]});
    let anthropic = post(addr, "/v1/messages", &both, chat).await;
    assert_eq!(anthropic.status, 400);
    let body = anthropic.json();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(message(&body, "/error/message").contains("x-mock-cut-after"));

    let gemini = post(
        addr,
        "/v1beta/models/gemini-pro:streamGenerateContent?alt=sse",
        &both,
        json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}),
    )
    .await;
    assert_eq!(gemini.status, 400);
    let body = gemini.json();
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
    assert!(message(&body, "/error/message").contains("x-mock-end-after"));

    // A rule's cutAfter counts as given.
    let added = post(addr, "/__mock/rules", &[], json!({"cutAfter": 2})).await;
    assert_eq!(added.status, 200, "{added:?}");
    let ruled = post(
        addr,
        "/v1/chat/completions",
        &[("x-mock-end-after", "1")],
        json!({"model": "m"}),
    )
    .await;
    assert_eq!(ruled.status, 400);
    assert!(message(&ruled.json(), "/error/message").contains("cutAfter"));

    // A rule cannot hold both.
    let rejected = post(
        addr,
        "/__mock/rules",
        &[],
        json!({"cutAfter": 1, "endAfter": 1}),
    )
    .await;
    assert_eq!(rejected.status, 400, "{rejected:?}");
    assert!(String::from_utf8_lossy(&rejected.body()).contains("cutAfter and endAfter"));
}

#[tokio::test]
async fn a_rule_programs_end_after() {
    let addr = start("up1").await;
    let added = post(
        addr,
        "/__mock/rules",
        &[],
        json!({"match": {"model": "ending"}, "endAfter": 2, "times": 1}),
    )
    .await;
    assert_eq!(added.status, 200, "{added:?}");
    let rules = get(addr, "/__mock/rules").await.json();
    assert_eq!(rules[0]["endAfter"], 2);

    let stream = json!({"model": "ending", "stream": true});
    let ended = post(addr, "/v1/chat/completions", &[], stream.clone()).await;
    assert!(ended.complete, "{ended:?}");
    assert_eq!(ended.chunks.len(), 2, "{ended:?}");
    assert!(!String::from_utf8_lossy(&ended.body()).contains("[DONE]"));
    // `times: 1` is used up: the whole stream again.
    let whole = post(addr, "/v1/chat/completions", &[], stream).await;
    assert!(whole.complete, "{whole:?}");
    assert_eq!(whole.chunks.len(), 9, "{whole:?}");
    assert_eq!(whole.chunk_str(8), "data: [DONE]\n\n");
}

#[tokio::test]
async fn non_streaming_reply_and_the_request_record() {
    let addr = start("up2").await;
    let response = post(
        addr,
        "/v1/chat/completions",
        &[
            ("authorization", "Bearer k1"),
            ("x-custom", "a"),
            ("x-custom", "b"),
        ],
        json!({"model": "deepseek-chat", "messages": [{"role": "user", "content": "one two"}]}),
    )
    .await;
    assert_eq!(response.status, 200);
    assert!(response.complete);
    assert_eq!(response.header("content-type"), Some("application/json"));
    let body = response.json();
    assert_eq!(body["id"], "chatcmpl-up2-1");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Hello from up2! You asked deepseek-chat."
    );
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 3, "completion_tokens": 6, "total_tokens": 9})
    );

    // A chunked request body (no content-length).
    let mut chunked = "POST /api/v1/embeddings?x=1 HTTP/1.1\r\nhost: test\r\n\
connection: close\r\ntransfer-encoding: chunked\r\n\r\n"
        .to_owned();
    for part in [r#"{"model"#, r#"":"emb","input""#, r#":"a b c"}"#] {
        chunked.push_str(&format!("{:x}\r\n{part}\r\n", part.len()));
    }
    chunked.push_str("0\r\n\r\n");
    let response = exchange(addr, chunked.as_bytes()).await;
    assert_eq!(response.status, 200, "{response:?}");
    let body = response.json();
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 3, "total_tokens": 3})
    );
    assert_eq!(body["data"][0]["embedding"].as_array().unwrap().len(), 8);

    assert_eq!(get(addr, "/__mock/health").await.body(), b"ok");
    let record = get(addr, "/__mock/requests").await;
    assert_eq!(record.header("x-mock-name"), Some("up2"));
    let record = record.json();
    let record = record.as_array().unwrap();
    assert_eq!(record.len(), 2, "admin calls are not recorded: {record:?}");
    assert_eq!(record[0]["method"], "POST");
    assert_eq!(record[0]["path"], "/v1/chat/completions");
    assert_eq!(record[0]["query"], Value::Null);
    assert_eq!(record[0]["headers"]["authorization"], "Bearer k1");
    assert_eq!(record[0]["headers"]["x-custom"], "a, b");
    assert_eq!(record[0]["json"]["model"], "deepseek-chat");
    assert_eq!(record[0]["model"], "deepseek-chat");
    assert_eq!(record[1]["path"], "/api/v1/embeddings");
    assert_eq!(record[1]["query"], "x=1");
    assert_eq!(record[1]["body"], r#"{"model":"emb","input":"a b c"}"#);
    assert_eq!(record[1]["json"]["input"], "a b c");

    let cleared = exchange(addr, &request("DELETE", "/__mock/requests", &[], "")).await;
    assert_eq!(cleared.status, 200);
    assert_eq!(get(addr, "/__mock/requests").await.json(), json!([]));
}

#[tokio::test]
async fn rules_apply_in_order_and_headers_override_them() {
    let addr = start("up1").await;
    let rules = json!([
        {"match": {"header": {"authorization": "Bearer k1"}}, "status": 429,
         "headers": {"retry-after": "2"}, "times": 1},
        {"match": {"model": "broken"}, "status": 502, "errorFormat": "html"}
    ]);
    let added = post(addr, "/__mock/rules", &[], rules).await;
    assert_eq!(added.status, 200, "{added:?}");
    let k1 = [("authorization", "Bearer k1")];
    let chat = json!({"model": "m"});

    let limited = post(addr, "/v1/chat/completions", &k1, chat.clone()).await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("retry-after"), Some("2"));
    assert_eq!(
        limited.json(),
        json!({"error": {"message": "mock error 429", "type": "rate_limit_error", "param": null, "code": null}})
    );
    // `times: 1` is used up.
    assert_eq!(
        post(addr, "/v1/chat/completions", &k1, chat.clone())
            .await
            .status,
        200
    );

    let html = post(
        addr,
        "/v1/chat/completions",
        &[],
        json!({"model": "broken"}),
    )
    .await;
    assert_eq!(html.status, 502);
    assert_eq!(
        html.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(String::from_utf8_lossy(&html.body()).starts_with("<!DOCTYPE html>"));

    let text = post(
        addr,
        "/v1/chat/completions",
        &[("x-mock-error-format", "text"), ("x-mock-retry-after", "7")],
        json!({"model": "broken"}),
    )
    .await;
    assert_eq!(text.status, 502);
    assert_eq!(
        text.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(text.header("retry-after"), Some("7"));

    let overridden = post(
        addr,
        "/v1/chat/completions",
        &[("x-mock-status", "200")],
        json!({"model": "broken"}),
    )
    .await;
    assert_eq!(overridden.status, 200);

    let cleared = exchange(addr, &request("DELETE", "/__mock/rules", &[], "")).await;
    assert_eq!(cleared.status, 200);
    let after = post(
        addr,
        "/v1/chat/completions",
        &[],
        json!({"model": "broken"}),
    )
    .await;
    assert_eq!(after.status, 200);
}

#[tokio::test]
async fn bad_requests_unknown_paths_and_delays() {
    let addr = start("up1").await;
    let invalid = exchange(addr, &request("POST", "/v1/chat/completions", &[], "{nope")).await;
    assert_eq!(invalid.status, 400);
    assert_eq!(invalid.json()["error"]["type"], "invalid_request_error");
    let no_model = post(addr, "/v1/chat/completions", &[], json!({"messages": []})).await;
    assert_eq!(no_model.status, 400);

    let unknown = post(addr, "/v1/responses", &[], json!({"model": "m"})).await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.header("x-mock-name"), Some("up1"));
    let error = unknown.json();
    assert_eq!(error["error"]["type"], "not_found_error");
    assert!(error["error"]["message"]
        .as_str()
        .unwrap()
        .contains("/v1/responses"));

    let started = Instant::now();
    let delayed = post(
        addr,
        "/v1/chat/completions",
        &[("x-mock-delay-ms", "150"), ("x-mock-status", "503")],
        json!({"model": "m"}),
    )
    .await;
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(delayed.status, 503);
    assert_eq!(delayed.json()["error"]["type"], "server_error");

    let omitted = post(
        addr,
        "/v1/chat/completions",
        &[("x-mock-usage", "omit"), ("x-mock-chunks", "0")],
        json!({"model": "m", "stream": true, "stream_options": {"include_usage": true}}),
    )
    .await;
    // role, finish, [DONE]
    assert_eq!(omitted.chunks.len(), 3);
    assert!(!String::from_utf8_lossy(&omitted.body()).contains("usage"));
}

#[tokio::test]
async fn azure_deployment_paths_are_served_and_recorded_with_their_query() {
    let addr = start("az").await;
    let chat = post(
        addr,
        "/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21",
        &[("api-key", "azk")],
        json!({"messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(chat.status, 200, "{chat:?}");
    let body = chat.json();
    assert_eq!(body["model"], "gpt4o-prod");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Hello from az! You asked gpt4o-prod."
    );
    let embeddings = post(
        addr,
        "/openai/deployments/emb-small/embeddings?api-version=2024-10-21",
        &[],
        json!({"input": "a b"}),
    )
    .await;
    assert_eq!(embeddings.status, 200, "{embeddings:?}");
    assert_eq!(embeddings.json()["model"], "emb-small");

    let record = get(addr, "/__mock/requests").await.json();
    assert_eq!(
        record[0]["path"],
        "/openai/deployments/gpt4o-prod/chat/completions"
    );
    assert_eq!(record[0]["query"], "api-version=2024-10-21");
    assert_eq!(record[0]["headers"]["api-key"], "azk");
    assert_eq!(record[0]["model"], "gpt4o-prod");
    assert_eq!(
        record[1]["path"],
        "/openai/deployments/emb-small/embeddings"
    );
    assert_eq!(record[1]["query"], "api-version=2024-10-21");
    assert_eq!(record[1]["model"], "emb-small");
}

#[tokio::test]
async fn a_rule_makes_the_openai_stream_a_tool_call() {
    let addr = start("up1").await;
    let added = post(
        addr,
        "/__mock/rules",
        &[],
        json!({"match": {"model": "tooly"}, "toolCall": "get_weather", "times": 1}),
    )
    .await;
    assert_eq!(added.status, 200, "{added:?}");
    let response = post(
        addr,
        "/v1/chat/completions",
        &[],
        json!({"model": "tooly", "stream": true, "stream_options": {"include_usage": true}}),
    )
    .await;
    assert!(response.complete, "{response:?}");
    // open, 3 argument fragments, finish, usage, [DONE]
    assert_eq!(response.chunks.len(), 7, "{response:?}");
    let call =
        |i| event_json(response.chunk_str(i))["choices"][0]["delta"]["tool_calls"][0].clone();
    assert_eq!(call(0)["id"], "call_mock_1");
    assert_eq!(call(0)["function"]["name"], "get_weather");
    let arguments: String = (0..4)
        .map(|i| {
            call(i)["function"]["arguments"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(arguments, r#"{"location":"Paris","unit":"celsius"}"#);
    assert_eq!(
        event_json(response.chunk_str(4))["choices"][0]["finish_reason"],
        "tool_calls"
    );
    assert_eq!(
        event_json(response.chunk_str(5))["usage"]["completion_tokens"],
        3
    );
    // `times: 1` is used up: text again.
    let text = post(addr, "/v1/chat/completions", &[], json!({"model": "tooly"})).await;
    assert_eq!(
        text.json()["choices"][0]["message"]["content"],
        "Hello from up1! You asked tooly."
    );
}

/// An Anthropic event: `event: NAME\ndata: JSON\n\n`, checked to be framed so, with the
/// name equal to the data's `type`.
fn anthropic_event(event: &str) -> (String, Value) {
    let (head, rest) = event.split_once('\n').unwrap();
    let name = head.strip_prefix("event: ").unwrap().to_owned();
    let data = rest
        .strip_prefix("data: ")
        .unwrap()
        .strip_suffix("\n\n")
        .unwrap();
    let data: Value = serde_json::from_str(data).unwrap();
    assert_eq!(data["type"], name.as_str());
    (name, data)
}

#[tokio::test]
async fn streams_anthropic_messages_one_event_per_chunk_in_anthropic_order() {
    let addr = start("up1").await;
    let response = post(
        addr,
        "/anthropic/v1/messages",
        &[
            ("x-api-key", "sk-ant-1"),
            ("anthropic-version", "2023-06-01"),
        ],
        json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 64,
            "stream": true,
            "system": "be brief",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi there"}]}]
        }),
    )
    .await;
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.header("content-type"), Some("text/event-stream"));
    assert!(response.complete, "{response:?}");
    let events: Vec<(String, Value)> = (0..response.chunks.len())
        .map(|i| anthropic_event(response.chunk_str(i)))
        .collect();
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    let mut expected = vec!["message_start", "content_block_start", "ping"];
    expected.extend(["content_block_delta"; 6]);
    expected.extend(["content_block_stop", "message_delta", "message_stop"]);
    assert_eq!(names, expected);
    let start = &events[0].1["message"];
    assert_eq!(start["id"], "msg_mock_1");
    assert_eq!(start["model"], "claude-sonnet-4-5");
    // (2 + 1) for the message, (2 + 1) for the system prompt
    assert_eq!(start["usage"]["input_tokens"], 6);
    assert_eq!(start["usage"]["output_tokens"], 1);
    let text: String = events[3..9]
        .iter()
        .map(|(_, d)| d["delta"]["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(text, "Hello from up1! You asked claude-sonnet-4-5.");
    assert_eq!(events[10].1["delta"]["stop_reason"], "end_turn");
    assert_eq!(events[10].1["usage"], json!({"output_tokens": 6}));

    let record = get(addr, "/__mock/requests").await.json();
    assert_eq!(record[0]["path"], "/anthropic/v1/messages");
    assert_eq!(record[0]["headers"]["x-api-key"], "sk-ant-1");
    assert_eq!(record[0]["headers"]["anthropic-version"], "2023-06-01");
    assert_eq!(record[0]["model"], "claude-sonnet-4-5");
}

#[tokio::test]
async fn anthropic_errors_tool_calls_count_tokens_and_cuts() {
    let addr = start("up1").await;
    let chat = json!({"model": "claude-x", "max_tokens": 10,
                      "messages": [{"role": "user", "content": "hi"}]});

    let missing = post(
        addr,
        "/v1/messages",
        &[],
        json!({"model": "claude-x", "messages": []}),
    )
    .await;
    assert_eq!(missing.status, 400);
    assert_eq!(
        missing.json(),
        json!({"type": "error", "error": {"type": "invalid_request_error",
                                          "message": "max_tokens: Field required"}})
    );

    let overloaded = post(
        addr,
        "/v1/messages",
        &[("x-mock-status", "529"), ("x-mock-retry-after", "3")],
        chat.clone(),
    )
    .await;
    assert_eq!(overloaded.status, 529);
    assert_eq!(overloaded.header("retry-after"), Some("3"));
    assert_eq!(
        overloaded.json(),
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "mock error 529"}})
    );

    let bad_header = post(
        addr,
        "/v1/messages",
        &[("x-mock-chunks", "x")],
        chat.clone(),
    )
    .await;
    assert_eq!(bad_header.status, 400);
    assert_eq!(bad_header.json()["type"], "error");

    let tool = post(
        addr,
        "/v1/messages",
        &[("x-mock-tool-call", "get_weather")],
        chat.clone(),
    )
    .await;
    assert_eq!(tool.status, 200);
    let body = tool.json();
    assert_eq!(body["id"], "msg_mock_1");
    assert_eq!(body["stop_reason"], "tool_use");
    assert_eq!(
        body["content"],
        json!([{"type": "tool_use", "id": "toolu_mock_1", "name": "get_weather",
                "input": {"location": "Paris", "unit": "celsius"}}])
    );

    let count = post(
        addr,
        "/v1/messages/count_tokens",
        &[],
        json!({"model": "claude-x", "messages": [{"role": "user", "content": "a b c"}]}),
    )
    .await;
    assert_eq!(count.status, 200);
    assert_eq!(count.json(), json!({"input_tokens": 4}));

    let mut streamed = chat.clone();
    streamed["stream"] = json!(true);
    let cut = post(
        addr,
        "/v1/messages",
        &[("x-mock-cut-after", "100"), ("x-mock-chunks", "1")],
        streamed,
    )
    .await;
    assert!(!cut.complete, "{cut:?}");
    // message_start, content_block_start, ping, 1 delta, content_block_stop, message_delta;
    // message_stop withheld
    assert_eq!(cut.chunks.len(), 6, "{cut:?}");
    assert!(!String::from_utf8_lossy(&cut.body()).contains("message_stop"));
}

/// A Gemini SSE event: `data: JSON\r\n\r\n`.
fn gemini_event(event: &str) -> Value {
    let data = event
        .strip_prefix("data: ")
        .unwrap()
        .strip_suffix("\r\n\r\n")
        .unwrap();
    serde_json::from_str(data).unwrap()
}

#[tokio::test]
async fn streams_gemini_sse_one_crlf_framed_response_per_chunk() {
    let addr = start("up1").await;
    let response = post(
        addr,
        "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
        &[("x-goog-api-key", "gk-1")],
        json!({
            "systemInstruction": {"parts": [{"text": "be brief"}]},
            "contents": [{"role": "user", "parts": [{"text": "hi there"}]}],
            "generationConfig": {"temperature": 0}
        }),
    )
    .await;
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.header("content-type"), Some("text/event-stream"));
    assert!(response.complete, "{response:?}");
    assert_eq!(response.chunks.len(), 6, "{response:?}");
    let events: Vec<Value> = (0..6)
        .map(|i| gemini_event(response.chunk_str(i)))
        .collect();
    let text: String = events
        .iter()
        .map(|e| {
            e["candidates"][0]["content"]["parts"][0]["text"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(text, "Hello from up1! You asked gemini-2.0-flash.");
    for event in &events[..5] {
        assert!(event["candidates"][0].get("finishReason").is_none());
        assert!(event.get("usageMetadata").is_none());
        assert_eq!(event["candidates"][0]["content"]["role"], "model");
        assert_eq!(event["responseId"], "mock-1");
    }
    assert_eq!(events[5]["candidates"][0]["finishReason"], "STOP");
    // (2 + 1) for the user turn, (2 + 1) for the system instruction
    assert_eq!(
        events[5]["usageMetadata"],
        json!({"promptTokenCount": 6, "candidatesTokenCount": 6, "totalTokenCount": 12})
    );
    assert_eq!(events[5]["modelVersion"], "gemini-2.0-flash");

    let record = get(addr, "/__mock/requests").await.json();
    assert_eq!(
        record[0]["path"],
        "/v1beta/models/gemini-2.0-flash:streamGenerateContent"
    );
    assert_eq!(record[0]["query"], "alt=sse");
    assert_eq!(record[0]["headers"]["x-goog-api-key"], "gk-1");
    assert_eq!(record[0]["model"], "gemini-2.0-flash");
}

#[tokio::test]
async fn gemini_errors_tool_calls_json_array_streams_and_rules_on_the_path_model() {
    let addr = start("up1").await;
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
    let generate = "/v1beta/models/gemini-pro:generateContent";

    let missing = post(addr, generate, &[], json!({"contents": []})).await;
    assert_eq!(missing.status, 400);
    assert_eq!(
        missing.json(),
        json!({"error": {"code": 400, "status": "INVALID_ARGUMENT",
                         "message": "* GenerateContentRequest.contents: contents is not specified"}})
    );

    let added = post(
        addr,
        "/__mock/rules",
        &[],
        json!({"match": {"model": "gemini-pro"}, "status": 503, "times": 1}),
    )
    .await;
    assert_eq!(added.status, 200);
    let unavailable = post(addr, generate, &[], body.clone()).await;
    assert_eq!(unavailable.status, 503);
    assert_eq!(
        unavailable.json(),
        json!({"error": {"code": 503, "message": "mock error 503", "status": "UNAVAILABLE"}})
    );

    let tool = post(
        addr,
        generate,
        &[("x-mock-tool-call", "get_weather")],
        body.clone(),
    )
    .await;
    assert_eq!(tool.status, 200, "{tool:?}");
    let tool = tool.json();
    assert_eq!(
        tool["candidates"][0]["content"]["parts"],
        json!([{"functionCall": {"name": "get_weather",
                                 "args": {"location": "Paris", "unit": "celsius"}}}])
    );
    assert_eq!(tool["candidates"][0]["finishReason"], "STOP");
    assert_eq!(tool["responseId"], "mock-1");

    let array = post(
        addr,
        "/v1beta/models/gemini-pro:streamGenerateContent",
        &[("x-mock-chunks", "2")],
        body.clone(),
    )
    .await;
    assert_eq!(array.status, 200);
    assert_eq!(array.header("content-type"), Some("application/json"));
    assert_eq!(array.chunks.len(), 3, "{array:?}");
    let responses = array.json();
    assert_eq!(responses.as_array().unwrap().len(), 2);
    assert_eq!(responses[1]["candidates"][0]["finishReason"], "STOP");

    let cut = post(
        addr,
        "/v1beta/models/gemini-pro:streamGenerateContent?alt=sse",
        &[("x-mock-cut-after", "100")],
        body,
    )
    .await;
    assert!(!cut.complete, "{cut:?}");
    // 6 words; the last response (finishReason, usage) withheld
    assert_eq!(cut.chunks.len(), 5, "{cut:?}");
    assert!(!String::from_utf8_lossy(&cut.body()).contains("finishReason"));

    let get_method = get(addr, generate).await;
    assert_eq!(get_method.status, 405);
    assert_eq!(get_method.json()["error"]["status"], "UNKNOWN");
}
