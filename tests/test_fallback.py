"""Fallback chains and canary splits through a real Envoy (2 workers).

Each provider is its own mock, programmed by rules that match a per-test
header (`x-test`), so one target can fail while the next one serves; the
mocks count the attempts each target got.
"""
from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.request
from collections import Counter

import anthropic
import pytest

from harness import NEVER_REFUSE, aigw, closed_port, gateway_yaml, provider

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def env(mock_factory, gateway_factory):
    a, b, c, k = (mock_factory(n) for n in ("fa", "fb", "fc", "fk"))
    yaml = gateway_yaml(
        providers=[
            provider("pa", a, keys=[{"value": "sk-pa-key"}], keyPool=NEVER_REFUSE),
            provider("pb", b, keys=[{"value": "sk-pb-key"}], keyPool=NEVER_REFUSE),
            {"name": "pc", "kind": "anthropic", "baseUrl": c.url,
             "keys": [{"value": "sk-pc-key"}], "keyPool": NEVER_REFUSE},
            provider("pdown", a, keys=[{"value": "sk-down"}], keyPool=NEVER_REFUSE,
                     baseUrl=f"http://127.0.0.1:{closed_port()}/v1"),
            # A pool that refuses locally once its only key is out.
            provider("pk", k, keys=[{"id": "only", "value": "sk-pk-key"}],
                     keyPool={"whenAllDown": "fail", "cooldown": "60s"}),
        ],
        models=[
            {"name": "chain", "target": {"provider": "pa"},
             "fallback": [{"provider": "pb", "model": "b-model"},
                          {"provider": "pc", "model": "claude-x"}],
             "perTryTimeout": "1s"},
            {"name": "refused", "target": {"provider": "pdown"}, "fallback": [{"provider": "pa"}]},
            {"name": "only-429", "target": {"provider": "pa"}, "fallback": [{"provider": "pb"}],
             "fallbackOn": ["rate-limited"]},
            {"name": "pool-out", "target": {"provider": "pk"}, "fallback": [{"provider": "pb"}]},
            {"name": "canary", "split": [{"provider": "pa", "weight": 90},
                                         {"provider": "pb", "model": "canary-b", "weight": 10}]},
            {"name": "sticky", "split": [{"provider": "pa", "weight": 1}, {"provider": "pb", "weight": 1}],
             "sticky": {"header": "x-session"}},
            {"name": "rewrite-first",
             "target": {"provider": "pa", "model": "a-model-name-much-longer-than-the-clients"},
             "fallback": [{"provider": "pb"}]},
            {"name": "anthropic-first", "target": {"provider": "pc", "model": "claude-x"},
             "fallback": [{"provider": "pb"}]},
            {"name": "claude-native", "target": {"provider": "pc"}},
            {"name": "split-fallback",
             "split": [{"provider": "pa", "weight": 1}, {"provider": "pb", "weight": 1}],
             "sticky": {"header": "x-session"}, "fallback": [{"provider": "pa"}, {"provider": "pc"}]},
        ],
    )
    gw = gateway_factory(yaml)
    return gw, a, b, c, k


@pytest.fixture(autouse=True)
def clean(env):
    for m in env[1:]:
        m.clear()


def fail(mock, case: str, **rule) -> None:
    mock.add_rules([{"match": {"header": {"x-test": case}}, **rule}])


def chat(gw, model: str, case: str = "none", **kw):
    return gw.chat({"model": model, "messages": HI, **kw}, headers={"x-test": case})


def count(mock) -> int:
    return len(mock.requests())


def test_a_500_moves_the_request_to_the_next_target_renamed_for_it(env):
    gw, a, b, c, _ = env
    fail(a, "500", status=500)
    r = chat(gw, "chain", "500")
    assert r.status == 200, r.body
    assert r.headers["x-aigw-provider"] == "pb"
    assert r.headers["x-aigw-model"] == "b-model"
    assert r.json()["choices"][0]["message"]["content"] == "Hello from fb! You asked b-model."
    # Exactly one attempt per target, each with its own provider's key and model.
    assert (count(a), count(b), count(c)) == (1, 1, 0)
    assert a.requests()[0]["headers"]["authorization"] == "Bearer sk-pa-key"
    assert b.requests()[0]["headers"]["authorization"] == "Bearer sk-pb-key"
    assert b.requests()[0]["json"]["model"] == "b-model"


