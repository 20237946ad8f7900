"""The demo gateway (config/demo.yaml, as `make run` serves it) driven by the
official OpenAI Python SDK."""
from __future__ import annotations

import pytest
from openai import OpenAI, APIStatusError, NotFoundError

from harness import ROOT

DEMO_MODELS = [
    "gpt-4o-mini",
    "gpt-4o-mini-2024-07-18",
    "deepseek-chat",
    "claude-sonnet-4-5",
    "gemini-2.5-flash",
    "gpt-4o",
    "deepseek-reasoner",
    "claude-opus-4-1",
    "gemini-2.5-pro",
    "chat",
    "chat-canary",
]
MOCK_SERVED = {
    "gpt-4o-mini": "mock-openai",
    "gpt-4o-mini-2024-07-18": "mock-openai",
    "deepseek-chat": "mock-deepseek",
    "claude-sonnet-4-5": "mock-anthropic",
    "gemini-2.5-flash": "mock-gemini",
}


@pytest.fixture(scope="module")
def demo(mock_factory, gateway_factory):
    openai_mock = mock_factory("mock-openai")
    deepseek_mock = mock_factory("mock-deepseek")
    anthropic_mock = mock_factory("mock-anthropic")
    gemini_mock = mock_factory("mock-gemini")
    gw = gateway_factory(
        (ROOT / "config" / "demo.yaml").read_text(),
        env={
            "MOCK_OPENAI_PORT": str(openai_mock.port),
            "MOCK_DEEPSEEK_PORT": str(deepseek_mock.port),
            "MOCK_ANTHROPIC_PORT": str(anthropic_mock.port),
            "MOCK_GEMINI_PORT": str(gemini_mock.port),
            # The real providers' keys are not set here: those models answer 503.
            "OPENAI_API_KEY": "",
            "DEEPSEEK_API_KEY": "",
            "ANTHROPIC_API_KEY": "",
            "GEMINI_API_KEY": "",
        },
    )
    client = OpenAI(base_url=gw.url + "/v1", api_key="client-key", max_retries=0, timeout=30)
    return client, gw, openai_mock, deepseek_mock


def test_models_list_shows_the_demo_models(demo):
    client, *_ = demo
    assert [m.id for m in client.models.list()] == DEMO_MODELS


def test_the_demo_fallback_chain_serves_from_its_first_target(demo):
    client, *_ = demo
    r = client.chat.completions.with_raw_response.create(model="chat", messages=[{"role": "user", "content": "Say hello"}])
    assert r.headers["x-aigw-provider"] == "mock-deepseek"
    assert r.parse().choices[0].message.content == "Hello from mock-deepseek! You asked deepseek-chat."


@pytest.mark.parametrize("model", list(MOCK_SERVED))
def test_chat_completion_for_each_mock_model(demo, model):
    client, *_ = demo
    r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Say hello"}])
    provider = MOCK_SERVED[model]
    assert r.choices[0].message.content == f"Hello from {provider}! You asked {model}."
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.prompt_tokens == 3 and r.usage.completion_tokens == 6 and r.usage.total_tokens == 9


@pytest.mark.parametrize("model", list(MOCK_SERVED))
def test_streaming_without_usage_option(demo, model):
    client, *_ = demo
    chunks = list(client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == f"Hello from {MOCK_SERVED[model]}! You asked {model}."
    assert all(c.choices for c in chunks), "a usage-only chunk reached a client that did not ask for it"
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


@pytest.mark.parametrize("model", list(MOCK_SERVED))
def test_streaming_with_usage_option(demo, model):
    client, *_ = demo
    chunks = list(
        client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    last = chunks[-1]
    assert last.choices == []
    assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens) == (2, 6, 8)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == f"Hello from {MOCK_SERVED[model]}! You asked {model}."


def test_the_clients_key_is_replaced_by_the_providers(demo):
    client, _, openai_mock, deepseek_mock = demo
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    client.chat.completions.create(model="deepseek-chat", messages=[{"role": "user", "content": "x"}])
    assert openai_mock.requests()[-1]["headers"]["authorization"] == "Bearer sk-mock-openai"
    assert deepseek_mock.requests()[-1]["headers"]["authorization"] == "Bearer sk-mock-deepseek"
    assert "client-key" not in str(openai_mock.requests()) + str(deepseek_mock.requests())


def test_provider_prefix_form_reaches_a_mock(demo):
    client, *_ = demo
    r = client.chat.completions.create(model="mock-deepseek/deepseek-v4", messages=[{"role": "user", "content": "x"}])
    assert r.choices[0].message.content == "Hello from mock-deepseek! You asked deepseek-v4."


def test_sdk_sees_gateway_errors_with_their_status(demo):
    client, *_ = demo
    with pytest.raises(NotFoundError) as e:
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    assert e.value.status_code == 404
    assert e.value.body["code"] == "model_not_found"
    # A real provider whose key is not set (or that cannot be reached from here).
    with pytest.raises(APIStatusError) as e:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert e.value.status_code == 503
    assert e.value.body["code"] in ("provider_key_unavailable", "provider_unavailable")
