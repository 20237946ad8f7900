"""Model routing through a real Envoy: names, aliases, patterns, the
provider/model form, renames, /v1/models, and spoofed internal headers."""
from __future__ import annotations

import http.client
import json

import pytest

from harness import gateway_yaml, provider


@pytest.fixture(scope="module")
def env(mock_factory, gateway_factory):
    alpha = mock_factory("alpha")
    beta = mock_factory("beta")
    yaml = gateway_yaml(
        providers=[
            provider("alpha", alpha, keys=[{"id": "alpha-key", "value": "sk-alpha"}]),
            provider("beta", beta, keys=[{"id": "beta-key", "value": "sk-beta"}], prefix="/compatible-mode/v1"),
        ],
        models=[
            {"name": "gpt-4o-mini", "aliases": ["mini"], "target": {"provider": "alpha"}},
            {"name": "deepseek-chat", "target": {"provider": "beta"}},
            {"name": "fast", "target": {"provider": "beta", "model": "deepseek-chat"}},
            {"pattern": "qwen-*", "target": {"provider": "beta"}},
            {"pattern": "*-preview", "target": {"provider": "alpha", "model": "preview-model"}},
        ],
    )
    gw = gateway_factory(yaml)
    return gw, alpha, beta


def last(mock):
    reqs = mock.requests()
    assert reqs, f"{mock.name} received no request"
    return reqs[-1]


def ask(gw, model, **extra):
    r = gw.chat({"model": model, "messages": [{"role": "user", "content": "hello there"}], **extra})
    assert r.status == 200, r.body
    return r


def test_routes_each_model_to_its_own_provider(env):
    gw, alpha, beta = env
    r = ask(gw, "gpt-4o-mini")
    assert r.headers["x-mock-name"] == "alpha"
    assert r.json()["choices"][0]["message"]["content"] == "Hello from alpha! You asked gpt-4o-mini."
    r = ask(gw, "deepseek-chat")
    assert r.headers["x-mock-name"] == "beta"
    assert last(beta)["json"]["model"] == "deepseek-chat"


def test_response_names_the_provider_that_served_it(env):
    gw, _, _ = env
    assert ask(gw, "gpt-4o-mini").headers["x-aigw-provider"] == "alpha"
    assert ask(gw, "qwen-max").headers["x-aigw-provider"] == "beta"


def test_alias_reaches_the_target_with_the_clients_model_name(env):
    gw, alpha, _ = env
    alpha.clear()
    ask(gw, "mini")
    assert last(alpha)["json"]["model"] == "mini"


