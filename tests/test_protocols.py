"""Provider protocols through a real Envoy: OpenAI clients reaching Anthropic,
Gemini and Azure OpenAI providers, and Anthropic clients (the official
`anthropic` SDK) reaching every provider, plain and streamed, with tools."""
from __future__ import annotations

import json

import anthropic
import pytest
from openai import OpenAI

from harness import NEVER_REFUSE, gateway_yaml, provider

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
    },
}
WEATHER_ARGS = {"location": "Paris", "unit": "celsius"}


@pytest.fixture(scope="module")
def env(mock_factory, gateway_factory):
    mock = mock_factory("proto")
    yaml = gateway_yaml(
        providers=[
            provider("oai", mock, keys=[{"value": "sk-oai"}], keyPool=NEVER_REFUSE),
            {"name": "claude", "kind": "anthropic", "baseUrl": mock.url, "keys": [{"value": "sk-ant-provider"}], "keyPool": NEVER_REFUSE},
            {"name": "gem", "kind": "gemini", "baseUrl": mock.url + "/v1beta", "keys": [{"value": "gem-provider-key"}], "keyPool": NEVER_REFUSE},
            {"name": "azure", "kind": "azure-openai", "baseUrl": mock.url, "apiVersion": "2024-10-21", "keys": [{"value": "az-provider-key"}]},
        ],
        models=[
            {"name": "gpt-4o-mini", "target": {"provider": "oai"}},
            {"name": "claude-sonnet-4-5", "target": {"provider": "claude"}},
            {"name": "claude-alias", "target": {"provider": "claude", "model": "claude-upstream"}},
            {"name": "gemini-2.5-flash", "target": {"provider": "gem"}},
            {"name": "azure-4o", "target": {"provider": "azure", "model": "prod-deployment"}},
        ],
    )
    gw = gateway_factory(yaml)
    oa = OpenAI(base_url=gw.url + "/v1", api_key="client-openai-key", max_retries=0, timeout=30)
    an = anthropic.Anthropic(base_url=gw.url, api_key="client-anthropic-key", max_retries=0, timeout=30)
    return gw, mock, oa, an


def last(mock):
    reqs = mock.requests()
    assert reqs, "the provider received no request"
    return reqs[-1]


def no_client_key(req):
    text = json.dumps(req)
    assert "client-openai-key" not in text and "client-anthropic-key" not in text


# --- OpenAI clients -> Anthropic ------------------------------------------------


def test_openai_client_reaches_an_anthropic_provider(env):
    gw, mock, oa, _ = env
    r = oa.chat.completions.create(
        model="claude-sonnet-4-5",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello there"}],
    )
    assert r.choices[0].message.content == "Hello from proto! You asked claude-sonnet-4-5."
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.completion_tokens == 6
    assert r.usage.total_tokens == r.usage.prompt_tokens + 6
    req = last(mock)
    assert req["path"] == "/v1/messages"
    assert req["headers"]["x-api-key"] == "sk-ant-provider"
    assert req["headers"]["anthropic-version"] == "2023-06-01"
    assert "authorization" not in req["headers"]
    body = req["json"]
    assert body["system"] in ("Be brief.", [{"type": "text", "text": "Be brief."}])
    assert body["messages"] == [{"role": "user", "content": "hello there"}] or body["messages"][0]["role"] == "user"
    assert body["max_tokens"] == 4096
    no_client_key(req)


