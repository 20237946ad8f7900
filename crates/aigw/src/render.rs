//! Renders a checked gateway into a complete Envoy bootstrap.
//!
//! Request path: listener → HTTP connection manager → aigw router filter
//! (sets `x-aigw-route`, Envoy re-matches) → Envoy router → the provider's
//! cluster, whose upstream HTTP filters are the aigw provider filter and the
//! upstream codec.

use std::path::{Path, PathBuf};

use aigw_core::error::openai_error_body;
use aigw_core::headers;
use serde_json::{json, Value};

use aigw_core::config::provider::{HOST_METADATA_NAMESPACE, HOST_METADATA_PROVIDER};

use crate::gateway::{CompiledProvider, FallbackOn, Gateway, RouteSpec, SocketAddr};

pub const ROUTER_WASM: &str = "aigw_router.wasm";
pub const PROVIDER_WASM: &str = "aigw_provider.wasm";

/// Where the filters' `.wasm` files are, as Envoy will see them.
#[derive(Debug, Clone)]
pub struct RenderOptions {
    pub wasm_dir: PathBuf,
}

pub fn bootstrap(g: &Gateway, opts: &RenderOptions) -> Value {
    let mut clusters: Vec<Value> = Vec::new();
    for p in &g.providers {
        clusters.push(cluster(g, p, opts));
        if let Some(name) = &p.filter.cluster {
            clusters.push(health_check_cluster(g, p, opts, name));
        }
    }
    for r in g.routes.iter().filter(|r| r.members.len() > 1) {
        clusters.push(chain_cluster(g, r, opts));
    }
    json!({
        "node": {"id": "aigw", "cluster": "aigw"},
        "admin": {"address": socket(&g.admin)},
        "stats_config": stats_config(),
        "static_resources": {
            "listeners": [listener(g, opts)],
            "clusters": clusters,
        },
    })
}

/// Envoy's buffer limit: above the body limit so the router filter, not Envoy,
/// answers an oversized request (with a 413 in the client's shape).
fn buffer_limit(g: &Gateway) -> u64 {
    let body = g.file.limits.max_request_body_bytes as u64;
    (body + 1024 * 1024).max(4 * 1024 * 1024)
}

fn socket(a: &SocketAddr) -> Value {
    json!({"socket_address": {"address": a.host, "port_value": a.port}})
}

fn listener(g: &Gateway, opts: &RenderOptions) -> Value {
    let router_config = serde_json::to_string(&g.router).unwrap_or_default();
    let mut routes: Vec<Value> = g
        .routes
        .iter()
        .filter_map(|r| {
            let mut route = json!({
                "timeout": r.timeout.proto(),
                "idle_timeout": g.file.timeouts.idle.proto(),
            });
            match r.members.as_slice() {
                [] => return None,
                [one] => {
                    let p = g.providers.get(*one)?;
                    route["cluster"] = json!(p.cluster);
                    let retries = p.entry.key_retries();
                    if retries > 0 {
                        route["retry_policy"] = key_retry_policy(retries);
                    }
                }
                chain => {
                    route["cluster"] = json!(r.chain_cluster());
                    route["retry_policy"] = fallback_retry_policy(r, chain.len());
                }
            }
            Some(json!({
                "name": format!("{} ({})", r.id, r.describes),
                "match": {"prefix": "/", "headers": [{"name": headers::ROUTE, "string_match": {"exact": r.id}}]},
                "route": route,
            }))
        })
        .collect();
    let not_routed = openai_error_body(
        "invalid_request_error",
        "no route matched this request",
        None,
        Some("not_routed"),
    );
    routes.push(json!({
        "name": "none",
        "match": {"prefix": "/"},
        "direct_response": {"status": 404, "body": {"inline_string": String::from_utf8_lossy(&not_routed)}},
        "response_headers_to_add": [{"header": {"key": "content-type", "value": "application/json"}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}],
    }));
    json!({
        "name": "aigw",
        "address": socket(&g.listen),
        "per_connection_buffer_limit_bytes": buffer_limit(g),
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": "aigw",
                "codec_type": "AUTO",
                "stream_idle_timeout": g.file.timeouts.idle.proto(),
                "normalize_path": true,
                "merge_slashes": true,
                "path_with_escaped_slashes_action": "KEEP_UNCHANGED",
                "access_log": [access_log()],
                "local_reply_config": local_reply_config(),
                "route_config": {
                    "name": "aigw",
                    "virtual_hosts": [{"name": "aigw", "domains": ["*"], "routes": routes}],
                },
                "http_filters": [
                    wasm_filter("aigw-router", &opts.wasm_dir.join(ROUTER_WASM), &router_config, &[]),
                    {
                        "name": "envoy.filters.http.header_to_metadata",
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.http.header_to_metadata.v3.Config",
                            "request_rules": [{
                                "header": headers::CLIENT_API,
                                "on_header_present": {"metadata_namespace": "aigw", "key": "client_api", "type": "STRING"},
                                "remove": false,
                            }],
                        },
                    },
                    {
                        "name": "envoy.filters.http.router",
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
                            "suppress_envoy_headers": true,
                        },
                    },
                ],
            },
        }]}],
    })
}

