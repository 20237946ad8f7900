"""Provider keys: injected the way the provider expects, from the config or
the environment; the client's credential never reaches a provider, and a
provider key never reaches the client."""
from __future__ import annotations

import pytest

from harness import NEVER_REFUSE, gateway_yaml, provider

CLIENT_SECRETS = {
    "authorization": "Bearer client-secret-1",
    "x-api-key": "client-secret-2",
    "api-key": "client-secret-3",
    "x-goog-api-key": "client-secret-4",
    "cookie": "session=client-secret-5",
    "openai-organization": "org-client-secret-6",
    "openai-project": "proj-client-secret-7",
}


@pytest.fixture(scope="module")
def env(mock_factory, gateway_factory):
    inline = mock_factory("inline")
    from_env = mock_factory("from-env")
    keyless = mock_factory("keyless")
    unset = mock_factory("unset")
    yaml = gateway_yaml(
        providers=[
            provider("inline", inline, keys=[{"id": "k-inline", "value": "sk-inline-provider-key"}], keyPool=NEVER_REFUSE),
            provider("fromenv", from_env, keys=[{"id": "k-env", "env": "AIGW_TEST_PROVIDER_KEY"}]),
            provider("keyless", keyless),
            provider("unset", unset, keys=[{"id": "k-unset", "env": "AIGW_TEST_UNSET_KEY"}]),
        ],
        models=[
            {"name": "m-inline", "target": {"provider": "inline"}},
            {"name": "m-env", "target": {"provider": "fromenv"}},
            {"name": "m-keyless", "target": {"provider": "keyless"}},
            {"name": "m-unset", "target": {"provider": "unset"}},
        ],
    )
    gw = gateway_factory(yaml, env={"AIGW_TEST_PROVIDER_KEY": "sk-env-provider-key"})
    return gw, inline, from_env, keyless, unset


def test_inline_key_is_sent_as_bearer_and_client_credentials_are_removed(env):
    gw, inline, *_ = env
    r = gw.chat({"model": "m-inline", "messages": []}, headers=CLIENT_SECRETS)
    assert r.status == 200, r.body
    req = inline.requests()[-1]
    assert req["headers"]["authorization"] == "Bearer sk-inline-provider-key"
    assert "x-api-key" not in req["headers"] and "api-key" not in req["headers"]
    assert "client-secret" not in str(req)


def test_key_from_the_environment_is_used(env):
    gw, _, from_env, *_ = env
    r = gw.chat({"model": "m-env", "messages": []}, headers=CLIENT_SECRETS)
    assert r.status == 200, r.body
    req = from_env.requests()[-1]
    assert req["headers"]["authorization"] == "Bearer sk-env-provider-key"
    assert "client-secret" not in str(req)


def test_env_keys_are_not_written_into_the_rendered_config(env):
    gw, *_ = env
    text = gw.envoy_config.read_text()
    assert "sk-env-provider-key" not in text
    assert "AIGW_TEST_PROVIDER_KEY" in text


def test_keyless_provider_gets_no_credential_at_all(env):
    gw, _, _, keyless, _ = env
    r = gw.chat({"model": "m-keyless", "messages": []}, headers=CLIENT_SECRETS)
    assert r.status == 200
    req = keyless.requests()[-1]
    assert "authorization" not in req["headers"]
    assert "client-secret" not in str(req)


def test_provider_without_a_usable_key_answers_503_without_calling_it(env):
    gw, _, _, _, unset = env
    r = gw.chat({"model": "m-unset", "messages": []})
    assert r.status == 503
    err = r.json()["error"]
    assert err["code"] == "provider_key_unavailable"
    assert "unset" in err["message"]
    assert unset.requests() == []


def test_provider_keys_never_reach_the_client(env):
    gw, inline, *_ = env
    responses = [
        gw.chat({"model": "m-inline", "messages": []}),
        gw.chat({"model": "m-inline", "messages": []}, headers={"x-mock-status": "401"}),
        gw.chat({"model": "m-inline", "messages": []}, headers={"x-mock-status": "500"}),
        gw.chat({"model": "m-inline", "messages": []}, headers={"x-mock-status": "400"}),
    ]
    for r in responses:
        assert "sk-inline-provider-key" not in r.body.decode()
        assert "sk-inline-provider-key" not in str(r.headers)
    s = gw.stream({"model": "m-inline", "stream": True, "messages": []})
    assert "sk-inline-provider-key" not in s.raw.decode()


def test_keys_never_appear_in_envoys_log(env):
    gw, *_ = env
    gw.chat({"model": "m-inline", "messages": []})
    gw.chat({"model": "m-env", "messages": []})
    log = gw.log()
    assert "sk-inline-provider-key" not in log
    assert "sk-env-provider-key" not in log
    assert "client-secret" not in log