def test_openai_client_streams_from_an_anthropic_provider(env):
    _, _, oa, _ = env
    chunks = list(oa.chat.completions.create(model="claude-sonnet-4-5", messages=[{"role": "user", "content": "hi"}], stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from proto! You asked claude-sonnet-4-5."
    assert all(c.choices for c in chunks), "usage chunk reached a client that did not ask for it"
    assert chunks[-1].choices[0].finish_reason == "stop"
    chunks = list(
        oa.chat.completions.create(
            model="claude-sonnet-4-5", messages=[{"role": "user", "content": "hi"}], stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens == 6


def test_target_model_rename_reaches_anthropic(env):
    _, mock, oa, _ = env
    r = oa.chat.completions.create(model="claude-alias", messages=[{"role": "user", "content": "hi"}], max_tokens=50)
    assert r.choices[0].message.content == "Hello from proto! You asked claude-upstream."
    assert last(mock)["json"]["max_tokens"] == 50


def test_openai_tool_calls_through_anthropic(env):
    _, mock, oa, _ = env
    messages = [{"role": "user", "content": "weather in Paris?"}]
    r = oa.chat.completions.create(
        model="claude-sonnet-4-5", messages=messages, tools=[WEATHER_TOOL], extra_headers={"x-mock-tool-call": "get_weather"}
    )
    call = r.choices[0].message.tool_calls[0]
    assert r.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == WEATHER_ARGS
    sent = last(mock)["json"]
    assert sent["tools"][0]["name"] == "get_weather"
    assert sent["tools"][0]["input_schema"] == WEATHER_TOOL["function"]["parameters"]
    # The tool result goes back as Anthropic's tool_result.
    messages += [
        {"role": "assistant", "content": None, "tool_calls": [{"id": call.id, "type": "function", "function": {"name": "get_weather", "arguments": call.function.arguments}}]},
        {"role": "tool", "tool_call_id": call.id, "content": "18C and sunny"},
    ]
    r = oa.chat.completions.create(model="claude-sonnet-4-5", messages=messages, tools=[WEATHER_TOOL])
    assert r.choices[0].message.content.startswith("Hello from proto!")
    sent = last(mock)["json"]["messages"]
    assert sent[1]["content"][0]["type"] == "tool_use" and sent[1]["content"][0]["id"] == call.id
    assert sent[2]["content"][0]["type"] == "tool_result" and sent[2]["content"][0]["tool_use_id"] == call.id


def test_openai_streamed_tool_calls_through_anthropic(env):
    _, _, oa, _ = env
    chunks = list(
        oa.chat.completions.create(
            model="claude-sonnet-4-5", messages=[{"role": "user", "content": "weather?"}], tools=[WEATHER_TOOL], stream=True,
            extra_headers={"x-mock-tool-call": "get_weather"},
        )
    )
    deltas = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert deltas[0].function.name == "get_weather" and deltas[0].id
    args = "".join(d.function.arguments or "" for d in deltas)
    assert json.loads(args) == WEATHER_ARGS
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]


def test_anthropic_errors_reach_openai_clients_in_openai_shape(env):
    gw, _, _, _ = env
    r = gw.chat({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "x"}]}, headers={"x-mock-status": "429"})
    assert r.status == 429
    assert r.json()["error"]["type"] == "rate_limit_error"
    assert r.json()["error"]["message"] == "mock error 429"
    r = gw.chat({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "x"}]}, headers={"x-mock-status": "529"})
    assert r.status == 529
    assert set(r.json()["error"]) >= {"message", "type"}


def test_unsupported_openai_input_is_rejected_before_calling_anthropic(env):
    gw, mock, _, _ = env
    mock.clear()
    r = gw.chat({"model": "claude-sonnet-4-5", "n": 3, "messages": [{"role": "user", "content": "x"}]})
    assert r.status == 400
    assert r.json()["error"]["param"] == "n"
    assert mock.requests() == []


# --- OpenAI clients -> Gemini ---------------------------------------------------


def test_openai_client_reaches_a_gemini_provider(env):
    _, mock, oa, _ = env
    r = oa.chat.completions.create(
        model="gemini-2.5-flash", messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"}], temperature=0.3
    )
    assert r.choices[0].message.content == "Hello from proto! You asked gemini-2.5-flash."
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.completion_tokens == 6
    req = last(mock)
    assert req["path"] == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert req["headers"]["x-goog-api-key"] == "gem-provider-key"
    assert "authorization" not in req["headers"]
    assert req["json"]["systemInstruction"]["parts"][0]["text"] == "Be brief."
    assert req["json"]["generationConfig"]["temperature"] == 0.3
    no_client_key(req)


