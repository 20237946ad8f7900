"""The benchmark's load generator (tools/bench, `aigw-bench`) against a mock provider directly:
every mode runs and reports the fields bench/run.py reads. No timing is asserted."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from harness import BIN_DIR, Mock

BENCH = Path(os.environ.get("AIGW_BENCH_BIN", BIN_DIR / "aigw-bench"))
SUMMARY = {"count", "mean", "min", "p50", "p90", "p99", "p99_9", "max"}


@pytest.fixture(scope="module")
def mock():
    m = Mock("bench")
    yield m
    m.stop()


def bench(tmp_path: Path, mock: Mock, body: dict, *args: str) -> dict:
    path = tmp_path / "body.json"
    path.write_text(json.dumps(body))
    r = subprocess.run(
        [str(BENCH), "--url", mock.url + "/v1/chat/completions", "--body", str(path), *args],
        capture_output=True, text=True, timeout=30,
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi there"}]}


def test_open_loop_reports_rate_errors_and_latency_percentiles(tmp_path, mock):
    out = bench(tmp_path, mock, CHAT, "--rate", "200", "--duration", "1", "--connections", "4")
    assert out["mode"] == "open"
    assert out["target_rate"] == 200.0
    assert out["requests"] == 200
    assert out["ok"] + out["errors"] == 200
    assert out["errors"] == 0, out["error_kinds"]
    assert out["achieved_rate"] > 0
    assert set(out["latency_us"]) == SUMMARY
    assert set(out["service_us"]) == SUMMARY
    assert out["latency_us"]["count"] == 200
    assert out["ttft_us"] is None and out["gap_us"] is None and out["events"] is None


def test_streams_report_time_to_first_event_gaps_and_event_counts(tmp_path, mock):
    body = dict(CHAT, stream=True, stream_options={"include_usage": True})
    out = bench(tmp_path, mock, body, "--mode", "sequential", "--samples", "20", "-H", "x-mock-chunks: 8")
    assert out["mode"] == "sequential" and out["ok"] == 20
    assert set(out["ttft_us"]) == SUMMARY and out["ttft_us"]["count"] == 20
    # role chunk, 8 words, finish chunk, usage chunk, [DONE]: 12 events, 11 gaps each.
    assert out["events"] == {"responses": 20, "per_response_mean": 12.0, "per_response_min": 12, "per_response_max": 12}
    assert out["gap_us"]["count"] == 20 * 11


def test_closed_loop_and_errors_are_counted_by_kind(tmp_path, mock):
    out = bench(tmp_path, mock, CHAT, "--mode", "closed", "--duration", "0.5", "--connections", "2",
                "-H", "x-mock-status: 503")
    assert out["mode"] == "closed"
    assert out["ok"] == 0 and out["errors"] == out["requests"] > 0
    assert out["error_kinds"] == {"status_503": out["errors"]}
    assert out["achieved_rate"] == 0.0


def test_bad_arguments_are_refused_with_usage():
    r = subprocess.run([str(BENCH), "--url", "http://127.0.0.1:1/"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 2
    assert "--rate is required" in r.stderr
