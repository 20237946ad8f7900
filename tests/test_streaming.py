"""Streaming through a real Envoy: chunks reach the client as the provider
sends them, usage is read from the stream, and the usage chunk the gateway
asks for is removed when the client did not ask for it."""
from __future__ import annotations

import json

import pytest

from harness import gateway_yaml, provider

MESSAGES = [{"role": "user", "content": "one two three"}, {"role": "user", "content": "four"}]
# The mock's usage formula: words per message + 1 per message; one token per chunk.
PROMPT_TOKENS = 3 + 1 + 1 + 1


@pytest.fixture(scope="module")
def env(mock_factory, gateway_factory):
    mock = mock_factory("streamer")
    plain = mock_factory("no-usage-option")
    yaml = gateway_yaml(
        providers=[
            provider("streamer", mock, keys=[{"value": "sk-s"}]),
            provider("nousage", plain, keys=[{"value": "sk-n"}], streamUsage=False),
        ],
        models=[
            {"name": "chat", "target": {"provider": "streamer"}},
            {"name": "renamed", "target": {"provider": "streamer", "model": "upstream-name"}},
            {"name": "chat-nousage", "target": {"provider": "nousage"}},
        ],
    )
    return gateway_factory(yaml), mock, plain


def test_chunks_arrive_as_the_provider_sends_them_not_at_the_end(env):
    gw, _, _ = env
    interval_ms, chunks = 300, 5
    s = gw.stream(
        {"model": "chat", "stream": True, "messages": MESSAGES},
        headers={"x-mock-chunks": str(chunks), "x-mock-chunk-interval-ms": str(interval_ms)},
    )
    assert s.status == 200
    assert s.headers["content-type"].startswith("text/event-stream")
    content_times = [
        t for e, t in zip(s.events, s.times) if e != "data: [DONE]" and json.loads(e[6:])["choices"][0]["delta"].get("content", "").strip().startswith("w")
    ]
    assert len(content_times) == chunks
    # The provider spaces the word chunks by 300 ms, so 1.2 s separate the first
    # and the last. A buffered stream would deliver them all at once.
    spread = content_times[-1] - content_times[0]
    assert spread >= 0.6 * (chunks - 1) * interval_ms / 1000, s.times
    # Each chunk came on its own, after the previous one.
    gaps = [b - a for a, b in zip(content_times, content_times[1:])]
    assert min(gaps) >= 0.1, gaps


def test_without_include_usage_the_client_sees_no_usage_at_all(env):
    gw, mock, _ = env
    mock.clear()
    s = gw.stream({"model": "chat", "stream": True, "messages": MESSAGES})
    assert s.status == 200
    # The gateway asked the provider for usage...
    assert mock.requests()[-1]["json"]["stream_options"] == {"include_usage": True}
    # ...and the client, which did not, sees neither the usage chunk nor `usage` keys.
    assert s.data()[-1] == "[DONE]"
    chunks = s.chunks()
    assert all("usage" not in c for c in chunks), chunks
    assert all(c["choices"] for c in chunks)
    assert s.text() == "Hello from streamer! You asked chat."
    assert "content-length" not in s.headers


def test_with_include_usage_the_client_gets_the_usage_chunk_unchanged(env):
    gw, mock, _ = env
    mock.clear()
    s = gw.stream({"model": "chat", "stream": True, "stream_options": {"include_usage": True}, "messages": MESSAGES})
    assert s.status == 200
    assert mock.requests()[-1]["json"]["stream_options"] == {"include_usage": True}
    chunks = s.chunks()
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": 6, "total_tokens": PROMPT_TOKENS + 6}
    assert s.data()[-1] == "[DONE]"


def test_stream_with_rename_and_usage_injection_together(env):
    gw, mock, _ = env
    mock.clear()
    s = gw.stream({"model": "renamed", "stream": True, "messages": MESSAGES})
    sent = mock.requests()[-1]["json"]
    assert sent["model"] == "upstream-name"
    assert sent["stream_options"] == {"include_usage": True}
    assert s.text() == "Hello from streamer! You asked upstream-name."
    assert all("usage" not in c for c in s.chunks())


def test_usage_option_is_not_added_when_the_provider_is_configured_without_it(env):
    gw, _, plain = env
    s = gw.stream({"model": "chat-nousage", "stream": True, "messages": MESSAGES})
    assert s.status == 200
    assert "stream_options" not in plain.requests()[-1]["json"]
    assert s.data()[-1] == "[DONE]"


def test_usage_is_read_from_streams_and_bodies(env):
    gw, _, _ = env
    gw.stream({"model": "chat", "stream": True, "messages": MESSAGES}, headers={"x-mock-chunks": "4"})
    gw.chat({"model": "chat", "messages": MESSAGES}, headers={"x-mock-chunks": "3"})
    log = gw.log()
    # The router filter logs the usage it read at debug level (metrics come later).
    assert f"usage input={PROMPT_TOKENS} output=4 total={PROMPT_TOKENS + 4}" in log
    assert f"usage input={PROMPT_TOKENS} output=3 total={PROMPT_TOKENS + 3}" in log


def test_a_cut_stream_never_gets_a_fake_done(env):
    gw, _, _ = env
    s = gw.stream({"model": "chat", "stream": True, "messages": MESSAGES}, headers={"x-mock-cut-after": "3"})
    assert s.status == 200
    assert "[DONE]" not in s.data()
    assert len(s.chunks()) == 3


def test_non_streaming_responses_pass_through_unchanged(env):
    gw, _, _ = env
    r = gw.chat({"model": "chat", "messages": MESSAGES})
    assert r.status == 200
    body = r.json()
    assert body["object"] == "chat.completion"
    assert body["usage"] == {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": 6, "total_tokens": PROMPT_TOKENS + 6}
    assert int(r.headers["content-length"]) == len(r.body)
