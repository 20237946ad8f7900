"""Every error answered by the gateway, in OpenAI's envelope with the right
status, and without calling a provider when the request is at fault."""
from __future__ import annotations

import json

import pytest

from harness import NEVER_REFUSE, closed_port, gateway_yaml, provider

LIMIT = 4096



@pytest.fixture(scope="module")
def env(mock_factory, gateway_factory):
    mock = mock_factory("errs")
    dead = closed_port()
    yaml = gateway_yaml(
        providers=[
            provider("errs", mock, keys=[{"value": "sk-errs-secret"}], keyPool=NEVER_REFUSE),
            {"name": "dead", "kind": "openai-compatible", "baseUrl": f"http://127.0.0.1:{dead}/v1"},
            provider("slow", mock, timeout="1s"),
        ],
        models=[
            {"name": "m", "target": {"provider": "errs"}},
            {"name": "down", "target": {"provider": "dead"}},
            {"name": "slow", "target": {"provider": "slow"}},
        ],
    )
    yaml = yaml.replace('"listen"', f'"limits": {{"maxRequestBodyBytes": {LIMIT}}},\n  "listen"', 1)
    return gateway_factory(yaml), mock


def assert_envelope(r, status, code=None):
    assert r.status == status, (r.status, r.body)
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body = r.json()
    err = body["error"]
    assert set(err) >= {"message", "type", "code"}, body
    assert isinstance(err["message"], str) and err["message"]
    if code is not None:
        assert err["code"] == code, body
    return err


@pytest.mark.parametrize(
    "body, code",
    [
        (b"{not json", "invalid_json"),
        (b"[1, 2]", "invalid_json"),
        (b'{"model": 42}', "invalid_json"),
        (b'{"model": "m", "model": "x"}', "invalid_json"),
        (b'{"messages": []}', "missing_required_parameter"),
        (b'{"model": ""}', "invalid_model"),
    ],
)
def test_malformed_requests_are_400_without_calling_a_provider(env, body, code):
    gw, mock = env
    mock.clear()
    r = gw.request("POST", "/v1/chat/completions", body, {"content-type": "application/json"})
    assert_envelope(r, 400, code)
    assert mock.requests() == []


def test_missing_model_names_the_parameter(env):
    gw, _ = env
    err = assert_envelope(gw.chat({"messages": []}), 400, "missing_required_parameter")
    assert err["param"] == "model"
    assert err["type"] == "invalid_request_error"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_wrong_content_type_is_400(env, content_type):
    gw, mock = env
    mock.clear()
    headers = {"content-type": content_type} if content_type else {}
    r = gw.request("POST", "/v1/chat/completions", b'{"model":"m"}', headers)
    assert_envelope(r, 400, "invalid_content_type")
    assert mock.requests() == []


def test_unknown_model_is_404(env):
    gw, mock = env
    mock.clear()
    err = assert_envelope(gw.chat({"model": "no-such-model", "messages": []}), 404, "model_not_found")
    assert "no-such-model" in err["message"]
    assert err["param"] == "model"
    assert mock.requests() == []


def test_body_over_the_limit_is_413_by_content_length(env):
    gw, mock = env
    mock.clear()
    big = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x" * LIMIT}]})
    err = assert_envelope(gw.request("POST", "/v1/chat/completions", big, {"content-type": "application/json"}), 413, "request_too_large")
    assert str(LIMIT) in err["message"]
    assert mock.requests() == []


def test_body_over_the_limit_is_413_when_chunked(env):
    gw, mock = env
    mock.clear()
    big = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x" * LIMIT}]}).encode()

    def chunks():
        for i in range(0, len(big), 1000):
            yield big[i : i + 1000]

    import http.client

    conn = http.client.HTTPConnection(gw.host, gw.port, timeout=30)
    conn.request("POST", "/v1/chat/completions", body=chunks(), headers={"content-type": "application/json"}, encode_chunked=True)
    r = conn.getresponse()
    body = r.read()
    conn.close()
    assert r.status == 413, body
    assert json.loads(body)["error"]["code"] == "request_too_large"
    assert mock.requests() == []


def test_body_just_under_the_limit_is_served(env):
    gw, _ = env
    body = {"model": "m", "messages": [{"role": "user", "content": ""}]}
    pad = LIMIT - len(json.dumps(body))
    body["messages"][0]["content"] = "y" * pad
    assert len(json.dumps(body)) == LIMIT
    assert gw.chat(body).status == 200