def test_a_429_moves_on_and_a_translated_provider_can_be_last(env):
    gw, a, b, c, _ = env
    fail(a, "429", status=429, headers={"retry-after": "1"})
    fail(b, "429", status=429)
    r = chat(gw, "chain", "429")
    assert r.status == 200, r.body
    assert r.headers["x-aigw-provider"] == "pc"
    assert r.headers["x-aigw-model"] == "claude-x"
    body = r.json()
    assert body["object"] == "chat.completion"  # translated from Anthropic's answer
    assert body["choices"][0]["message"]["content"] == "Hello from fc! You asked claude-x."
    assert (count(a), count(b), count(c)) == (1, 1, 1)
    assert c.requests()[0]["path"] == "/v1/messages"
    assert c.requests()[0]["headers"]["x-api-key"] == "sk-pc-key"


def test_when_every_target_fails_the_client_gets_the_last_failure_in_its_shape(env):
    gw, a, b, c, _ = env
    fail(a, "all", status=500)
    fail(b, "all", status=503)
    fail(c, "all", status=529)
    r = chat(gw, "chain", "all")
    assert r.status == 529, r.body
    assert r.headers["x-aigw-provider"] == "pc"
    err = r.json()["error"]
    # The last provider's own error, in OpenAI's envelope.
    assert (err["type"], err["message"]) == ("server_error", "mock error 529")
    assert (count(a), count(b), count(c)) == (1, 1, 1)
    # Anthropic clients get Anthropic's envelope.
    r = gw.request("POST", "/v1/messages", {"model": "chain", "max_tokens": 5, "messages": HI},
                   headers={"x-test": "all"})
    assert r.status == 529
    assert r.json()["type"] == "error"


def test_a_target_that_rewrote_the_body_leaves_the_next_one_a_whole_request(env):
    gw, a, b, *_ = env
    fail(a, "rewrite", status=500)
    r = chat(gw, "rewrite-first", "rewrite")
    assert r.status == 200, r.body
    assert r.headers["x-aigw-provider"] == "pb"
    # pb gets the client's body as sent (no rename for it), with its length.
    req = b.requests()[0]
    assert req["json"]["model"] == "rewrite-first"
    assert int(req["headers"]["content-length"]) == len(req["body"].encode())
    assert a.requests()[0]["json"]["model"] == "a-model-name-much-longer-than-the-clients"


def test_a_translated_first_target_falls_back_to_an_openai_provider(env):
    gw, _, b, c, _ = env
    fail(c, "anthropic-first", status=529)
    r = chat(gw, "anthropic-first", "anthropic-first")
    assert r.status == 200, r.body
    assert r.headers["x-aigw-provider"] == "pb"
    assert b.requests()[0]["path"] == "/v1/chat/completions"
    assert b.requests()[0]["json"]["messages"] == HI
    assert c.requests()[0]["path"] == "/v1/messages"


