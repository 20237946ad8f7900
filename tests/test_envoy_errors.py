"""Envoy's own failures (provider unreachable, timeout) reach each client in
its own API's shape, even when the provider speaks another API; and the
access log shows the client's path, not the provider's."""
from __future__ import annotations

import time

import pytest

from harness import closed_port, gateway_yaml, provider



@pytest.fixture(scope="module")
def gw(mock_factory, gateway_factory):
    mock = mock_factory("slow")
    dead = closed_port()
    yaml = gateway_yaml(
        providers=[
            provider("openai-slow", mock, keys=[{"value": "k"}], timeout="1s"),
            {"name": "anthropic-down", "kind": "anthropic", "baseUrl": f"http://127.0.0.1:{dead}", "keys": [{"value": "a"}]},
            {"name": "anthropic-slow", "kind": "anthropic", "baseUrl": mock.url, "keys": [{"value": "a"}], "timeout": "1s"},
        ],
        models=[
            {"name": "gpt", "target": {"provider": "openai-slow"}},
            {"name": "claude-down", "target": {"provider": "anthropic-down"}},
            {"name": "claude-slow", "target": {"provider": "anthropic-slow"}},
        ],
    )
    return gateway_factory(yaml)


SLOW = {"x-mock-delay-ms": "3000"}


def openai_error(r, status, code):
    assert r.status == status, r.body
    err = r.json()["error"]
    assert (err["code"], err["type"], err["param"]) == (code, "server_error", None)


def anthropic_error(r, status, kind):
    assert r.status == status, r.body
    body = r.json()
    assert body["type"] == "error" and body["error"]["type"] == kind, body
    assert body["error"]["message"]


def test_openai_client_of_an_unreachable_anthropic_provider_gets_openai_shape(gw):
    r = gw.chat({"model": "claude-down", "messages": [{"role": "user", "content": "x"}]})
    openai_error(r, 503, "provider_unavailable")


def test_openai_client_of_a_slow_anthropic_provider_gets_openai_shape(gw):
    r = gw.chat({"model": "claude-slow", "messages": [{"role": "user", "content": "x"}]}, headers=SLOW)
    openai_error(r, 504, "provider_timeout")


def test_anthropic_client_of_a_slow_openai_provider_gets_anthropic_shape(gw):
    r = gw.request("POST", "/v1/messages", {"model": "gpt", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}, SLOW)
    anthropic_error(r, 504, "api_error")


def test_anthropic_client_of_an_unreachable_anthropic_provider_gets_anthropic_shape(gw):
    r = gw.request("POST", "/v1/messages", {"model": "claude-down", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]})
    anthropic_error(r, 503, "overloaded_error")


def test_access_log_shows_the_clients_path_and_the_providers(gw):
    gw.chat({"model": "claude-slow", "messages": [{"role": "user", "content": "x"}]})
    for _ in range(50):
        entries = [e for e in gw.access_log() if e.get("upstream_path") == "/v1/messages" and e["path"] == "/v1/chat/completions"]
        if entries:
            break
        time.sleep(0.1)
    assert entries, gw.access_log()
    assert gw.request("GET", "/v1/models").status == 200
    for _ in range(50):
        if any(e["path"] == "/v1/models" for e in gw.access_log()):
            break
        time.sleep(0.1)
    assert any(e["path"] == "/v1/models" for e in gw.access_log())