/// Envoy's retries for a provider with several keys: a 429, a refused key
/// (which the provider filter answers as 502), a 5xx or a connection failure
/// is retried at once, on another key: the provider filter never gives an
/// attempt a key this request already tried. Only before the response starts,
/// so a stream is retried before its first byte or not at all.
fn key_retry_policy(retries: u32) -> Value {
    json!({
        "retry_on": "retriable-status-codes,reset,connect-failure,refused-stream",
        "retriable_status_codes": [429, 500, 502, 503, 504],
        "num_retries": retries,
        "retry_back_off": {"base_interval": "0.005s", "max_interval": "0.025s"},
    })
}

/// Envoy's retries along a fallback chain: each attempt goes to the next
/// priority of the chain's aggregate cluster (`previous_priorities`), so each
/// target is tried once, in order. Only before the response starts.
fn fallback_retry_policy(r: &RouteSpec, members: usize) -> Value {
    let mut on: Vec<&str> = Vec::new();
    let mut codes: Vec<u16> = Vec::new();
    for c in &r.fallback_on {
        match c {
            FallbackOn::ServerError => codes.extend([500, 502, 503, 504, 529]),
            FallbackOn::RateLimited => codes.push(429),
            FallbackOn::Unreachable => on.extend(["connect-failure", "refused-stream"]),
            // Envoy retries a per-try timeout as a reset.
            FallbackOn::Timeout => on.push("reset"),
        }
    }
    codes.sort_unstable();
    codes.dedup();
    if !codes.is_empty() {
        on.push("retriable-status-codes");
    }
    let mut policy = json!({
        "retry_on": on.join(","),
        "num_retries": members.saturating_sub(1),
        "retry_priority": {
            "name": "envoy.retry_priorities.previous_priorities",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig",
                "update_frequency": 1,
            },
        },
        "retry_back_off": {"base_interval": "0.005s", "max_interval": "0.025s"},
    });
    if !codes.is_empty() {
        policy["retriable_status_codes"] = json!(codes);
    }
    if let Some(t) = r.per_try_timeout {
        policy["per_try_timeout"] = json!(t.proto());
    }
    policy
}

/// A fallback chain's cluster: an aggregate of its providers' clusters, in
/// order (each one a priority). Envoy runs the upstream filters of the
/// aggregate, not of the member clusters: the provider filter here knows
/// every provider of the chain and finds each attempt's own in the metadata
/// of the host Envoy picked.
fn chain_cluster(g: &Gateway, r: &RouteSpec, opts: &RenderOptions) -> Value {
    let members: Vec<&CompiledProvider> = r
        .members
        .iter()
        .filter_map(|&i| g.providers.get(i))
        .collect();
    let refusals_move_on = r
        .fallback_on
        .iter()
        .any(|c| matches!(c, FallbackOn::ServerError | FallbackOn::RateLimited));
    let config = json!({
        "chain": members.iter().map(|p| &p.filter).collect::<Vec<_>>(),
        "refusalsMoveOn": refusals_move_on,
    });
    let config = serde_json::to_string(&config).unwrap_or_default();
    json!({
        "name": r.chain_cluster(),
        "connect_timeout": g.file.timeouts.connect.proto(),
        "lb_policy": "CLUSTER_PROVIDED",
        "cluster_type": {
            "name": "envoy.clusters.aggregate",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.clusters.aggregate.v3.ClusterConfig",
                "clusters": members.iter().map(|p| p.cluster.as_str()).collect::<Vec<_>>(),
            },
        },
        // Retries along the chain are bounded per request (one per target),
        // not by Envoy's circuit breaker: a retry budget here would be
        // computed from the member clusters' active requests and cap
        // fallbacks at its minimum (seen on Envoy 1.40).
        "circuit_breakers": {"thresholds": [{
            "priority": "DEFAULT",
            "max_retries": 1_000_000,
        }]},
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http_protocol_options": {}},
                "http_filters": [
                    wasm_filter("aigw-provider", &opts.wasm_dir.join(PROVIDER_WASM), &config, &all_env_keys(g)),
                    {
                        "name": "envoy.filters.http.upstream_codec",
                        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec"},
                    },
                ],
            },
        },
    })
}