def test_openai_client_streams_from_a_gemini_provider(env):
    _, mock, oa, _ = env
    chunks = list(
        oa.chat.completions.create(
            model="gemini-2.5-flash", messages=[{"role": "user", "content": "hi"}], stream=True, stream_options={"include_usage": True}
        )
    )
    req = last(mock)
    assert req["path"] == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert "alt=sse" in req["query"]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from proto! You asked gemini-2.5-flash."
    assert chunks[-1].usage.completion_tokens == 6


def test_openai_tool_calls_through_gemini(env):
    _, mock, oa, _ = env
    r = oa.chat.completions.create(
        model="gemini-2.5-flash", messages=[{"role": "user", "content": "weather?"}], tools=[WEATHER_TOOL],
        extra_headers={"x-mock-tool-call": "get_weather"},
    )
    call = r.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == WEATHER_ARGS
    assert r.choices[0].finish_reason == "tool_calls"
    decl = last(mock)["json"]["tools"][0]["functionDeclarations"][0]
    assert decl["name"] == "get_weather"


def test_gemini_errors_reach_openai_clients_in_openai_shape(env):
    gw, _, _, _ = env
    r = gw.chat({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "x"}]}, headers={"x-mock-status": "400"})
    assert r.status == 400
    assert r.json()["error"]["message"] == "mock error 400"
    assert r.json()["error"]["type"] == "invalid_request_error"


def test_embeddings_on_a_provider_without_them_is_400(env):
    gw, mock, _, _ = env
    mock.clear()
    r = gw.request("POST", "/v1/embeddings", {"model": "gemini-2.5-flash", "input": "x"})
    assert r.status == 400
    assert r.json()["error"]["code"] == "unsupported_operation"
    assert mock.requests() == []


# --- OpenAI clients -> Azure OpenAI ----------------------------------------------


