"""Provider key pools through a real Envoy with 2 worker threads: traffic
spread by weight, keys taken out on 429 / 401 / repeated 5xx and retried at
once on another key, recovery after the cooldown, the all-keys-down policy,
and per-key metrics."""
from __future__ import annotations

import re
import time
import urllib.request
from collections import Counter

import pytest

from harness import closed_port, gateway_yaml, provider

KEYS = [
    {"id": "k1", "value": "sk-key-1", "weight": 2},
    {"id": "k2", "value": "sk-key-2"},
    {"id": "k3", "value": "sk-key-3"},
]


def bearer(n: int) -> dict:
    return {"header": {"authorization": f"Bearer sk-key-{n}"}}


POOL = {"cooldown": "2s", "authFailureCooldown": "3s", "failureThreshold": 2, "unhealthyBackoff": "2s", "maxBackoff": "8s"}
# One provider (one pool) per test, so no test sees another's key states.
POOLS = {
    "spread": POOL,
    "ratelimit": POOL,
    "auth": POOL,
    "errors": POOL,
    "alldown": POOL,
    "streams": POOL,
    "sticky": dict(POOL, stickyHeader="x-session-id"),
    "oldest": {"whenAllDown": "try-oldest", "cooldown": "30s"},
    "metrics": POOL,
    "probed": dict(POOL, authFailureCooldown="1h", healthCheck={"interval": "1s", "timeout": "1s"}),
    "hangup": POOL,
}



@pytest.fixture(scope="module")
def gateway(mock_factory, gateway_factory):
    mock = mock_factory("pool")
    providers = [provider(name, mock, keys=KEYS[:2] if name == "oldest" else KEYS, keyPool=pool) for name, pool in POOLS.items()]
    # A provider whose host refuses connections.
    providers.append(
        {"name": "deadhost", "kind": "openai-compatible", "baseUrl": f"http://127.0.0.1:{closed_port()}/v1", "keys": KEYS[:2], "keyPool": POOL}
    )
    yaml = gateway_yaml(
        providers=providers,
        models=[{"name": name, "target": {"provider": name}} for name in [*POOLS, "deadhost"]],
    )
    return gateway_factory(yaml, concurrency=2), mock


@pytest.fixture
def env(gateway):
    gw, mock = gateway
    mock.clear()
    return gw, mock


def body(pool: str, **extra) -> dict:
    return {"model": pool, "messages": [{"role": "user", "content": "hi"}], **extra}


def keys_used(mock) -> list[str]:
    return [r["headers"]["authorization"].removeprefix("Bearer sk-key-") for r in mock.requests()]


def test_requests_spread_over_the_keys_by_weight(env):
    gw, mock = env
    for _ in range(40):
        assert gw.chat(body("spread")).status == 200
    counts = Counter(keys_used(mock))
    # Weights 2:1:1. Each of the 2 workers spreads its own share exactly.
    assert abs(counts["1"] - 20) <= 2 and abs(counts["2"] - 10) <= 2 and abs(counts["3"] - 10) <= 2, counts


def test_a_rate_limited_key_cools_down_and_the_request_is_retried_on_another(env):
    gw, mock = env
    mock.add_rules([{"match": bearer(1), "status": 429, "headers": {"retry-after": "2"}, "times": 1}])
    statuses = [gw.chat(body("ratelimit")).status for _ in range(12)]
    assert statuses == [200] * 12
    used = keys_used(mock)
    # Key 1 answered 429 once, then, cooling, got nothing more; no retry storm:
    # exactly one extra attempt for the one 429.
    assert used.count("1") == 1, used
    assert len(used) == 13, used
    # After Retry-After, one trial brings it back.
    time.sleep(2.3)
    mock.clear()
    for _ in range(12):
        assert gw.chat(body("ratelimit")).status == 200
    assert keys_used(mock).count("1") >= 4


