"""Consumers through a real Envoy (2 workers): virtual keys, model allow-lists,
request/token/concurrency limits reserved before the call and settled after.

Every limited test uses its own consumer, so tests do not share budgets. The
budget a request leaves is read from the `x-ratelimit-remaining-tokens` header
of the next request: two identical requests differ by exactly what the first
one was charged.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import threading
import time

import anthropic
import openai
import pytest

from harness import NEVER_REFUSE, gateway_yaml, provider

KEYS = {name: f"sk-aigw-test-{name}-0123456789" for name in [
    "open", "web", "rpm", "quota", "total", "spent", "conc", "settle", "cut", "slow", "leave", "headers",
    "anthropic",
]}
DAY = 10_000_000  # a daily budget large enough never to refuse


def key_of(name: str) -> dict:
    return {"authorization": f"Bearer {KEYS[name]}"}


def consumer(name: str, hashed: bool = True, **kw) -> dict:
    key = {"sha256": hashlib.sha256(KEYS[name].encode()).hexdigest()} if hashed else {"value": KEYS[name]}
    return {"name": name, "keys": [key], **kw}


HI = [{"role": "user", "content": "hi"}]
# The mock's usage for HI: prompt 2 ("hi" + 1), completion 6 words: 8 tokens.
HI_USAGE = 8


@pytest.fixture(scope="module")
def env(mock_factory, gateway_factory):
    mock = mock_factory("cons")
    yaml = gateway_yaml(
        providers=[
            provider("oai", mock, keys=[{"value": "sk-provider-key-1"}], keyPool=NEVER_REFUSE),
            {"name": "claude", "kind": "anthropic", "baseUrl": mock.url,
             "keys": [{"value": "sk-ant-provider-key"}], "keyPool": NEVER_REFUSE},
            provider("slowp", mock, keys=[{"value": "sk-provider-key-2"}], keyPool=NEVER_REFUSE, timeout="1s"),
        ],
        models=[
            {"name": "gpt-4o-mini", "target": {"provider": "oai"}},
            {"name": "gpt-4o", "target": {"provider": "oai"}},
            {"name": "claude-sonnet-4-5", "target": {"provider": "claude"}},
            {"name": "slow-model", "target": {"provider": "slowp"}},
            {"name": "gpt-sticky", "split": [{"provider": "oai", "weight": 1},
                                             {"provider": "claude", "model": "claude-sonnet-4-5", "weight": 1}],
             "sticky": {"consumer": True}},
        ],
        auth={"keyHeader": "x-team-key", "defaultMaxTokens": 1000},
        consumers=[
            consumer("open", hashed=False),
            consumer("web", models=["gpt-*"]),
            consumer("rpm", limits={"requestsPerMinute": 3}),
            consumer("quota", limits={"tokenQuotas": [{"period": "day", "tokens": 60}]}),
            consumer("total", limits={"tokenQuotas": [{"period": "total", "tokens": 1000}]}),
            consumer("spent", limits={"tokenQuotas": [{"period": "total", "tokens": 100}]}),
            consumer("conc", limits={"concurrentRequests": 2}),
            consumer("settle", limits={"tokenQuotas": [{"period": "day", "tokens": DAY}]}),
            consumer("cut", limits={"tokenQuotas": [{"period": "day", "tokens": DAY}]}),
            consumer("slow", limits={"tokenQuotas": [{"period": "day", "tokens": DAY}]}),
            consumer("leave", limits={"concurrentRequests": 1,
                                      "tokenQuotas": [{"period": "day", "tokens": DAY}]}),
            consumer("headers", limits={"requestsPerMinute": 1000, "tokensPerMinute": 100000}),
            consumer("anthropic", limits={"tokenQuotas": [{"period": "day", "tokens": DAY}]}),
        ],
    )
    gw = gateway_factory(yaml)
    return gw, mock


def chat(gw, who: str | None, body: dict | None = None, headers: dict | None = None):
    h = dict(key_of(who) if who else {})
    h.update(headers or {})
    return gw.chat(body or {"model": "gpt-4o-mini", "messages": HI, "max_tokens": 10}, headers=h)


def remaining_tokens(r) -> int:
    return int(r.headers["x-ratelimit-remaining-tokens"])


def error_of(r) -> dict:
    return r.json()["error"]


# --- Who is calling -----------------------------------------------------------


def test_no_key_or_an_unknown_key_gets_401_without_calling_a_provider(env):
    gw, mock = env
    mock.clear_requests()
    r = chat(gw, None)
    assert r.status == 401, r.body
    assert error_of(r)["code"] == "missing_api_key"
    assert r.headers["www-authenticate"] == "Bearer"
    r = chat(gw, None, headers={"authorization": "Bearer sk-aigw-not-a-known-key-0000"})
    assert r.status == 401
    err = error_of(r)
    assert (err["type"], err["code"]) == ("invalid_request_error", "invalid_api_key")
    assert "not-a-known-key" not in r.body.decode()
    # The model list is not open either.
    assert gw.request("GET", "/v1/models").status == 401
    # Anthropic's path answers in Anthropic's shape.
    r = gw.request("POST", "/v1/messages", {"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": HI},
                   headers={"x-api-key": "sk-aigw-wrong-key-000000"})
    assert r.status == 401
    assert r.json()["type"] == "error"
    assert r.json()["error"]["type"] == "authentication_error"
    assert mock.requests() == []


def test_a_key_is_accepted_as_bearer_x_api_key_or_the_configured_header(env):
    gw, _ = env
    for headers in (
        {"authorization": f"Bearer {KEYS['open']}"},
        {"x-api-key": KEYS["open"]},
        {"x-team-key": KEYS["open"]},
    ):
        r = gw.chat({"model": "gpt-4o-mini", "messages": HI}, headers=headers)
        assert r.status == 200, (headers, r.body)


def test_the_consumer_key_and_name_never_reach_the_provider_but_reach_the_access_log(env):
    gw, mock = env
    mock.clear_requests()
    r = chat(gw, "web", headers={"x-team-key": KEYS["web"], "x-api-key": KEYS["web"],
                                 "x-request-id": "consumer-log-check"})
    assert r.status == 200, r.body
    req = mock.requests()[-1]
    assert req["headers"]["authorization"] == "Bearer sk-provider-key-1"
    text = json.dumps(req)
    assert KEYS["web"] not in text
    assert "x-team-key" not in req["headers"]
    assert "web" not in json.dumps(req["headers"]).replace("sk-provider-key-1", "")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = [l for l in gw.access_log() if l.get("request_id") == "consumer-log-check"]
        if lines:
            break
        time.sleep(0.1)
    assert lines and lines[-1]["consumer"] == "web", lines
    assert KEYS["web"] not in gw.log()


# --- What it may use ----------------------------------------------------------


def test_a_model_outside_the_allow_list_gets_403_before_any_provider_call(env):
    gw, mock = env
    mock.clear_requests()
    r = chat(gw, "web", {"model": "claude-sonnet-4-5", "messages": HI})
    assert r.status == 403, r.body
    err = error_of(r)
    assert (err["code"], err["param"]) == ("model_not_allowed", "model")
    assert mock.requests() == []
    r = gw.request("POST", "/v1/messages", {"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": HI},
                   headers={"x-api-key": KEYS["web"]})
    assert r.status == 403
    assert r.json()["error"]["type"] == "permission_error"
    assert mock.requests() == []
    assert chat(gw, "web", {"model": "gpt-4o", "messages": HI}).status == 200


def test_the_model_list_shows_what_the_consumer_may_use(env):
    gw, _ = env
    ids = lambda r: sorted(m["id"] for m in r.json()["data"])
    assert ids(gw.request("GET", "/v1/models", headers=key_of("web"))) == ["gpt-4o", "gpt-4o-mini", "gpt-sticky"]
    assert ids(gw.request("GET", "/v1/models", headers=key_of("open"))) == [
        "claude-sonnet-4-5", "gpt-4o", "gpt-4o-mini", "gpt-sticky", "slow-model"]
    assert gw.request("GET", "/v1/models/gpt-4o", headers=key_of("web")).status == 200
    r = gw.request("GET", "/v1/models/claude-sonnet-4-5", headers=key_of("web"))
    assert r.status == 404
    assert error_of(r)["code"] == "model_not_found"


# --- Limits -------------------------------------------------------------------


def wait_for_a_fresh_minute_window(margin: float = 8.0) -> None:
    """Per-minute windows follow the clock: do not start a test just before one ends."""
    left = 60 - time.time() % 60
    if left < margin:
        time.sleep(left + 0.2)


def test_requests_per_minute_refuse_with_retry_after(env):
    gw, mock = env
    wait_for_a_fresh_minute_window()
    seen = []
    for _ in range(3):
        r = chat(gw, "rpm")
        assert r.status == 200, r.body
        assert r.headers["x-ratelimit-limit-requests"] == "3"
        seen.append(int(r.headers["x-ratelimit-remaining-requests"]))
        assert r.headers["x-ratelimit-reset-requests"].endswith("s")
    assert seen == [2, 1, 0]
    mock.clear_requests()
    r = chat(gw, "rpm")
    assert r.status == 429, r.body
    err = error_of(r)
    assert (err["type"], err["code"]) == ("requests", "rate_limit_exceeded")
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert r.headers["x-ratelimit-remaining-requests"] == "0"
    assert mock.requests() == []


def test_a_token_quota_runs_out_over_several_requests(env):
    gw, mock = env
    mock.clear_requests()
    statuses, remaining = [], []
    for _ in range(20):
        r = chat(gw, "quota")
        statuses.append(r.status)
        if r.status != 200:
            break
        remaining.append(remaining_tokens(r))
    admitted = statuses.count(200)
    assert statuses[-1] == 429 and admitted >= 2, statuses
    # Each request was charged the mock's real usage, not its reservation.
    assert all(a - b == HI_USAGE for a, b in zip(remaining, remaining[1:])), remaining
    assert len(mock.requests()) == admitted
    err = error_of(r)
    assert (err["type"], err["code"]) == ("tokens", "rate_limit_exceeded")
    # A daily window: retry after the next UTC midnight.
    assert 1 <= int(r.headers["retry-after"]) <= 86_400
    assert r.headers["x-ratelimit-limit-tokens"] == "60"


def test_many_concurrent_requests_racing_for_the_last_tokens_never_overshoot(env):
    gw, mock = env
    mock.clear_requests()
    results = []
    lock = threading.Lock()

    def one():
        r = chat(gw, "total", {"model": "gpt-4o-mini", "messages": HI, "max_tokens": 90},
                 headers={"x-mock-delay-ms": "1500"})
        with lock:
            results.append(r)

    threads = [threading.Thread(target=one) for _ in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = [r for r in results if r.status == 200]
    refused = [r for r in results if r.status == 429]
    assert len(ok) + len(refused) == 30, [r.status for r in results]
    # Each admission saw the budget every earlier one left: no two alike.
    rem = sorted((remaining_tokens(r) for r in ok), reverse=True)
    assert len(set(rem)) == len(rem), rem
    reservation = 1000 - rem[0]
    assert all(a - b == reservation for a, b in zip(rem, rem[1:])), rem
    # As many as the budget holds, all in flight together, and not one more.
    assert len(ok) == 1000 // reservation, (len(ok), reservation)
    assert rem[-1] == 1000 - len(ok) * reservation < reservation
    assert len(mock.requests()) == len(ok)
    for r in refused:
        # Held by requests in flight, not spent: worth retrying soon.
        err = error_of(r)
        assert (err["type"], err["code"]) == ("tokens", "rate_limit_exceeded"), err
        assert "in flight" in err["message"]
        assert r.headers["retry-after"] == "1"
    # Settled at the real usage: what is left is the limit minus real usage.
    r = chat(gw, "total", {"model": "gpt-4o-mini", "messages": HI, "max_tokens": 90})
    assert r.status == 200, r.body
    assert remaining_tokens(r) == 1000 - len(ok) * HI_USAGE - reservation


def test_a_spent_total_budget_is_insufficient_quota_without_retry_after(env):
    gw, mock = env
    # 80 words of output: the first request is charged 82 tokens of its 100.
    first = chat(gw, "spent", {"model": "gpt-4o-mini", "messages": HI, "max_tokens": 90},
                 headers={"x-mock-chunks": "80"})
    assert first.status == 200, first.body
    mock.clear_requests()
    # 18 left; this one reserves its prompt and 50 more.
    r = chat(gw, "spent", {"model": "gpt-4o-mini", "messages": HI, "max_tokens": 50})
    assert r.status == 429, r.body
    err = error_of(r)
    assert (err["type"], err["code"]) == ("insufficient_quota", "insufficient_quota"), err
    assert "retry-after" not in r.headers  # a total budget does not come back by waiting
    assert r.headers["x-ratelimit-remaining-tokens"] == "18"
    assert mock.requests() == []


def test_concurrent_requests_beyond_the_limit_get_429_and_slots_come_back(env):
    gw, mock = env
    results = []
    lock = threading.Lock()

    def one():
        r = chat(gw, "conc", headers={"x-mock-delay-ms": "1500"})
        with lock:
            results.append(r)

    threads = [threading.Thread(target=one) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(r.status for r in results)
    assert statuses == [200, 200, 429, 429, 429], statuses
    for r in results:
        if r.status == 429:
            assert error_of(r)["code"] == "concurrency_limit_exceeded"
            assert r.headers["retry-after"] == "1"
    # Every slot was released when its request ended.
    assert chat(gw, "conc").status == 200
    assert chat(gw, "conc").status == 200


PLAIN = {"model": "gpt-4o-mini", "messages": HI, "max_tokens": 10}


def charged(gw, who: str, before) -> tuple[int, object]:
    """What the request behind `before` was charged, from the next request."""
    after = chat(gw, who, PLAIN)
    assert after.status == 200, after.body
    return remaining_tokens(before) - remaining_tokens(after), after


def test_a_streamed_response_settles_at_its_real_usage(env):
    gw, _ = env
    s = gw.stream({**PLAIN, "stream": True}, headers=key_of("settle"))
    assert s.status == 200 and s.data()[-1] == "[DONE]"
    # The client did not ask for usage: it was read from the stream and hidden.
    assert all("usage" not in c for c in s.chunks())
    used, _ = charged(gw, "settle", s)
    assert used == HI_USAGE


def test_a_stream_cut_mid_way_is_charged_its_whole_reservation(env):
    gw, _ = env
    # This consumer's first request: the budget drops by exactly its reservation.
    first = chat(gw, "cut", PLAIN)
    reservation = DAY - remaining_tokens(first)
    assert reservation > PLAIN["max_tokens"]
    s = gw.stream({**PLAIN, "stream": True}, headers={**key_of("cut"), "x-mock-cut-after": "3"})
    assert s.status == 200
    assert "[DONE]" not in s.data()
    used, _ = charged(gw, "cut", s)
    # Usage never arrived: the reservation (prompt estimate + max_tokens) stands.
    assert used == reservation


def test_a_provider_timeout_is_charged_its_whole_reservation(env):
    gw, _ = env
    # This consumer's first request: it times out (the provider's timeout is 1 s)
    # after reaching the provider, which may have billed it.
    timed_out = chat(gw, "slow", {**PLAIN, "model": "slow-model"}, headers={"x-mock-delay-ms": "3000"})
    assert timed_out.status == 504, timed_out.body
    assert error_of(timed_out)["code"] == "provider_timeout"
    reservation = DAY - remaining_tokens(timed_out)
    used, _ = charged(gw, "slow", timed_out)
    assert used == reservation


def test_an_error_answer_is_charged_nothing(env):
    gw, _ = env
    failed = chat(gw, "settle", PLAIN, headers={"x-mock-status": "500"})
    assert failed.status == 500
    used, _ = charged(gw, "settle", failed)
    assert used == 0


def test_a_client_that_leaves_mid_stream_frees_its_slot_and_is_charged(env):
    gw, _ = env
    conn = http.client.HTTPConnection(gw.host, gw.port, timeout=10)
    conn.request("POST", "/v1/chat/completions", body=json.dumps({**PLAIN, "stream": True}),
                 headers={"content-type": "application/json", **key_of("leave"),
                          "x-mock-chunk-interval-ms": "500"})
    r = conn.getresponse()
    assert r.status == 200
    left_with = int(r.getheader("x-ratelimit-remaining-tokens"))
    assert r.read1(100)
    conn.sock.close()
    conn.close()
    # The slot (concurrency 1) comes back once Envoy sees the client gone.
    deadline = time.monotonic() + 10
    while True:
        nxt = chat(gw, "leave", PLAIN)
        if nxt.status == 200 or time.monotonic() > deadline:
            break
        assert error_of(nxt)["code"] == "concurrency_limit_exceeded"
        time.sleep(0.2)
    assert nxt.status == 200, nxt.body
    reservation = DAY - left_with
    assert left_with - remaining_tokens(nxt) == reservation  # charged in full: usage unknown


def test_budget_headers_replace_the_providers_own(env):
    gw, mock = env
    mock.add_rules([{"match": {"header": {"x-test-case": "ratelimit-headers"}},
                     "headers": {"x-ratelimit-remaining-tokens": "999999",
                                 "x-ratelimit-limit-requests": "777",
                                 "anthropic-ratelimit-tokens-remaining": "5"}}])
    r = chat(gw, "headers", headers={"x-test-case": "ratelimit-headers"})
    assert r.status == 200, r.body
    assert r.headers["x-ratelimit-limit-requests"] == "1000"
    assert r.headers["x-ratelimit-limit-tokens"] == "100000"
    assert int(r.headers["x-ratelimit-remaining-tokens"]) < 100000
    assert "anthropic-ratelimit-tokens-remaining" not in r.headers
    # A consumer without limits gets none, and not the provider's either.
    r = chat(gw, "open", headers={"x-test-case": "ratelimit-headers"})
    assert r.status == 200
    assert not [h for h in r.headers if "ratelimit" in h], r.headers


def test_a_canary_split_sticky_per_consumer_keeps_each_consumer_on_one_target(env):
    gw, _ = env
    for who in ("open", "web"):
        served = {chat(gw, who, {"model": "gpt-sticky", "messages": HI}).headers["x-aigw-provider"]
                  for _ in range(6)}
        assert len(served) == 1, (who, served)


# --- Real clients -------------------------------------------------------------


def test_the_openai_sdk_with_a_consumer_key(env):
    gw, _ = env
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=KEYS["web"], max_retries=0, timeout=30)
    assert sorted(m.id for m in client.models.list()) == ["gpt-4o", "gpt-4o-mini", "gpt-sticky"]
    out = client.chat.completions.create(model="gpt-4o-mini", messages=HI)
    assert out.choices[0].message.content.startswith("Hello from cons")
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model="claude-sonnet-4-5", messages=HI)
    bad = openai.OpenAI(base_url=gw.url + "/v1", api_key="sk-aigw-nobody-00000000", max_retries=0, timeout=30)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="gpt-4o-mini", messages=HI)


def test_the_anthropic_sdk_with_a_consumer_key_streams_and_settles(env):
    gw, _ = env
    client = anthropic.Anthropic(base_url=gw.url, api_key=KEYS["anthropic"], max_retries=0, timeout=30)
    raw = client.messages.with_raw_response.create(model="claude-sonnet-4-5", max_tokens=10, messages=HI)
    first = int(raw.headers["x-ratelimit-remaining-tokens"])
    with client.messages.stream(model="claude-sonnet-4-5", max_tokens=10, messages=HI) as stream:
        text = "".join(stream.text_stream)
    assert text.startswith("Hello from cons")
    raw2 = client.messages.with_raw_response.create(model="claude-sonnet-4-5", max_tokens=10, messages=HI)
    # Between the two plain requests: the first plain one and the stream,
    # each charged the mock's Anthropic usage (input 2 + output 6).
    assert first - int(raw2.headers["x-ratelimit-remaining-tokens"]) == 2 * 8
    bad = anthropic.Anthropic(base_url=gw.url, api_key="sk-aigw-nobody-00000000", max_retries=0, timeout=30)
    with pytest.raises(anthropic.AuthenticationError):
        bad.messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=HI)