/// Every environment variable a provider key comes from: all provider
/// filters share one VM per worker, so they declare the same environment.
fn all_env_keys(g: &Gateway) -> Vec<String> {
    let mut all: Vec<String> = g
        .providers
        .iter()
        .flat_map(|p| p.env_keys.iter().cloned())
        .collect();
    all.sort();
    all.dedup();
    all
}

/// Prometheus labels for the filters' metrics, whose names carry them as
/// `.<label>.<value>` pairs (e.g. `aigw.key_requests_total.provider.p.key.k`).
fn stats_config() -> Value {
    let tag = |name: &str| json!({"tag_name": name, "regex": format!(r"^wasmcustom\.aigw\..*?(\.{name}\.([^.]+))(?:\.|$)")});
    let tags: Vec<Value> = aigw_core::metrics::LABELS.iter().map(|l| tag(l)).collect();
    json!({
        "stats_tags": tags,
        // The gateway's histograms are in milliseconds: finer buckets than
        // Envoy's defaults at the low end, where time to first token lives.
        "histogram_bucket_settings": [{
            "match": {"prefix": "wasmcustom.aigw."},
            "buckets": [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000,
                        30000, 60000, 120000, 300000, 600000, 1800000],
        }],
    })
}

/// Every request as one JSON line on Envoy's stdout. No header that can carry
/// a credential is logged.
fn access_log() -> Value {
    json!({
        "name": "envoy.access_loggers.stdout",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
            "log_format": {"json_format": {
                "time": "%START_TIME%",
                "method": "%REQ(:METHOD)%",
                "path": "%FILTER_STATE(wasm.aigw_client_path:PLAIN)%",
                "upstream_path": "%REQ(:PATH)%",
                "status": "%RESPONSE_CODE%",
                "flags": "%RESPONSE_FLAGS%",
                "details": "%RESPONSE_CODE_DETAILS%",
                "consumer": "%FILTER_STATE(wasm.aigw_consumer:PLAIN)%",
                "model": "%FILTER_STATE(wasm.aigw_model:PLAIN)%",
                "served_model": "%RESP(X-AIGW-MODEL)%",
                "input_tokens": "%FILTER_STATE(wasm.aigw_input_tokens:PLAIN)%",
                "output_tokens": "%FILTER_STATE(wasm.aigw_output_tokens:PLAIN)%",
                "total_tokens": "%FILTER_STATE(wasm.aigw_total_tokens:PLAIN)%",
                "tokens_source": "%FILTER_STATE(wasm.aigw_tokens_source:PLAIN)%",
                "ttft_ms": "%FILTER_STATE(wasm.aigw_ttft_ms:PLAIN)%",
                "route": "%ROUTE_NAME%",
                "cluster": "%UPSTREAM_CLUSTER%",
                "provider": "%RESP(X-AIGW-PROVIDER)%",
                "duration_ms": "%DURATION%",
                "upstream_ms": "%RESPONSE_DURATION%",
                "bytes_in": "%BYTES_RECEIVED%",
                "bytes_out": "%BYTES_SENT%",
                "request_id": "%REQ(X-REQUEST-ID)%",
                "user_agent": "%REQ(USER-AGENT)%",
            }},
        },
    })
}

