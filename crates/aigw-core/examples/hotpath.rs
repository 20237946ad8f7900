//! Times the per-request work of the filters' core on a small chat request
//! (no host calls: what the filters compute between them). Natively:
//! `cargo run --release -p aigw-core --example hotpath`; as wasm, the way the
//! filters run it: `cargo build --release -p aigw-core --example hotpath
//! --target wasm32-wasip1` and run `target/wasm32-wasip1/release/examples/hotpath.wasm`
//! with `tools/wasi-run/wasi_run.py`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::Instant;

use aigw_core::api::Operation;
use aigw_core::config::provider::FilterConfig;
use aigw_core::config::router::RouterConfig;
use aigw_core::flow::{provider, router};
use aigw_core::handoff::Handoff;
use aigw_core::keypool::{PoolState, Selector};
use aigw_core::metrics::{request_key, request_updates, request_values, LabelFold, RequestSample};
use aigw_core::usage::Usage;

const ROUTER: &str = r#"{"maxRequestBodyBytes":10485760,"models":[{"name":"small","route":"m0","ownedBy":"mock"}],"providerPrefixes":[{"provider":"mock","route":"provider:mock"}],"auth":{"defaultMaxTokens":4096}}"#;
const PROVIDER: &str = r#"{"name":"mock","kind":"openai-compatible","baseUrl":"http://127.0.0.1:1/v1","keys":[{"id":"bench","value":"sk-bench","weight":1}],"routes":{"m0":{},"provider:mock":{"stripPrefix":"mock/"}}}"#;
const BODY: &[u8] = br#"{"model": "small", "messages": [{"role": "system", "content": "You are a helpful assistant. Answer briefly and precisely."}, {"role": "user", "content": "What is the capital of France? Please answer in one short sentence, and mention one famous landmark there as well."}], "max_tokens": 64, "temperature": 0.2}"#;
const RESPONSE: &[u8] = br#"{"id":"chatcmpl-mock-14896","object":"chat.completion","created":1795337617,"model":"small","choices":[{"index":0,"message":{"role":"assistant","content":"Hello from mock! You asked small."},"finish_reason":"stop","logprobs":null}],"usage":{"prompt_tokens":31,"completion_tokens":6,"total_tokens":37}}"#;

fn time(name: &str, n: u32, mut f: impl FnMut()) {
    for _ in 0..n / 10 {
        f();
    }
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    println!(
        "{name:28} {:8.2} µs",
        t.elapsed().as_secs_f64() * 1e6 / f64::from(n)
    );
}

fn main() {
    let n = 20_000;
    let rplan = serde_json::from_str::<RouterConfig>(ROUTER)
        .unwrap()
        .compile()
        .unwrap();
    let FilterConfig::One(pc) = FilterConfig::parse(PROVIDER.as_bytes()).unwrap() else {
        panic!()
    };
    let pplan = pc.compile(&|_| None).unwrap();
    time("router: request headers", n, || {
        black_box(router::on_request_headers(
            &rplan,
            None,
            "POST",
            "/v1/chat/completions",
            Some("application/json"),
            Some("310"),
            false,
        ));
    });
    time("router: route_body", n, || {
        black_box(router::route_body(&rplan, None, Operation::ChatCompletions, BODY, &[]).unwrap());
    });
    let d = router::route_body(&rplan, None, Operation::ChatCompletions, BODY, &[]).unwrap();
    let h = Handoff {
        route: d.route.clone(),
        model: d.model.clone(),
        client_path: "/v1/chat/completions".into(),
        request_id: "18a7b6c5d4e3f201-2a".into(),
        body_length: 310,
        ..Handoff::default()
    };
    time("router: handoff to_bytes", n, || {
        black_box(h.to_bytes());
    });
    let hb = h.to_bytes();
    time("provider: handoff parse", n, || {
        black_box(Handoff::parse(&hb));
    });
    let st = PoolState::fresh(&pplan.fingerprint, 1).to_bytes();
    time("provider: pool state load", n, || {
        black_box(PoolState::load(Some(&st), &pplan.fingerprint, 1));
    });
    let state = PoolState::load(Some(&st), &pplan.fingerprint, 1);
    let mut sel = Selector::new(1);
    time("provider: choose_key", n, || {
        black_box(provider::choose_key(
            &pplan,
            &state,
            &mut sel,
            &[],
            None,
            1_000,
            false,
        ));
    });
    time("provider: plan_attempt", n, || {
        black_box(
            provider::plan_attempt(&pplan, "/v1/chat/completions", Some("m0"), None, Some(0))
                .unwrap(),
        );
    });
    time("router: usage from body", n, || {
        black_box(Usage::from_openai_body(RESPONSE));
    });
    let u = Usage::from_openai_body(RESPONSE).unwrap();
    let mut fold = LabelFold::new(100);
    let sample = RequestSample {
        model: "small",
        served_model: "small",
        provider: "mock",
        consumer: "",
        status: Some(200),
        usage: Some(&u),
        duration_ms: 3,
        ttft_ms: None,
        stream_ms: None,
    };
    time("router: metric updates", n, || {
        black_box(request_updates(black_box(&sample), &mut fold));
    });
    time("router: metric values (cached)", n, || {
        let s = black_box(&sample);
        black_box((request_key(s), request_values(s)));
    });
    // A 256 KiB prompt: the per-KiB cost of reading a body once.
    let words = "the quick brown fox jumps over the lazy dog ".repeat(256 * 1024 / 44);
    let big = serde_json::to_vec(
        &serde_json::json!({"model": "small", "messages": [{"role": "user", "content": words}]}),
    )
    .unwrap();
    let kib = big.len() as f64 / 1024.0;
    let t = Instant::now();
    for _ in 0..20 {
        black_box(router::route_body(&rplan, None, Operation::ChatCompletions, &big, &[]).unwrap());
    }
    println!(
        "{:28} {:8.2} µs per KiB",
        "router: route_body 256 KiB",
        t.elapsed().as_secs_f64() * 1e6 / 20.0 / kib
    );
    let t = Instant::now();
    for _ in 0..20 {
        black_box(aigw_core::schema::openai::summarize_request_with_estimate(&big).unwrap());
    }
    println!(
        "{:28} {:8.2} µs per KiB",
        "summary + estimate 256 KiB",
        t.elapsed().as_secs_f64() * 1e6 / 20.0 / kib
    );
    let hdrs: Vec<(String, Vec<u8>)> = [
        ("host", "127.0.0.1:1234"),
        (":path", "/v1/chat/completions"),
        (":method", "POST"),
        (":scheme", "http"),
        ("content-type", "application/json"),
        ("content-length", "310"),
        ("x-forwarded-proto", "http"),
        ("x-request-id", "6f1c2d8e-3b4a-4c5d-9e8f-0a1b2c3d4e5f"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.as_bytes().to_vec()))
    .collect();
    time("headers: lossy snapshot", n, || {
        let v: Vec<(String, String)> = hdrs
            .iter()
            .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned()))
            .collect();
        black_box(v);
    });
}