def test_an_anthropic_clients_headers_reach_an_anthropic_target_after_fallbacks(env):
    gw, a, b, c, _ = env
    fail(a, "beta", status=500)
    fail(b, "beta", status=500)
    r = gw.request("POST", "/v1/messages", {"model": "chain", "max_tokens": 5, "messages": HI},
                   headers={"x-test": "beta", "anthropic-version": "2023-06-01",
                            "anthropic-beta": "prompt-caching-2024-07-31"})
    assert r.status == 200, r.body
    assert r.headers["x-aigw-provider"] == "pc"
    sent = c.requests()[0]["headers"]
    assert sent["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert sent["anthropic-version"] == "2023-06-01"
    # The OpenAI-shaped targets never saw them.
    assert "anthropic-beta" not in a.requests()[0]["headers"]


def test_many_concurrent_requests_all_fall_back(env):
    gw, a, b, *_ = env
    fail(a, "busy", status=500)
    fail(b, "busy", delayMs=500)
    results = []
    threads = [threading.Thread(target=lambda: results.append(chat(gw, "chain", "busy"))) for _ in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status for r in results) == [200] * 24, [r.body for r in results if r.status != 200][:2]
    assert {r.headers["x-aigw-provider"] for r in results} == {"pb"}
    assert (count(a), count(b)) == (24, 24)


def test_a_refused_connection_moves_on(env):
    gw, a, *_ = env
    r = chat(gw, "refused")
    assert r.status == 200, r.body
    assert r.headers["x-aigw-provider"] == "pa"
    assert count(a) == 1


def test_a_target_that_does_not_answer_within_the_per_try_timeout_is_abandoned(env):
    gw, a, b, c, _ = env
    fail(a, "slow", delayMs=4000)
    start = time.monotonic()
    r = chat(gw, "chain", "slow")
    took = time.monotonic() - start
    assert r.status == 200, r.body
    assert r.headers["x-aigw-provider"] == "pb"
    assert took < 3.5, took
    assert (count(a), count(b), count(c)) == (1, 1, 0)


def test_a_stream_falls_back_before_its_first_byte(env):
    gw, a, b, c, _ = env
    fail(a, "stream", status=503)
    s = gw.stream({"model": "chain", "stream": True, "messages": HI}, headers={"x-test": "stream"})
    assert s.status == 200
    assert s.headers["x-aigw-provider"] == "pb"
    assert s.text() == "Hello from fb! You asked b-model."
    assert s.data()[-1] == "[DONE]"
    assert (count(a), count(b)) == (1, 1)


def interrupted(gw, provider: str, how: str) -> int:
    with urllib.request.urlopen(gw.admin + "/stats/prometheus", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("aigw_streams_interrupted_total{") and f'provider="{provider}"' in line \
                    and f'how="{how}"' in line:
                return int(float(line.rsplit(" ", 1)[1]))
    return 0


def test_a_stream_that_ends_early_ends_with_an_error_chunk_not_done(env):
    gw, a, b, *_ = env
    before = interrupted(gw, "pa", "ended_early")
    fail(a, "early", endAfter=3)
    s = gw.stream({"model": "chain", "stream": True, "messages": HI}, headers={"x-test": "early"})
    assert s.status == 200
    data = s.data()
    assert "[DONE]" not in data
    last = json.loads(data[-1])
    assert last["error"]["code"] == "stream_interrupted"
    assert last["error"]["type"] == "server_error"
    # Past the first byte there is no fallback: the client has the start of this answer.
    assert count(b) == 0
    deadline = time.monotonic() + 5
    while interrupted(gw, "pa", "ended_early") != before + 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert interrupted(gw, "pa", "ended_early") == before + 1
    assert "stream from provider pa ended without its end event" in gw.log()


def test_an_anthropic_client_sees_an_error_event_when_a_stream_ends_early(env):
    gw, a, *_ = env
    fail(a, "early-an", endAfter=3)
    client = anthropic.Anthropic(base_url=gw.url, api_key="unused", max_retries=0, timeout=30,
                                 default_headers={"x-test": "early-an"})
    with pytest.raises(anthropic.APIStatusError) as e:
        with client.messages.stream(model="chain", max_tokens=20, messages=HI) as stream:
            for _ in stream.text_stream:
                pass
    assert "ended before the response was complete" in str(e.value)


def test_a_native_anthropic_stream_that_ends_early_gets_one_error_event(env):
    gw, _, _, c, _ = env
    fail(c, "native-early", endAfter=4)
    conn = http.client.HTTPConnection(gw.host, gw.port, timeout=30)
    conn.request("POST", "/v1/messages",
                 body=json.dumps({"model": "claude-native", "max_tokens": 20, "stream": True, "messages": HI}),
                 headers={"content-type": "application/json", "x-test": "native-early"})
    r = conn.getresponse()
    assert r.status == 200
    text = r.read().decode()
    conn.close()
    events = [e for e in text.split("\n\n") if e.strip()]
    assert events[-1].startswith("event: error\n"), events[-1]
    assert "ended before the response was complete" in events[-1]
    assert sum(e.startswith("event: error") for e in events) == 1
    assert "message_stop" not in text


def test_a_client_that_leaves_mid_stream_is_not_counted_as_a_provider_failure(env):
    gw, a, *_ = env
    before = interrupted(gw, "pa", "reset")
    fail(a, "leave", chunkIntervalMs=300)
    conn = http.client.HTTPConnection(gw.host, gw.port, timeout=10)
    conn.request("POST", "/v1/chat/completions",
                 body=json.dumps({"model": "chain", "stream": True, "messages": HI}),
                 headers={"content-type": "application/json", "x-test": "leave"})
    r = conn.getresponse()
    assert r.status == 200
    assert r.read1(64)
    conn.sock.close()
    conn.close()
    time.sleep(2.5)
    assert interrupted(gw, "pa", "reset") == before


def test_a_stream_reset_mid_way_never_looks_complete_and_is_counted(env):
    gw, a, b, *_ = env
    before = interrupted(gw, "pa", "reset")
    fail(a, "reset", cutAfter=3)
    s = gw.stream({"model": "chain", "stream": True, "messages": HI}, headers={"x-test": "reset"})
    assert s.status == 200
    assert "[DONE]" not in s.data()
    # Envoy resets the client's stream: the HTTP/1.1 body never ends properly.
    assert s.error is not None
    assert count(b) == 0
    deadline = time.monotonic() + 5
    while interrupted(gw, "pa", "reset") != before + 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert interrupted(gw, "pa", "reset") == before + 1


def test_fallback_only_on_the_configured_conditions(env):
    gw, a, b, *_ = env
    fail(a, "only", status=500)
    r = chat(gw, "only-429", "only")
    assert r.status == 500
    assert (count(a), count(b)) == (1, 0)
    a.clear()
    fail(a, "only", status=429)
    r = chat(gw, "only-429", "only")
    assert r.status == 200 and r.headers["x-aigw-provider"] == "pb"


def test_a_provider_whose_keys_are_all_out_still_falls_back(env):
    gw, _, b, _, k = env
    fail(k, "out", status=429, headers={"retry-after": "60"})
    for i in range(3):
        r = chat(gw, "pool-out", "out")
        # Never the pool's own 503: the chain moves on to the next target.
        assert r.status == 200, (i, r.body)
        assert r.headers["x-aigw-provider"] == "pb"
    assert count(b) == 3


def test_a_canary_split_follows_its_weights(env):
    gw, a, b, *_ = env
    served = Counter()
    for _ in range(200):
        r = chat(gw, "canary")
        assert r.status == 200, r.body
        served[(r.headers["x-aigw-provider"], r.headers["x-aigw-model"])] += 1
    # 90/10, each worker rotating smoothly: 180/20 give or take a few.
    assert 170 <= served[("pa", "canary")] <= 190, served
    assert served[("pb", "canary-b")] == 200 - served[("pa", "canary")]
    assert count(b) == served[("pb", "canary-b")]
    assert all(r["json"]["model"] == "canary-b" for r in b.requests())


def test_a_sticky_split_keeps_each_caller_on_one_target(env):
    gw, *_ = env
    seen: dict[str, set] = {}
    for session in range(30):
        for _ in range(4):
            r = gw.chat({"model": "sticky", "messages": HI}, headers={"x-session": f"s-{session}"})
            assert r.status == 200, r.body
            seen.setdefault(f"s-{session}", set()).add(r.headers["x-aigw-provider"])
    assert all(len(v) == 1 for v in seen.values()), seen
    # Both targets get callers.
    assert {p for v in seen.values() for p in v} == {"pa", "pb"}


def test_a_split_target_falls_back_along_the_chain_without_itself(env):
    gw, a, b, c, _ = env
    # Find a session the split sends to pb, then make pb fail.
    session = next(f"s-{i}" for i in range(100)
                   if gw.chat({"model": "split-fallback", "messages": HI},
                              headers={"x-session": f"s-{i}"}).headers["x-aigw-provider"] == "pb")
    for m in (a, b, c):
        m.clear()
    fail(b, "split", status=500)
    r = gw.chat({"model": "split-fallback", "messages": HI}, headers={"x-session": session, "x-test": "split"})
    assert r.status == 200 and r.headers["x-aigw-provider"] == "pa"
    assert (count(a), count(b), count(c)) == (1, 1, 0)


def test_validate_rejects_chains_that_loop_or_name_unknown_providers(tmp_path):
    config = tmp_path / "gateway.yaml"
    config.write_text(json.dumps({
        "providers": [{"name": "p1", "kind": "openai-compatible", "baseUrl": "http://127.0.0.1:9/v1"}],
        "models": [
            {"name": "loop", "target": {"provider": "p1"}, "fallback": [{"provider": "p1", "model": "other"}]},
            {"name": "ghost", "target": {"provider": "p1"}, "fallback": [{"provider": "nope"}]},
            {"name": "both", "target": {"provider": "p1"}, "split": [{"provider": "p1", "weight": 1}]},
        ],
    }))
    r = aigw("validate", str(config), "--no-envoy", check=False)
    assert r.returncode == 1, r.stdout + r.stderr
    out = r.stderr
    assert 'models[0].fallback[0].provider: provider "p1" is already in this chain' in out, out
    assert 'models[1].fallback[0].provider: unknown provider "nope"' in out, out
    assert "models[2]: set either `target` or `split`, not both" in out, out