/// Envoy's own replies (provider unreachable, timeout, reset) in OpenAI's
/// error shape. Replies of the aigw filters carry no response flag and are
/// already in shape, so these mappers leave them alone.
fn local_reply_config() -> Value {
    let openai = |kind: &str, code: &str| json!({"json_format": {"error": {"message": "%LOCAL_REPLY_BODY%", "type": kind, "param": null, "code": code}}});
    let anthropic = |kind: &str| json!({"json_format": {"type": "error", "error": {"type": kind, "message": "%LOCAL_REPLY_BODY%"}}});
    // Anthropic clients (`/v1/messages...`) get Anthropic's envelope.
    // The client's API is in dynamic metadata (`aigw.client_api`), put there
    // from the router filter's `x-aigw-api`: `:path` is the provider's by now.
    let for_anthropic = |flags: Value| {
        json!({"and_filter": {"filters": [
            {"metadata_filter": {
                "matcher": {"filter": "aigw", "path": [{"key": "client_api"}], "value": {"string_match": {"exact": "anthropic"}}},
                "match_if_key_not_found": false,
            }},
            {"response_flag_filter": flags},
        ]}})
    };
    let timeout = json!({"flags": ["UT"]});
    let unavailable = json!({"flags": ["UF", "UH", "URX", "UO", "UC", "UR", "NC", "UMSDR", "LR"]});
    let any = json!({});
    json!({"mappers": [
        {"filter": for_anthropic(timeout.clone()), "status_code": 504, "body_format_override": anthropic("api_error")},
        {"filter": for_anthropic(unavailable.clone()), "body_format_override": anthropic("overloaded_error")},
        {"filter": for_anthropic(any.clone()), "body_format_override": anthropic("api_error")},
        {"filter": {"response_flag_filter": timeout}, "status_code": 504, "body_format_override": openai("server_error", "provider_timeout")},
        {"filter": {"response_flag_filter": unavailable}, "body_format_override": openai("server_error", "provider_unavailable")},
        {"filter": {"response_flag_filter": any}, "body_format_override": openai("server_error", "gateway_error")},
    ]})
}

fn cluster(g: &Gateway, p: &CompiledProvider, opts: &RenderOptions) -> Value {
    // All provider filters share one VM per worker: same code, same environment.
    let env_keys = all_env_keys(g);
    let filter_config = serde_json::to_string(&p.filter).unwrap_or_default();
    let protocol = if p.url.is_tls() {
        json!({"auto_config": {"http_protocol_options": {}, "http2_protocol_options": {}}})
    } else {
        json!({"explicit_http_config": {"http_protocol_options": {}}})
    };
    let mut c = json!({
        "name": p.cluster,
        "type": if p.url.host_is_ip() { "STATIC" } else { "LOGICAL_DNS" },
        "connect_timeout": g.file.timeouts.connect.proto(),
        // Retries (on another key) are bounded by a budget, not Envoy's
        // default of 3 in flight per cluster: 25 % of active requests, and
        // at least 10 at a time.
        "circuit_breakers": {"thresholds": [{
            "priority": "DEFAULT",
            "retry_budget": {"budget_percent": {"value": 25.0}, "min_retry_concurrency": 10},
        }]},
        "per_connection_buffer_limit_bytes": buffer_limit(g),
        "load_assignment": {
            "cluster_name": p.cluster,
            "endpoints": [{"lb_endpoints": [{
                "endpoint": {"address": {"socket_address": {
                    "address": p.url.host, "port_value": p.url.port}}},
                // Names the provider to a fallback chain's provider filter.
                "metadata": {"filter_metadata": {
                    (HOST_METADATA_NAMESPACE): {(HOST_METADATA_PROVIDER): p.entry.name}}},
            }]}],
        },
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "common_http_protocol_options": {"idle_timeout": "60s"},
                "http_filters": [
                    wasm_filter("aigw-provider", &opts.wasm_dir.join(PROVIDER_WASM), &filter_config, &env_keys),
                    {
                        "name": "envoy.filters.http.upstream_codec",
                        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec"},
                    },
                ],
            },
        },
    });
    if let (Some(obj), Some(protocol)) = (
        c.pointer_mut("/typed_extension_protocol_options/envoy.extensions.upstreams.http.v3.HttpProtocolOptions")
            .and_then(Value::as_object_mut),
        protocol.as_object(),
    ) {
        for (k, v) in protocol {
            obj.insert(k.clone(), v.clone());
        }
    }
    if !p.url.host_is_ip() {
        c["dns_lookup_family"] = json!("V4_PREFERRED");
    }
    if p.url.is_tls() {
        c["transport_socket"] = json!({
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                "sni": p.url.host,
                "common_tls_context": {"validation_context": {
                    "trusted_ca": {"filename": g.file.tls.ca_file},
                    "match_typed_subject_alt_names": [{"san_type": "DNS", "matcher": {"exact": p.url.host}}],
                }},
            },
        });
    }
    c
}