def test_openai_client_reaches_azure_deployments(env):
    _, mock, oa, _ = env
    r = oa.chat.completions.create(model="azure-4o", messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content.startswith("Hello from proto!")
    req = last(mock)
    assert req["path"] == "/openai/deployments/prod-deployment/chat/completions"
    assert req["query"] == "api-version=2024-10-21"
    assert req["headers"]["api-key"] == "az-provider-key"
    assert "authorization" not in req["headers"]
    e = oa.embeddings.create(model="azure-4o", input=["a b", "c"])
    assert len(e.data) == 2
    assert last(mock)["path"] == "/openai/deployments/prod-deployment/embeddings"


def test_openai_client_streams_from_azure(env):
    _, mock, oa, _ = env
    chunks = list(oa.chat.completions.create(model="azure-4o", messages=[{"role": "user", "content": "hi"}], stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).startswith("Hello from proto!")
    assert last(mock)["json"]["stream_options"] == {"include_usage": True}
    assert all(c.choices for c in chunks)


# --- Anthropic clients ------------------------------------------------------------


def test_anthropic_sdk_reaches_anthropic_natively(env):
    _, mock, _, an = env
    m = an.messages.create(
        model="claude-sonnet-4-5", max_tokens=100, messages=[{"role": "user", "content": "hello"}],
        extra_headers={"anthropic-beta": "prompt-caching-2024-07-31", "anthropic-version": "2023-06-01"},
    )
    assert m.content[0].text == "Hello from proto! You asked claude-sonnet-4-5."
    assert m.stop_reason == "end_turn"
    assert m.usage.output_tokens == 6
    req = last(mock)
    assert req["path"] == "/v1/messages"
    assert req["headers"]["x-api-key"] == "sk-ant-provider"
    # The client's own Anthropic headers are kept on the native path.
    assert req["headers"]["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert req["headers"]["anthropic-version"] == "2023-06-01"
    assert req["json"]["max_tokens"] == 100
    no_client_key(req)


def test_anthropic_sdk_streams_natively(env):
    _, _, _, an = env
    with an.messages.stream(model="claude-sonnet-4-5", max_tokens=100, messages=[{"role": "user", "content": "hi"}]) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text == "Hello from proto! You asked claude-sonnet-4-5."
    assert final.usage.output_tokens == 6


def test_anthropic_sdk_reaches_an_openai_provider(env):
    _, mock, _, an = env
    m = an.messages.create(
        model="gpt-4o-mini", max_tokens=64, system="Be brief.", messages=[{"role": "user", "content": "hello"}]
    )
    assert m.type == "message" and m.role == "assistant"
    assert m.content[0].text == "Hello from proto! You asked gpt-4o-mini."
    assert m.stop_reason == "end_turn"
    assert m.usage.output_tokens == 6
    req = last(mock)
    assert req["path"] == "/v1/chat/completions"
    assert req["headers"]["authorization"] == "Bearer sk-oai"
    assert "anthropic-version" not in req["headers"]
    assert req["json"]["messages"][0] == {"role": "system", "content": "Be brief."}
    no_client_key(req)


def test_anthropic_sdk_streams_from_an_openai_provider_in_anthropic_event_order(env):
    gw, _, _, an = env
    with an.messages.stream(model="gpt-4o-mini", max_tokens=64, messages=[{"role": "user", "content": "hi"}]) as s:
        events = [e.type for e in s]
        final = s.get_final_message()
    assert events[0] == "message_start"
    assert events[-1] == "message_stop"
    assert "content_block_start" in events and "content_block_stop" in events and "message_delta" in events
    assert final.content[0].text == "Hello from proto! You asked gpt-4o-mini."
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 6


def test_anthropic_sdk_tool_use_through_an_openai_provider(env):
    _, mock, _, an = env
    tools = [{"name": "get_weather", "description": "Weather", "input_schema": WEATHER_TOOL["function"]["parameters"]}]
    m = an.messages.create(
        model="gpt-4o-mini", max_tokens=64, tools=tools, messages=[{"role": "user", "content": "weather?"}],
        extra_headers={"x-mock-tool-call": "get_weather"},
    )
    block = next(b for b in m.content if b.type == "tool_use")
    assert block.name == "get_weather" and block.input == WEATHER_ARGS
    assert m.stop_reason == "tool_use"
    assert last(mock)["json"]["tools"][0]["function"]["name"] == "get_weather"
    with an.messages.stream(
        model="gpt-4o-mini", max_tokens=64, tools=tools, messages=[{"role": "user", "content": "weather?"}],
        extra_headers={"x-mock-tool-call": "get_weather"},
    ) as s:
        final = s.get_final_message()
    block = next(b for b in final.content if b.type == "tool_use")
    assert block.input == WEATHER_ARGS
    assert final.stop_reason == "tool_use"


def test_anthropic_sdk_reaches_a_gemini_provider(env):
    _, mock, _, an = env
    m = an.messages.create(model="gemini-2.5-flash", max_tokens=64, messages=[{"role": "user", "content": "hello"}])
    assert m.content[0].text == "Hello from proto! You asked gemini-2.5-flash."
    assert last(mock)["path"] == "/v1beta/models/gemini-2.5-flash:generateContent"
    with an.messages.stream(model="gemini-2.5-flash", max_tokens=64, messages=[{"role": "user", "content": "hi"}]) as s:
        assert "".join(s.text_stream) == "Hello from proto! You asked gemini-2.5-flash."


def test_anthropic_sdk_sees_errors_in_anthropic_shape(env):
    gw, _, _, an = env
    with pytest.raises(anthropic.NotFoundError) as e:
        an.messages.create(model="no-such-model", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert e.value.body["type"] == "error"
    assert e.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.RateLimitError):
        an.messages.create(
            model="gpt-4o-mini", max_tokens=5, messages=[{"role": "user", "content": "x"}], extra_headers={"x-mock-status": "429"}
        )
    r = gw.request("POST", "/v1/messages", b"{bad", {"content-type": "application/json"})
    assert r.status == 400
    assert r.json()["type"] == "error" and r.json()["error"]["type"] == "invalid_request_error"


def test_anthropic_count_tokens_where_the_provider_supports_it(env):
    gw, _, _, an = env
    n = an.messages.count_tokens(model="claude-sonnet-4-5", messages=[{"role": "user", "content": "one two three"}])
    assert n.input_tokens > 0
    r = gw.request("POST", "/v1/messages/count_tokens", {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]})
    assert r.status == 400
    assert r.json()["error"]["type"] == "invalid_request_error"