@pytest.mark.parametrize(
    "method, path, status, code",
    [
        ("POST", "/v1/files", 404, "unknown_url"),
        ("GET", "/", 404, "unknown_url"),
        ("POST", "/v1/chat/completions/x", 404, "unknown_url"),
        ("GET", "/v1/chat/completions", 405, "method_not_allowed"),
        ("DELETE", "/v1/models", 405, "method_not_allowed"),
    ],
)
def test_unknown_paths_and_methods(env, method, path, status, code):
    gw, mock = env
    mock.clear()
    body = b"{}" if method == "POST" else None
    assert_envelope(gw.request(method, path, body, {"content-type": "application/json"}), status, code)
    assert mock.requests() == []


def test_provider_errors_keep_their_status_and_openai_shape(env):
    gw, _ = env
    err = assert_envelope(gw.chat({"model": "m", "messages": []}, headers={"x-mock-status": "429", "x-mock-retry-after": "7"}), 429)
    assert err["type"] == "rate_limit_error"
    r = gw.chat({"model": "m", "messages": []}, headers={"x-mock-status": "429", "x-mock-retry-after": "7"})
    assert r.headers.get("retry-after") == "7"
    assert_envelope(gw.chat({"model": "m", "messages": []}, headers={"x-mock-status": "500"}), 500)
    assert_envelope(gw.chat({"model": "m", "messages": []}, headers={"x-mock-status": "400"}), 400)


@pytest.mark.parametrize("fmt", ["html", "text", "empty"])
def test_non_json_provider_errors_become_openai_errors(env, fmt):
    gw, _ = env
    r = gw.chat({"model": "m", "messages": []}, headers={"x-mock-status": "502", "x-mock-error-format": fmt})
    err = assert_envelope(r, 502)
    assert "<" not in err["message"]
    assert err["type"] == "server_error"


def test_provider_errors_without_a_body_get_one(env):
    gw, _ = env
    err = assert_envelope(gw.chat({"model": "m", "messages": []}, headers={"x-mock-status": "500", "x-mock-error-format": "empty"}), 500)
    assert err["message"] == "provider errs returned HTTP 500"
    assert_envelope(gw.chat({"model": "m", "messages": []}, headers={"x-mock-status": "401", "x-mock-error-format": "empty"}), 502, "provider_auth_failed")
    r = gw.chat({"model": "m", "messages": []}, headers={"x-mock-status": "429", "x-mock-error-format": "empty", "x-mock-retry-after": "7"})
    assert_envelope(r, 429)
    assert r.headers["retry-after"] == "7"
    assert r.headers["x-aigw-provider"] == "errs"


def test_envoys_own_errors_have_the_full_openai_envelope(env):
    gw, _ = env
    err = assert_envelope(gw.chat({"model": "down", "messages": []}), 503, "provider_unavailable")
    assert set(err) == {"message", "type", "param", "code"}
    assert err["param"] is None


def test_escaped_slashes_in_paths_get_an_openai_error(env):
    gw, _ = env
    assert_envelope(gw.request("GET", "/v1/models%2Fx"), 404, "unknown_url")


def test_streaming_request_errors_are_json_too(env):
    gw, _ = env
    s = gw.stream({"model": "m", "stream": True, "messages": []}, headers={"x-mock-status": "503", "x-mock-error-format": "html"})
    assert s.status == 503
    assert json.loads(s.raw)["error"]["type"] == "server_error"


def test_provider_rejecting_the_gateways_key_is_502_not_401(env):
    gw, _ = env
    for status in ("401", "403"):
        err = assert_envelope(gw.chat({"model": "m", "messages": []}, headers={"x-mock-status": status}), 502, "provider_auth_failed")
        assert "sk-errs-secret" not in err["message"]


def test_unreachable_provider_is_503_in_openai_shape(env):
    gw, _ = env
    err = assert_envelope(gw.chat({"model": "down", "messages": []}), 503, "provider_unavailable")
    assert err["type"] == "server_error"


def test_provider_timeout_is_504_in_openai_shape(env):
    gw, _ = env
    err = assert_envelope(gw.chat({"model": "slow", "messages": []}, headers={"x-mock-delay-ms": "3000"}), 504, "provider_timeout")
    assert err["type"] == "server_error"
