"""The aigw command: validation errors, rendering, and `aigw run`."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from harness import AIGW, ENVOY, WASM_DIR, Mock, aigw, gateway_yaml, provider

BROKEN = """
listen: localhost:8080
admin: 127.0.0.1:8080
providers:
  - name: ok
    kind: openai-compatible
    baseUrl: http://127.0.0.1:1/v1
    keys: [{env: "lower-case"}, {}]
  - name: ok
    kind: openai-compatible
    baseUrl: api.example.com/v1
models:
  - name: a
    target: {provider: ghost}
  - pattern: nostar
    target: {provider: ok}
"""


def test_validate_reports_every_error_with_field_and_value(tmp_path):
    f = tmp_path / "broken.yaml"
    f.write_text(BROKEN)
    r = aigw("validate", str(f), "--no-envoy", check=False)
    assert r.returncode == 1
    out = r.stderr
    for needle in [
        'listen: "localhost:8080": the host must be an IP address',
        "providers[0].keys[0].env: \"lower-case\"",
        "providers[0].keys[1]: set `value` or `env`",
        'providers[1].name: provider "ok" is declared twice',
        'providers[1].baseUrl: "api.example.com/v1" must start with http:// or https://',
        'models[0].target.provider: unknown provider "ghost"',
        'models[1].pattern: "nostar" has no wildcard',
    ]:
        assert needle in out, f"missing {needle!r} in:\n{out}"


def test_validate_names_unknown_fields(tmp_path):
    f = tmp_path / "typo.yaml"
    f.write_text("providers:\n  - name: a\n    kind: openai-compatible\n    baseURL: http://h/v1\n")
    r = aigw("validate", str(f), "--no-envoy", check=False)
    assert r.returncode == 1
    assert "baseURL" in r.stderr


def test_validate_runs_envoy_on_the_render(tmp_path):
    f = tmp_path / "ok.yaml"
    f.write_text("providers:\n  - name: a\n    kind: openai-compatible\n    baseUrl: https://api.example.com/v1\nmodels:\n  - name: m\n    target: {provider: a}\n")
    r = aigw("validate", str(f), "--wasm-dir", str(WASM_DIR), env={"ENVOY_BIN": str(ENVOY)})
    assert "envoy --mode validate: OK" in r.stdout


def test_render_prints_a_complete_bootstrap(tmp_path):
    f = tmp_path / "ok.yaml"
    f.write_text("providers:\n  - name: a\n    kind: openai-compatible\n    baseUrl: http://127.0.0.1:9/v1\n")
    r = aigw("render", str(f), "--wasm-dir", "/opt/aigw")
    assert r.stdout.startswith("# Envoy bootstrap rendered by `aigw render`")
    assert "/opt/aigw/aigw_router.wasm" in r.stdout
    assert "/opt/aigw/aigw_provider.wasm" in r.stdout
    assert "FAIL_CLOSED" in r.stdout


def test_aigw_run_serves_and_stops_on_ctrl_c(tmp_path):
    mock = Mock("run-mock")
    try:
        admin_file = tmp_path / "admin"
        f = tmp_path / "gw.yaml"
        f.write_text(gateway_yaml([provider("p", mock, keys=[{"value": "k"}])], [{"name": "m", "target": {"provider": "p"}}]))
        env = dict(os.environ, AIGW_LISTEN="127.0.0.1:0", AIGW_ADMIN="127.0.0.1:0", ENVOY_BIN=str(ENVOY))
        proc = subprocess.Popen(
            [str(AIGW), "run", str(f), "--wasm-dir", str(WASM_DIR), "--", "--admin-address-path", str(admin_file), "--concurrency", "1"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not (admin_file.exists() and admin_file.read_text().strip()):
                assert proc.poll() is None, proc.stdout.read()
                time.sleep(0.1)
            admin = "http://" + admin_file.read_text().strip()
            for _ in range(100):
                try:
                    if urllib.request.urlopen(admin + "/ready", timeout=2).status == 200:
                        break
                except OSError:
                    time.sleep(0.1)
            listeners = json.load(urllib.request.urlopen(admin + "/listeners?format=json", timeout=5))
            port = listeners["listener_statuses"][0]["local_address"]["socket_address"]["port_value"]
            models = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=5))
            assert [m["id"] for m in models["data"]] == ["m"]
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=20) == 0
            out = proc.stdout.read()
            assert "aigw: gateway on http://127.0.0.1:0/v1" in out
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    finally:
        mock.stop()