def test_a_key_refused_with_401_is_taken_out_and_reported_by_id(env):
    gw, mock = env
    mock.add_rules([{"match": bearer(2), "status": 401}])
    statuses = [gw.chat(body("auth")).status for _ in range(10)]
    assert statuses == [200] * 10
    used = keys_used(mock)
    assert used.count("2") == 1, used
    log = gw.log()
    assert re.search(r"provider auth refused key k2 \(HTTP 401\): key taken out for \d+ s", log)
    assert "sk-key-2" not in log
    # Still refused at its trial: out again, and still only one attempt each time.
    time.sleep(3.2)
    mock.clear_requests()
    for _ in range(6):
        assert gw.chat(body("auth")).status == 200
    assert keys_used(mock).count("2") == 1


def test_repeated_server_errors_make_a_key_unhealthy(env):
    gw, mock = env
    mock.add_rules([{"match": bearer(3), "status": 503, "times": 2}])
    statuses = [gw.chat(body("errors")).status for _ in range(16)]
    assert statuses == [200] * 16
    used = keys_used(mock)
    # Two failures (the threshold), each retried elsewhere; then the key is out.
    assert used.count("3") == 2, used
    assert len(used) == 18


def test_when_every_key_is_out_the_client_gets_503_with_retry_after(env):
    gw, mock = env
    mock.add_rules([{"match": bearer(n), "status": 429, "headers": {"retry-after": "5"}} for n in (1, 2, 3)])
    # The request that finds every key rate limited tries each once, no more,
    # and the client gets the provider's 429 with its Retry-After.
    r = gw.chat(body("alldown"))
    assert r.status == 429, r.body
    assert r.headers["retry-after"] == "5"
    assert sorted(keys_used(mock)) == ["1", "2", "3"]
    # While they cool down, requests fail fast without calling the provider:
    # 503 with the time until the first key is due back.
    mock.clear_requests()
    r = gw.chat(body("alldown"))
    assert r.status == 503, r.body
    err = r.json()["error"]
    assert err["code"] == "provider_keys_exhausted"
    assert "sk-key" not in r.body.decode()
    assert 1 <= int(r.headers["retry-after"]) <= 5
    assert mock.requests() == []


def test_try_oldest_uses_the_key_due_back_first(env):
    gw, mock = env
    mock.add_rules([{"match": bearer(n), "status": 429, "headers": {"retry-after": str(10 * n)}, "times": 1} for n in (1, 2)])
    r = gw.chat(body("oldest"))
    assert r.status == 429  # both keys answered 429 within this request
    mock.clear()
    # Every key is cooling: the policy picks the one due back first (k1, 10 s).
    r = gw.chat(body("oldest"))
    assert r.status == 200
    assert keys_used(mock) == ["1"]


def test_streams_are_retried_on_another_key_before_the_first_byte(env):
    gw, mock = env
    mock.add_rules([{"match": bearer(1), "status": 429, "headers": {"retry-after": "2"}, "times": 1}])
    results = []
    for _ in range(4):
        s = gw.stream(body("streams", stream=True))
        results.append((s.status, s.data()[-1] if s.data() else None))
    assert results == [(200, "[DONE]")] * 4
    used = keys_used(mock)
    assert used.count("1") == 1 and len(used) == 5, used


def test_sticky_sessions_stay_on_one_key(env):
    gw, mock = env
    for session in ("alice", "bob", "carol"):
        mock.clear()
        for _ in range(5):
            assert gw.chat(body("sticky"), headers={"x-session-id": session}).status == 200
        assert len(set(keys_used(mock))) == 1, (session, keys_used(mock))


def test_per_key_metrics_by_id(env):
    gw, mock = env
    mock.add_rules([{"match": bearer(2), "status": 429, "headers": {"retry-after": "1"}, "times": 1}])
    for _ in range(6):
        gw.chat(body("metrics"))
    text = urllib.request.urlopen(gw.admin + "/stats/prometheus", timeout=10).read().decode()
    lines = [l for l in text.splitlines() if "aigw_key" in l and not l.startswith("#")]
    assert any(re.match(r'\w*aigw_key_requests_total\{.*provider="metrics".*key="k1".*\} [1-9]', l) for l in lines), lines
    assert any(re.match(r'\w*aigw_key_failures_total\{.*key="k2".*class="rate_limited".*\} [1-9]', l) for l in lines), lines
    assert any(re.match(r'\w*aigw_key_state\{.*provider="metrics".*key="k2".*\} \d', l) for l in lines), lines
    assert "sk-key" not in text