/// The twin of a provider's cluster that carries the key pool's health-check
/// probes: same endpoint, TLS and protocol, no aigw filter (the probes are
/// complete when they leave the filter's VM).
fn health_check_cluster(
    g: &Gateway,
    p: &CompiledProvider,
    opts: &RenderOptions,
    name: &str,
) -> Value {
    let mut c = cluster(g, p, opts);
    c["name"] = json!(name);
    c["load_assignment"]["cluster_name"] = json!(name);
    if let Some(options) = c
        .pointer_mut("/typed_extension_protocol_options/envoy.extensions.upstreams.http.v3.HttpProtocolOptions")
        .and_then(Value::as_object_mut)
    {
        options.remove("http_filters");
    }
    c
}

/// A proxy-wasm HTTP filter. `FAIL_CLOSED`: if the VM fails, requests fail
/// (with 503) rather than pass unfiltered, so no request ever skips the
/// gateway's checks or reaches a provider with the client's credentials.
fn wasm_filter(name: &str, code: &Path, configuration: &str, env_keys: &[String]) -> Value {
    let mut vm = json!({
        "vm_id": "",
        "runtime": "envoy.wasm.runtime.v8",
        "code": {"local": {"filename": code.to_string_lossy()}},
    });
    if !env_keys.is_empty() {
        vm["environment_variables"] = json!({"host_env_keys": env_keys});
    }
    json!({
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": name,
                "root_id": "",
                "failure_policy": "FAIL_CLOSED",
                "allow_on_headers_stop_iteration": true,
                "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": configuration},
                "vm_config": vm,
            },
        },
    })
}

