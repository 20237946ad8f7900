"""Metrics and access log lines through a real Envoy (2 workers): known
requests (plain, streamed, failed, fallen back, without usage) and the exact
values they leave in `/stats/prometheus` and the access log."""
from __future__ import annotations

import json
import math
import re
import time
import urllib.request

import pytest

from harness import NEVER_REFUSE, gateway_yaml, provider

HI = [{"role": "user", "content": "hi"}]
# The mock's usage for HI: prompt 2, completion 6 (its six words).
KEYS = {"team-a": "sk-aigw-observability-team-a", "team-b": "sk-aigw-observability-team-b"}


def body_estimate(body: dict) -> int:
    """Without a token-limited consumer, the gateway estimates a prompt at a
    quarter token per byte of the request body (as the harness sends it)."""
    return math.ceil(len(json.dumps(body).encode()) / 4)


@pytest.fixture(scope="module")
def env(mock_factory, gateway_factory):
    a, b = mock_factory("oa"), mock_factory("ob")
    yaml = gateway_yaml(
        providers=[
            provider("pa", a, keys=[{"value": "sk-a"}], keyPool=NEVER_REFUSE),
            provider("pb", b, keys=[{"value": "sk-b"}], keyPool=NEVER_REFUSE),
            provider("two", a, keys=[{"id": "k1", "value": "sk-1"}, {"id": "k2", "value": "sk-2"}],
                     keyPool=NEVER_REFUSE),
        ],
        models=[
            {"name": "gpt", "target": {"provider": "pa"}},
            {"name": "chain", "target": {"provider": "pa"}, "fallback": [{"provider": "pb", "model": "b-model"}]},
            {"name": "keys", "target": {"provider": "two"}},
            {"pattern": "any-*", "target": {"provider": "pa"}},
        ],
        consumers=[{"name": n, "keys": [{"value": k}]} for n, k in KEYS.items()],
    )
    gw = gateway_factory(yaml)
    return gw, a, b


def auth(who: str) -> dict:
    return {"authorization": f"Bearer {KEYS[who]}"}