def test_an_active_health_check_brings_a_refused_key_back_early(env):
    gw, mock = env
    # k1 is refused once on a chat request: out for an hour...
    mock.add_rules([{"match": dict(bearer(1), path="/chat/completions"), "status": 401, "times": 1}])
    assert gw.chat(body("probed")).status == 200
    # ...but its probe (the model list) works, so it is back within seconds.
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        probes = [r for r in mock.requests() if r["method"] == "GET" and r["path"] == "/v1/models"]
        if probes:
            break
        time.sleep(0.2)
    assert probes, mock.requests()
    probe = probes[0]
    assert probe["headers"]["authorization"] == "Bearer sk-key-1"
    assert not [h for h in probe["headers"] if h.startswith("x-aigw-")]
    time.sleep(0.3)
    mock.clear_requests()
    for _ in range(8):
        assert gw.chat(body("probed")).status == 200
    assert "1" in keys_used(mock), keys_used(mock)
    assert "provider probed key k1 is back: health check answered 200" in gw.log()


def test_a_key_whose_probe_is_still_refused_stays_out_and_one_worker_probes(env):
    gw, mock = env
    mock.add_rules([{"match": bearer(2), "status": 401}])
    # Enough requests for every key to serve one: k2 is refused and taken out.
    for _ in range(4):
        assert gw.chat(body("probed")).status == 200
    assert "2" in keys_used(mock)
    mock.clear_requests()
    time.sleep(3.5)
    chats = [r for r in mock.requests() if r["method"] == "POST"]
    probes = [r for r in mock.requests() if r["method"] == "GET"]
    # Probed about once a second by one worker (not once per worker), and
    # never back in service while refused.
    assert 2 <= len(probes) <= 5, probes
    assert all(r["headers"]["authorization"] == "Bearer sk-key-2" for r in probes)
    assert [r for r in chats if r["headers"]["authorization"] == "Bearer sk-key-2"] == []


def test_clients_hanging_up_do_not_take_keys_out(env):
    gw, mock = env
    import http.client
    import json as _json

    # Clients that give up before a slow provider answers, more often than the
    # failure threshold: not the keys' fault.
    for _ in range(6):
        conn = http.client.HTTPConnection(gw.host, gw.port, timeout=0.3)
        try:
            conn.request("POST", "/v1/chat/completions", body=_json.dumps(body("hangup")),
                         headers={"content-type": "application/json", "x-mock-delay-ms": "1500"})
            conn.getresponse()
        except OSError:
            pass
        finally:
            conn.close()
    # Read the states at once (an unhealthy key would come back by itself
    # after its 2 s backoff): every key still healthy.
    time.sleep(0.3)
    text = urllib.request.urlopen(gw.admin + "/stats/prometheus", timeout=10).read().decode()
    states = re.findall(r'aigw_key_state\{provider="hangup",key="(k\d)"\} (\d+)', text)
    assert sorted(states) == [("k1", "0"), ("k2", "0"), ("k3", "0")], states
    for _ in range(3):
        assert gw.chat(body("hangup")).status == 200


def test_a_reused_client_request_id_does_not_carry_tried_keys_over(env):
    gw, mock = env
    mock.add_rules([{"match": bearer(n), "status": 429, "headers": {"retry-after": "1"}, "times": 1} for n in (1, 2, 3)])
    headers = {"x-request-id": "same-id-every-time"}
    assert gw.chat(body("ratelimit"), headers=headers).status == 429
    time.sleep(1.2)
    assert gw.chat(body("ratelimit"), headers=headers).status == 200


def test_repeated_connection_failures_make_keys_unhealthy(env):
    gw, _ = env
    # Each request tries both keys (one retry); two requests reach the threshold (2).
    for _ in range(2):
        r = gw.chat(body("deadhost"))
        assert r.status == 503 and r.json()["error"]["code"] == "provider_unavailable", r.body
    # Both keys are now out: the gateway answers at once, with Retry-After.
    r = gw.chat(body("deadhost"))
    assert r.status == 503 and r.json()["error"]["code"] == "provider_keys_exhausted", r.body
    assert int(r.headers["retry-after"]) >= 1