/// The bootstrap as YAML, with a header saying where it came from.
pub fn to_yaml(bootstrap: &Value, source: &str) -> Result<String, String> {
    let body = serde_saphyr::to_string(bootstrap).map_err(|e| format!("cannot write YAML: {e}"))?;
    Ok(format!("# Envoy bootstrap rendered by `aigw render` from {source}. Do not edit: edit the gateway file and render again.\n{body}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::load;

    const GATEWAY: &str = r#"
providers:
  - name: mock
    kind: openai-compatible
    baseUrl: http://127.0.0.1:9101/v1
    keys: [{value: sk-inline}]
  - name: openai
    kind: openai-compatible
    baseUrl: https://api.openai.com/v1
    keys: [{env: OPENAI_API_KEY}]
models:
  - name: gpt-4o-mini
    target: {provider: mock}
"#;

    fn render() -> Value {
        let g = load(GATEWAY, &|_| None).unwrap();
        bootstrap(
            &g,
            &RenderOptions {
                wasm_dir: "/w".into(),
            },
        )
    }

    #[test]
    fn a_chain_is_an_aggregate_cluster_retried_across_priorities() {
        let g = load(
            r#"
providers:
  - {name: a, kind: openai-compatible, baseUrl: "http://127.0.0.1:1/v1", keys: [{value: sk-a}]}
  - {name: b, kind: anthropic, baseUrl: "http://127.0.0.1:2", keys: [{value: sk-b}]}
models:
  - name: chat
    target: {provider: a}
    fallback: [{provider: b, model: claude-x}]
    fallbackOn: [server-error, rate-limited, unreachable, timeout]
    perTryTimeout: 5s
"#,
            &|_| None,
        )
        .unwrap();
        let b = bootstrap(
            &g,
            &RenderOptions {
                wasm_dir: "/w".into(),
            },
        );
        let routes = b.pointer("/static_resources/listeners/0/filter_chains/0/filters/0/typed_config/route_config/virtual_hosts/0/routes").unwrap();
        let chat = routes
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"].as_str().unwrap().starts_with("m0 "))
            .unwrap();
        assert_eq!(chat["route"]["cluster"], "aigw-chain-m0");
        let retry = &chat["route"]["retry_policy"];
        assert_eq!(retry["num_retries"], 1);
        assert_eq!(
            retry["retry_on"],
            "connect-failure,refused-stream,reset,retriable-status-codes"
        );
        assert_eq!(
            retry["retriable_status_codes"],
            json!([429, 500, 502, 503, 504, 529])
        );
        assert_eq!(retry["per_try_timeout"], "5s");
        assert_eq!(
            retry["retry_priority"]["name"],
            "envoy.retry_priorities.previous_priorities"
        );
        let clusters = b["static_resources"]["clusters"].as_array().unwrap();
        let chain = clusters
            .iter()
            .find(|c| c["name"] == "aigw-chain-m0")
            .unwrap();
        assert_eq!(
            chain["cluster_type"]["typed_config"]["clusters"],
            json!(["aigw-provider-a", "aigw-provider-b"])
        );
        let filters = &chain["typed_extension_protocol_options"]
            ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]["http_filters"];
        let config: Value = serde_json::from_str(
            filters[0]["typed_config"]["config"]["configuration"]["value"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(config["chain"][0]["name"], "a");
        assert_eq!(config["chain"][1]["routes"]["m0"]["model"], "claude-x");
        // Every provider's endpoint names its provider for the chain's filter.
        let a = clusters
            .iter()
            .find(|c| c["name"] == "aigw-provider-a")
            .unwrap();
        assert_eq!(
            a.pointer("/load_assignment/endpoints/0/lb_endpoints/0/metadata/filter_metadata/aigw/provider"),
            Some(&json!("a"))
        );
    }

    #[test]
    fn routes_match_the_route_header_and_end_in_a_404() {
        let b = render();
        let routes = b.pointer("/static_resources/listeners/0/filter_chains/0/filters/0/typed_config/route_config/virtual_hosts/0/routes").unwrap();
        let routes = routes.as_array().unwrap();
        assert_eq!(routes.len(), 4);
        assert_eq!(
            routes[0]["match"]["headers"][0]["string_match"]["exact"],
            "m0"
        );
        assert_eq!(routes[0]["route"]["cluster"], "aigw-provider-mock");
        assert_eq!(
            routes[2]["match"]["headers"][0]["string_match"]["exact"],
            "provider:openai"
        );
        assert_eq!(routes[3]["direct_response"]["status"], 404);
    }

    #[test]
    fn tls_providers_verify_certificates_and_get_env_keys() {
        let b = render();
        let openai = &b["static_resources"]["clusters"][1];
        assert_eq!(openai["type"], "LOGICAL_DNS");
        assert_eq!(
            openai["transport_socket"]["typed_config"]["sni"],
            "api.openai.com"
        );
        let filters = &openai["typed_extension_protocol_options"]
            ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]["http_filters"];
        let vm = &filters[0]["typed_config"]["config"]["vm_config"];
        assert_eq!(
            vm["environment_variables"]["host_env_keys"],
            json!(["OPENAI_API_KEY"])
        );
        assert_eq!(filters[1]["name"], "envoy.filters.http.upstream_codec");
        let mock = &b["static_resources"]["clusters"][0];
        assert_eq!(mock["type"], "STATIC");
        assert!(mock.get("transport_socket").is_none());
    }

    #[test]
    fn every_wasm_filter_fails_closed() {
        let text = serde_json::to_string(&render()).unwrap();
        assert_eq!(
            text.matches("\"failure_policy\":\"FAIL_CLOSED\"").count(),
            3
        );
        assert!(!text.contains("FAIL_OPEN"));
    }

    #[test]
    fn env_keys_are_never_rendered_as_values() {
        let g = load(GATEWAY, &|n| {
            (n == "OPENAI_API_KEY").then(|| "sk-from-environment".to_string())
        })
        .unwrap();
        let text = serde_json::to_string(&bootstrap(
            &g,
            &RenderOptions {
                wasm_dir: "/w".into(),
            },
        ))
        .unwrap();
        assert!(!text.contains("sk-from-environment"));
    }

    #[test]
    fn yaml_output_round_trips() {
        let b = render();
        let y = to_yaml(&b, "test").unwrap();
        let back: Value = serde_saphyr::from_str(&y).unwrap();
        assert_eq!(back, b);
    }
}