def scrape(gw) -> dict:
    """`/stats/prometheus` as {(name, ((label, value), ...)): value}."""
    with urllib.request.urlopen(gw.admin + "/stats/prometheus", timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        m = re.match(r"^(aigw_\w+)(?:\{(.*)\})? (\S+)$", line)
        if not m:
            continue
        labels = tuple(sorted(re.findall(r'(\w+)="([^"]*)"', m.group(2) or "")))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(metrics: dict, name: str, **labels) -> float:
    want = tuple(sorted(labels.items()))
    return metrics.get((name, want), 0.0)


def wait_for(gw, check, timeout: float = 15.0):
    """Histograms reach the admin endpoint when Envoy flushes its stats (every 5 s)."""
    deadline = time.monotonic() + timeout
    while True:
        m = scrape(gw)
        if check(m) or time.monotonic() > deadline:
            return m
        time.sleep(0.25)


def log_line(gw, request_id: str) -> dict:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = [l for l in gw.access_log() if l.get("request_id") == request_id]
        if lines:
            return lines[-1]
        time.sleep(0.1)
    raise AssertionError(f"no access log line for {request_id}")


LABELS = dict(model="gpt", served_model="gpt", provider="pa", consumer="team-a")


def test_a_plain_request_is_counted_with_its_reported_tokens_and_logged(env):
    gw, *_ = env
    before = scrape(gw)
    r = gw.chat({"model": "gpt", "messages": HI}, headers={**auth("team-a"), "x-request-id": "obs-plain"})
    assert r.status == 200, r.body
    m = scrape(gw)
    d = lambda name, **l: value(m, name, **l) - value(before, name, **l)
    assert d("aigw_requests_total", **LABELS, status="2xx") == 1
    for kind, n in (("input", 2), ("output", 6), ("total", 8)):
        assert d("aigw_tokens_total", **LABELS, type=kind, source="reported") == n, kind
    line = log_line(gw, "obs-plain")
    assert (line["model"], line["served_model"], line["provider"], line["consumer"]) == ("gpt", "gpt", "pa", "team-a")
    assert (line["input_tokens"], line["output_tokens"], line["total_tokens"]) == ("2", "6", "8")
    assert line["tokens_source"] == "reported"
    assert line["ttft_ms"] is None  # not a stream
    timing = dict(model="gpt", provider="pa", consumer="team-a")
    m = wait_for(gw, lambda m: value(m, "aigw_request_duration_ms_count", **timing) >= 1)
    assert value(m, "aigw_request_duration_ms_count", **timing) >= 1


def test_a_stream_counts_its_usage_and_records_time_to_first_token(env):
    gw, *_ = env
    timing = dict(model="gpt", provider="pa", consumer="team-b")
    before = wait_for(gw, lambda m: True)
    s = gw.stream({"model": "gpt", "stream": True, "messages": HI},
                  headers={**auth("team-b"), "x-request-id": "obs-stream"})
    assert s.status == 200 and s.data()[-1] == "[DONE]"
    m = scrape(gw)
    labels = dict(LABELS, consumer="team-b")
    # The usage chunk the gateway asked for (hidden from this client) was counted.
    assert all("usage" not in c for c in s.chunks())
    assert value(m, "aigw_tokens_total", **labels, type="total", source="reported") \
        - value(before, "aigw_tokens_total", **labels, type="total", source="reported") == 8
    line = log_line(gw, "obs-stream")
    assert line["total_tokens"] == "8" and line["tokens_source"] == "reported"
    assert int(line["ttft_ms"]) >= 0
    m = wait_for(gw, lambda m: value(m, "aigw_time_to_first_token_ms_count", **timing)
                 > value(before, "aigw_time_to_first_token_ms_count", **timing)
                 and value(m, "aigw_stream_duration_ms_count", **timing)
                 > value(before, "aigw_stream_duration_ms_count", **timing))
    assert value(m, "aigw_time_to_first_token_ms_count", **timing) \
        - value(before, "aigw_time_to_first_token_ms_count", **timing) == 1
    assert value(m, "aigw_stream_duration_ms_count", **timing) \
        - value(before, "aigw_stream_duration_ms_count", **timing) == 1
    # The gateway's own buckets (rendered by aigw), fine at the low end.
    les = {dict(l)["le"] for (n, l) in m if n == "aigw_time_to_first_token_ms_bucket"}
    assert {"1", "2", "5", "10", "1800000", "+Inf"} <= les, les


def test_a_failed_request_is_counted_by_status_class_without_tokens(env):
    gw, *_ = env
    before = scrape(gw)
    r = gw.chat({"model": "gpt", "messages": HI}, headers={**auth("team-a"), "x-mock-status": "503"})
    assert r.status == 503
    m = scrape(gw)
    assert value(m, "aigw_requests_total", **LABELS, status="5xx") \
        - value(before, "aigw_requests_total", **LABELS, status="5xx") == 1
    tokens = lambda mm: sum(v for (n, l), v in mm.items() if n == "aigw_tokens_total" and ("consumer", "team-a") in l)
    assert tokens(m) == tokens(before)
    # The gateway's own refusals are counted too, without a provider.
    r = gw.chat({"model": "gpt", "messages": HI})
    assert r.status == 401
    m2 = scrape(gw)
    none = dict(model="none", served_model="none", provider="none", consumer="none", status="4xx")
    assert value(m2, "aigw_requests_total", **none) - value(m, "aigw_requests_total", **none) == 1


def test_a_fallback_is_counted_and_the_request_labelled_with_the_target_that_served(env):
    gw, a, b = env
    a.add_rules([{"match": {"header": {"x-test": "obs-fallback"}}, "status": 500}])
    before = scrape(gw)
    r = gw.chat({"model": "chain", "messages": HI},
                headers={**auth("team-a"), "x-test": "obs-fallback", "x-request-id": "obs-fallback"})
    assert r.status == 200 and r.headers["x-aigw-provider"] == "pb"
    m = scrape(gw)
    assert value(m, "aigw_fallbacks_total", model="chain", provider="pb") \
        - value(before, "aigw_fallbacks_total", model="chain", provider="pb") == 1
    served = dict(model="chain", served_model="b-model", provider="pb", consumer="team-a")
    assert value(m, "aigw_requests_total", **served, status="2xx") \
        - value(before, "aigw_requests_total", **served, status="2xx") == 1
    line = log_line(gw, "obs-fallback")
    assert (line["model"], line["served_model"], line["provider"]) == ("chain", "b-model", "pb")
    assert line["cluster"] == "aigw-chain-m1"


def test_a_retry_on_another_key_is_counted(env):
    gw, a, _ = env
    # The first attempt (whichever key it uses) gets 429; the retry, on the other key, succeeds.
    a.add_rules([{"match": {"header": {"x-test": "obs-retry"}}, "status": 429, "times": 1}])
    before = scrape(gw)
    r = gw.chat({"model": "keys", "messages": HI}, headers={**auth("team-a"), "x-test": "obs-retry"})
    assert r.status == 200, r.body
    m = scrape(gw)
    assert value(m, "aigw_retries_total", provider="two") - value(before, "aigw_retries_total", provider="two") == 1


def estimate(text: str) -> int:
    """The gateway's documented text estimate: a quarter token per ASCII
    character, one per other character."""
    ascii_chars = sum(1 for c in text if ord(c) < 128)
    return math.ceil(ascii_chars / 4) + sum(1 for c in text if ord(c) >= 128)


def test_tokens_are_estimated_when_the_provider_reports_none(env):
    gw, *_ = env
    labels = dict(LABELS)
    before = scrape(gw)
    body = {"model": "gpt", "messages": HI}
    r = gw.chat(body, headers={**auth("team-a"), "x-mock-usage": "omit", "x-request-id": "obs-estimate"})
    assert r.status == 200 and "usage" not in r.json()
    out = estimate(r.json()["choices"][0]["message"]["content"])
    m = scrape(gw)
    d = lambda kind: value(m, "aigw_tokens_total", **labels, type=kind, source="estimated") \
        - value(before, "aigw_tokens_total", **labels, type=kind, source="estimated")
    inp = body_estimate(body)
    assert (d("input"), d("output"), d("total")) == (inp, out, inp + out)
    line = log_line(gw, "obs-estimate")
    assert line["tokens_source"] == "estimated"
    assert line["output_tokens"] == str(out)
    # A stream without usage: estimated from the text streamed, chunk by chunk.
    before = scrape(gw)
    s = gw.stream({"model": "gpt", "stream": True, "messages": HI}, headers={**auth("team-a"), "x-mock-usage": "omit"})
    assert s.status == 200
    streamed = sum(estimate(c["choices"][0]["delta"].get("content") or "") for c in s.chunks() if c.get("choices"))
    m = scrape(gw)
    assert value(m, "aigw_tokens_total", **labels, type="output", source="estimated") \
        - value(before, "aigw_tokens_total", **labels, type="output", source="estimated") == streamed


def test_too_many_distinct_models_fold_into_other(env):
    gw, *_ = env
    # Each worker keeps 100 distinct values per label; 2 workers share the load.
    for i in range(230):
        r = gw.chat({"model": f"any-{i}", "messages": HI}, headers=auth("team-b"))
        assert r.status == 200
    m = scrape(gw)
    distinct = {dict(l)["model"] for (n, l), _ in m.items() if n == "aigw_requests_total"}
    assert "other" in distinct
    any_models = {v for v in distinct if v.startswith("any-")}
    assert len(any_models) <= 200
    other = sum(v for (n, l), v in m.items() if n == "aigw_requests_total" and dict(l)["model"] == "other")
    assert other + sum(v for (n, l), v in m.items()
                       if n == "aigw_requests_total" and dict(l)["model"].startswith("any-")) == 230
    # Each worker named at most 100 models; both workers served some.
    assert 100 <= len(any_models) <= 200, len(any_models)


def test_label_values_are_sanitized_and_configured_models_keep_their_names(env):
    gw, *_ = env
    # A dot would end the value in the metric name: it becomes `_`.
    r = gw.chat({"model": "any-2.5.x", "messages": HI}, headers=auth("team-b"))
    assert r.status == 200
    m = scrape(gw)
    models = {dict(l)["model"] for (n, l), _ in m.items() if n == "aigw_requests_total"}
    assert "any-2_5_x" in models or "other" in models
    assert not any("." in v for v in models)
    # A model named like a label cannot pose as one.
    r = gw.chat({"model": "any-x", "messages": HI}, headers=auth("team-b"))
    assert r.status == 200
    # Configured names are never folded, however many others came first.
    r = gw.chat({"model": "gpt", "messages": HI}, headers=auth("team-b"))
    assert r.status == 200
    m = scrape(gw)
    assert value(m, "aigw_requests_total", model="gpt", served_model="gpt", provider="pa",
                 consumer="team-b", status="2xx") >= 1
    # Every aigw metric family is clean: labels became labels.
    families = {n for n, _ in m}
    assert all(re.fullmatch(r"aigw_[a-z_]+", f) for f in families), families
    assert not any("_model_" in f or "_provider_" in f for f in families), families


def test_an_anthropic_client_of_a_provider_without_usage_gets_estimated_tokens(env):
    gw, *_ = env
    before = scrape(gw)
    r = gw.request("POST", "/v1/messages", {"model": "gpt", "max_tokens": 20, "messages": HI},
                   headers={**auth("team-a"), "x-mock-usage": "omit", "x-request-id": "obs-anthropic"})
    assert r.status == 200, r.body
    m = scrape(gw)
    d = lambda source: value(m, "aigw_tokens_total", **LABELS, type="output", source=source) \
        - value(before, "aigw_tokens_total", **LABELS, type="output", source=source)
    # The converter's all-zero usage is not taken for a report.
    assert d("reported") == 0
    assert d("estimated") == estimate(r.json()["content"][0]["text"])
    assert log_line(gw, "obs-anthropic")["tokens_source"] == "estimated"


def test_each_filter_reports_its_vm_memory(env):
    """`aigw_wasm_memory_bytes{filter}`: the linear memory of each filter's VM, set at
    configuration and every 10 s; a wasm page is 64 KiB, a filter's VM holds at least its
    module's data and stack (over 1 MiB here)."""
    gw, *_ = env
    assert gw.chat({"model": "gpt", "messages": HI}, headers=auth("team-a")).status == 200
    m = wait_for(gw, lambda m: all(value(m, "aigw_wasm_memory_bytes", filter=f) > 0
                                   for f in ("router", "provider")))
    for f in ("router", "provider"):
        v = value(m, "aigw_wasm_memory_bytes", filter=f)
        assert v >= 1 << 20 and v % 65536 == 0, (f, v)