def test_target_rename_changes_only_the_model_in_the_body(env):
    gw, _, beta = env
    beta.clear()
    body = {"model": "fast", "messages": [{"role": "user", "content": "h\u00e9llo \"q\""}], "temperature": 0.25, "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]}
    r = gw.chat(body)
    assert r.status == 200
    assert r.json()["model"] == "deepseek-chat"
    received = last(beta)["json"]
    assert received["model"] == "deepseek-chat"
    assert {k: v for k, v in received.items() if k != "model"} == {k: v for k, v in body.items() if k != "model"}


def test_patterns_match_prefixes_and_suffixes_in_order(env):
    gw, alpha, beta = env
    assert ask(gw, "qwen-max").headers["x-mock-name"] == "beta"
    assert last(beta)["json"]["model"] == "qwen-max"
    assert ask(gw, "o1-preview").headers["x-mock-name"] == "alpha"
    assert last(alpha)["json"]["model"] == "preview-model"


def test_provider_slash_model_form_strips_the_provider_name(env):
    gw, alpha, beta = env
    r = ask(gw, "beta/some-new-model")
    assert r.headers["x-mock-name"] == "beta"
    assert last(beta)["json"]["model"] == "some-new-model"
    r = ask(gw, "alpha/gpt-4.1")
    assert r.headers["x-mock-name"] == "alpha"
    assert last(alpha)["json"]["model"] == "gpt-4.1"


def test_base_url_path_prefix_and_host_are_rewritten(env):
    gw, alpha, beta = env
    ask(gw, "deepseek-chat")
    req = last(beta)
    assert req["path"] == "/compatible-mode/v1/chat/completions"
    assert req["headers"]["host"] == f"127.0.0.1:{beta.port}"
    ask(gw, "gpt-4o-mini")
    assert last(alpha)["path"] == "/v1/chat/completions"


def test_embeddings_and_legacy_completions_are_routed(env):
    gw, alpha, beta = env
    r = gw.request("POST", "/v1/embeddings", {"model": "qwen-embed", "input": ["a b", "c"]})
    assert r.status == 200, r.body
    assert len(r.json()["data"]) == 2
    assert last(beta)["path"] == "/compatible-mode/v1/embeddings"
    r = gw.request("POST", "/v1/completions", {"model": "gpt-4o-mini", "prompt": "x"})
    assert last(alpha)["path"] == "/v1/completions"


def test_models_list_shows_names_and_aliases_in_openai_format(env):
    gw, _, _ = env
    r = gw.request("GET", "/v1/models")
    assert r.status == 200
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["gpt-4o-mini", "mini", "deepseek-chat", "fast"]
    assert all(m["object"] == "model" for m in body["data"])
    assert {m["id"]: m["owned_by"] for m in body["data"]}["fast"] == "beta"


def test_retrieving_one_model(env):
    gw, _, _ = env
    r = gw.request("GET", "/v1/models/deepseek-chat")
    assert r.status == 200
    assert r.json() == {"id": "deepseek-chat", "object": "model", "created": 0, "owned_by": "beta"}
    assert gw.request("GET", "/v1/models/qwen-max").json()["id"] == "qwen-max"
    r = gw.request("GET", "/v1/models/unknown")
    assert r.status == 404
    assert r.json()["error"]["code"] == "model_not_found"


def test_client_cannot_choose_the_route_with_internal_headers(env):
    gw, alpha, beta = env
    alpha.clear()
    beta.clear()
    # The client claims the route of beta's model; the body names alpha's.
    r = gw.chat(
        {"model": "gpt-4o-mini", "messages": []},
        headers={"x-aigw-route": "m1", "x-aigw-stream": "plain", "x-aigw-anything": "1"},
    )
    assert r.status == 200
    assert r.headers["x-mock-name"] == "alpha"
    assert beta.requests() == []
    assert not [h for h in last(alpha)["headers"] if h.startswith("x-aigw-")]


def test_no_internal_header_reaches_a_provider(env):
    gw, alpha, _ = env
    ask(gw, "gpt-4o-mini", stream=False)
    gw.stream({"model": "gpt-4o-mini", "stream": True, "messages": []})
    for req in alpha.requests():
        assert not [h for h in req["headers"] if h.startswith("x-aigw-")], req["headers"]
        assert "x-envoy-expected-rq-timeout-ms" not in req["headers"]


def test_providers_are_asked_for_uncompressed_responses(env):
    # Usage is read from responses (and translations rewrite them): a provider
    # must not gzip them because the client's SDK accepts gzip.
    gw, alpha, _ = env
    r = gw.chat({"model": "gpt-4o-mini", "messages": []}, headers={"accept-encoding": "gzip, deflate, br"})
    assert r.status == 200
    assert last(alpha)["headers"]["accept-encoding"] == "identity"


def test_a_header_written_only_when_needed_is_still_the_only_value(env):
    # The provider filter skips writing accept-encoding when the request already says
    # identity; a second value the client sent must not survive that shortcut.
    gw, alpha, _ = env
    conn = http.client.HTTPConnection(gw.host, gw.port, timeout=30)
    try:
        body = json.dumps({"model": "gpt-4o-mini", "messages": []}).encode()
        conn.putrequest("POST", "/v1/chat/completions", skip_accept_encoding=True)
        conn.putheader("content-type", "application/json")
        conn.putheader("content-length", str(len(body)))
        conn.putheader("accept-encoding", "identity")
        conn.putheader("accept-encoding", "gzip")
        conn.endheaders(body)
        r = conn.getresponse()
        r.read()
        assert r.status == 200
    finally:
        conn.close()
    assert last(alpha)["headers"]["accept-encoding"] == "identity"


def test_header_values_that_are_not_utf8_do_not_break_the_gateway(env):
    gw, alpha, *_ = env
    # http.client sends str header values as Latin-1: "\xe9" goes out as the byte 0xE9.
    for _ in range(4):  # enough to reach both workers
        r = gw.chat({"model": "gpt-4o-mini", "messages": []},
                    headers={"x-odd": "caf\xe9", "user-agent": "t\xff", "x-aigw-route": "m\xe9"})
        assert r.status == 200, r.body
    # Still serving afterwards: no worker lost its filters.
    for _ in range(4):
        assert gw.chat({"model": "gpt-4o-mini", "messages": []}).status == 200
    assert "panicked" not in gw.log()
