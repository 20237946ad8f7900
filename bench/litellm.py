#!/usr/bin/env python3
"""LiteLLM proxy (from PyPI) on the benchmark's mock provider, for `bench/run.py` to compare with.

- `ensure_venv(root)` installs `litellm[proxy]==LITELLM_VERSION` into `root/.venv-litellm`
  (created with the running interpreter; a stamp file names the requirement, so a second call
  is a file read) and returns the `litellm` executable.
- `LiteLLM(exe, mock_url, model, workdir, cpus)` writes a proxy config mapping `model` to the
  mock as an OpenAI-compatible provider (`openai/<model>`, `api_base=<mock_url>/v1`, a dummy
  key), starts `litellm` on a free port in its own session, optionally pinned to `cpus`, and
  waits for `GET /health/liveliness`. `.url` (`http://127.0.0.1:PORT`, no path), `.pid`,
  `cpu_seconds()`, `rss_kib()` (both over the process and its descendants), `stop()`.
  No master key and no database: requests need no `Authorization` header.

`python bench/litellm.py` is a smoke run: the mock (harness.Mock), LiteLLM, and aigw-bench's
sequential and open-loop runs against both, printing p50/p99, achieved rate, events per
streamed response and LiteLLM's CPU per request. BENCH_NO_PIN=1 as in run.py;
LITELLM_RATE (open-loop req/s, default 50), LITELLM_SAMPLES (default 200).

Gotchas found setting this up (LiteLLM 1.102.4, Python 3.11.7):

- Version: litellm >= 1.103 requires `certifi>=2026.10.19`, newer than the PyPI mirror here
  carries, so the newest release does not resolve; 1.102.4 is the newest that installs.
  ~690 MiB installed (boto3, azure, polars, numpy, granian, ... come with `[proxy]`), about
  a minute from the mirror. The venv holds a `.gitignore` of `*`, so git does not list it.
- Startup: 5-10 s of imports before the port opens; the first requests afterwards are slow
  again (lazy imports, the upstream client): warm up before measuring.
- Offline: on import LiteLLM fetches its model cost map from raw.githubusercontent.com (three
  tries, then its bundled copy). `LITELLM_LOCAL_MODEL_COST_MAP=True` skips the fetch.
- Logging: `LITELLM_LOG=ERROR` quiets LiteLLM's own loggers (verbose by default). uvicorn's
  access log (a line per request) needs `--log_config`: a dictConfig written here with
  uvicorn's loggers at WARNING. `LITELLM_DONT_SHOW_FEEDBACK_BOX=true` drops the feedback box;
  the ASCII banner and one CRITICAL line ("LITELLM_MASTER_KEY is not set!") stay, harmless.
- Telemetry: `--telemetry False` and `telemetry: false` in litellm_settings.
- No database: spend logs, budgets and virtual keys need one; none is configured (DATABASE_URL
  and friends are removed from its environment) and `disable_spend_logs`/`disable_error_logs`
  are set anyway. No `master_key`, so no auth. `LITELLM_MODE=PRODUCTION`: no `.env` loading.
- Workers: `--num_workers 1` runs uvicorn (uvloop) in the `litellm` process itself, no child;
  with more, uvicorn spawns workers, which `cpu_seconds()`/`rss_kib()` count as descendants.
- Headers: client headers are not forwarded to the provider unless
  `general_settings.forward_client_headers_to_llm_api: true`; then every `x-*` header but
  `x-stainless-*` is, so `x-mock-chunks` reaches the mock. Set here. The request the mock gets
  is re-made by the OpenAI SDK (its `x-stainless-*`, user-agent, `authorization: Bearer
  <dummy key>`), body keys unchanged.
- Retries: `num_retries: 0` so a failing upstream shows as an error, not a slow success.
- Streaming: LiteLLM parses every chunk (OpenAI SDK, pydantic) and writes its own: the same
  number of events, text, token counts and `[DONE]`, but re-encoded (no `logprobs`/`"usage":
  null` keys, `completion_tokens_details` added, the usage chunk carries an empty choice).
  Per chunk this costs ~0.8 ms of CPU; a 64-chunk response ~55 ms, a small chat ~8 ms.
- Per request (stock `litellm[proxy]`, no OpenTelemetry SDK) auth tries to import
  `opentelemetry.sdk` and fails, every request: ~7 % of its CPU in a profile. Left as is (this
  measures LiteLLM as installed), but worth knowing.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
import harness  # noqa: E402  (the tests' mock provider process)

LITELLM_VERSION = "1.102.4"
REQUIREMENT = f"litellm[proxy]=={LITELLM_VERSION}"
VENV_NAME = ".venv-litellm"
STARTUP_TIMEOUT = 120.0
DUMMY_KEY = "sk-bench-litellm"


def log(msg: str) -> None:
    print(f"[litellm {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- install ---------------------------------------------------------------------------------


def ensure_venv(root: Path) -> Path:
    """`root/.venv-litellm` with LiteLLM's proxy installed; the path of its `litellm`."""
    venv = Path(root) / VENV_NAME
    exe = venv / "bin" / "litellm"
    stamp = venv / ".stamp"
    if exe.exists() and stamp.exists() and stamp.read_text().strip() == REQUIREMENT:
        return exe
    t0 = time.monotonic()
    py = venv / "bin" / "python"
    if not py.exists():
        log(f"creating {venv}")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    log(f"installing {REQUIREMENT} from PyPI into {venv} (about a minute)")
    r = subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", REQUIREMENT],
                       capture_output=True, text=True)
    if r.returncode != 0 or not exe.exists():
        raise RuntimeError(f"pip install {REQUIREMENT} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    (venv / ".gitignore").write_text("*\n")  # not part of the repository
    stamp.write_text(REQUIREMENT + "\n")
    log(f"installed in {time.monotonic() - t0:.0f} s")
    return exe


# --- the proxy -------------------------------------------------------------------------------


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat after the command name: index 1 is ppid, 11-14 utime stime cutime cstime."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _tree(root: int) -> list[int]:
    """`root` and its live descendants."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                children.setdefault(int(_stat(int(d))[1]), []).append(int(d))
            except (OSError, IndexError):
                pass  # gone meanwhile
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


class LiteLLM:
    """A LiteLLM proxy process serving `model` from the mock at `mock_url`."""

    def __init__(self, exe: Path, mock_url: str, model: str, workdir: Path, cpus: set | None = None):
        self.exe = Path(exe)
        self.workdir = Path(workdir)
        self.cpus = cpus
        self.config = self.workdir / "litellm.yaml"
        self.config.write_text(yaml.safe_dump(self._config(mock_url, model), sort_keys=False))
        # uvicorn's logging (dictConfig): no access log line per request, warnings only.
        self.log_config = self.workdir / "litellm-logging.json"
        self.log_config.write_text(json.dumps({
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"plain": {"format": "%(asctime)s %(name)s %(levelname)s %(message)s"}},
            "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain",
                                    "stream": "ext://sys.stderr"}},
            "loggers": {name: {"handlers": ["stderr"], "level": "WARNING", "propagate": False}
                        for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
        }))
        self.log_path = self.workdir / "litellm.log"
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("DATABASE_URL", "DIRECT_URL", "LITELLM_MASTER_KEY", "REDIS_HOST", "REDIS_URL")}
        self.env.update({
            "LITELLM_LOG": "ERROR",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no fetch from GitHub at import
            "LITELLM_DONT_SHOW_FEEDBACK_BOX": "true",
            "LITELLM_MODE": "PRODUCTION",  # no .env loading
            "PYTHONUNBUFFERED": "1",
        })
        self._log = open(self.log_path, "w")
        self.proc: subprocess.Popen | None = None
        # The port is free when chosen but may be taken before LiteLLM binds it: try again then.
        for attempt in range(3):
            # A port free right now: LiteLLM cannot report a port-0 bind.
            self.port = harness.closed_port()
            self.url = f"http://127.0.0.1:{self.port}"
            t0 = time.monotonic()
            self._start()
            try:
                self._wait_ready()
                break
            except RuntimeError:
                in_use = "address already in use" in self.log().lower()
                self._kill()
                if not in_use or attempt == 2:
                    self._log.close()
                    raise
        self.startup_s = time.monotonic() - t0
        self.pin_all()
        self.pid = self.proc.pid

    @staticmethod
    def _config(mock_url: str, model: str) -> dict:
        return {
            "model_list": [{
                "model_name": model,
                "litellm_params": {"model": f"openai/{model}", "api_base": f"{mock_url}/v1", "api_key": DUMMY_KEY},
            }],
            "litellm_settings": {
                "telemetry": False,
                "suppress_debug_info": True,
                "turn_off_message_logging": True,
                "request_timeout": 30,
                "num_retries": 0,
                "callbacks": [],
            },
            "router_settings": {"num_retries": 0},
            "general_settings": {
                # No master_key, no database_url: no auth, no spend tracking.
                "disable_spend_logs": True,
                "disable_error_logs": True,
                "store_model_in_db": False,
                "background_health_checks": False,
                # Forward the client's x-* headers (x-mock-chunks, ...) to the provider.
                "forward_client_headers_to_llm_api": True,
            },
        }

    def _start(self) -> None:
        self._log.write(f"--- starting on port {self.port}\n")
        self._log.flush()
        self.proc = subprocess.Popen(
            [str(self.exe), "--config", str(self.config), "--host", "127.0.0.1", "--port", str(self.port),
             "--num_workers", "1", "--telemetry", "False", "--log_config", str(self.log_config)],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env,
            cwd=self.workdir, start_new_session=True,
        )
        # Pinned at once (before the interpreter has started any thread), and again when ready.
        self.pin_all()

    def _wait_ready(self) -> None:
        try:
            harness.wait_until_ok(self.proc, lambda: self.url + "/health/liveliness", STARTUP_TIMEOUT, every=0.2)
        except RuntimeError as e:
            raise RuntimeError(f"LiteLLM {e}. Log:\n{self.log()[-5000:]}") from None

    def pin_all(self) -> None:
        """Every thread of the process and of its descendants on `cpus`."""
        if not self.cpus or self.proc is None:
            return
        for pid in _tree(self.proc.pid):
            try:
                for tid in os.listdir(f"/proc/{pid}/task"):
                    os.sched_setaffinity(int(tid), self.cpus)
            except OSError:
                pass

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def cpu_seconds(self) -> float:
        """utime+stime of the process and its live descendants, plus their reaped children's."""
        ticks = 0
        for pid in _tree(self.proc.pid):
            try:
                f = _stat(pid)
                ticks += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
            except (OSError, IndexError):
                pass
        return ticks / os.sysconf("SC_CLK_TCK")

    def rss_kib(self) -> int:
        total = 0
        for pid in _tree(self.proc.pid):
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                pass
        return total

    def _kill(self) -> None:
        """SIGTERM (uvicorn shuts down gracefully), then SIGKILL to the whole session's group."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # any worker left behind
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()

    def stop(self) -> None:
        self._kill()
        if not self._log.closed:
            self._log.close()


# --- smoke run -------------------------------------------------------------------------------


def _bench(url: str, body: Path, mode: str, headers: list, cpus: set | None, **kw) -> dict:
    """One aigw-bench run (its JSON), the client pinned to `cpus`; `kw` are its flags."""
    bench_bin = Path(os.environ.get("AIGW_BENCH_BIN", harness.BIN_DIR / "aigw-bench"))
    cmd = [str(bench_bin), "--url", url, "--body", str(body), "--mode", mode,
           "--connections", "16", "--drain", "3", "--timeout", "10"]
    for h in headers:
        cmd += ["-H", h]
    for k, v in kw.items():
        cmd += [f"--{k}", str(v)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if cpus:
        os.sched_setaffinity(proc.pid, cpus)
    out, err = proc.communicate(timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"aigw-bench failed ({proc.returncode}): {err}")
    return json.loads(out)


def _stream(url: str, body: bytes, headers: list) -> dict:
    """One streamed response read whole: its data events, text, token counts and whether [DONE]
    ended it (what a client sees, whatever the re-encoding of each chunk)."""
    hdrs = {"content-type": "application/json", **{k.strip(): v.strip() for k, v in (h.split(":", 1) for h in headers)}}
    req = urllib.request.Request(url, data=body, headers=hdrs, method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        status, ctype, raw = r.status, r.headers.get("content-type", ""), r.read().decode()
    data = [e[len("data: "):] for e in raw.split("\n\n") if e.startswith("data: ")]
    chunks = [json.loads(d) for d in data if d != "[DONE]"]
    return {
        "status": status,
        "content_type": ctype.split(";")[0],
        "events": len(data),
        "done": bool(data) and data[-1] == "[DONE]",
        "text": "".join((c["choices"][0]["delta"].get("content") or "") for c in chunks if c.get("choices")),
        # Token counts only: LiteLLM re-encodes the usage (adds completion_tokens_details).
        "usage": next(({k: c["usage"].get(k) for k in ("prompt_tokens", "completion_tokens", "total_tokens")}
                       for c in reversed(chunks) if c.get("usage")), None),
    }


def smoke() -> int:
    import run  # bench/run.py: the same workloads and constants (imported here, not at the top)

    for p in (harness.MOCK, harness.BIN_DIR / "aigw-bench"):
        if not p.exists():
            print(f"litellm: {p} is missing (cargo build --profile tools -p aigw-bench -p mock-provider)",
                  file=sys.stderr)
            return 2
    samples = int(os.environ.get("LITELLM_SAMPLES", 200))
    max_rate = float(os.environ.get("LITELLM_RATE", 50))
    pin = os.environ.get("BENCH_NO_PIN") != "1" and (os.cpu_count() or 1) >= 2
    # As run.py: the client and the mock on CPU 0, the proxy on CPU 1.
    client_cpus, proxy_cpus = ({0}, {1}) if pin else (None, None)

    t0 = time.monotonic()
    exe = ensure_venv(ROOT)
    log(f"venv ready in {time.monotonic() - t0:.1f} s: {exe}")
    workdir = Path(tempfile.mkdtemp(prefix="aigw-litellm-"))
    if client_cpus:
        os.sched_setaffinity(0, client_cpus)
    mock = harness.Mock("mock")
    if client_cpus:
        for tid in os.listdir(f"/proc/{mock.proc.pid}/task"):
            os.sched_setaffinity(int(tid), client_cpus)
    ll = None
    try:
        ll = LiteLLM(exe, mock.url, run.MODEL, workdir, proxy_cpus)
        log(f"LiteLLM {LITELLM_VERSION} up at {ll.url} (pid {ll.pid}) in {ll.startup_s:.1f} s, "
            f"RSS {ll.rss_kib() / 1024:.0f} MiB; mock {mock.url}; log {ll.log_path}")
        urls = {"direct": mock.url + run.PATH, "litellm": ll.url + run.PATH}
        wls = {k: v for k, v in run.workloads().items() if k in ("small", "sse64")}
        rows = []

        def measure(name: str, mode: str, **kw) -> dict:
            wl = wls[name]
            body = workdir / f"body-{name}.json"
            body.write_bytes(wl["body"])
            out = {}
            for target, url in urls.items():
                # Warm-up: LiteLLM's first requests import code and open its upstream client.
                _bench(url, body, "sequential", wl["headers"], client_cpus, samples=20)
                cpu0 = ll.cpu_seconds()
                r = _bench(url, body, mode, wl["headers"], client_cpus, **kw)
                cpu = ll.cpu_seconds() - cpu0
                if target == "litellm" and r["ok"]:
                    r["litellm_cpu_us_per_request"] = round(cpu * 1e6 / r["ok"])
                rows.append((name, mode, kw, target, r))
                out[target] = r
                mock.clear_requests()
            return out

        # The stream through LiteLLM against the mock's own: same text, usage, [DONE]; and what
        # reached the mock (x-mock-chunks forwarded? body changed?).
        sse = wls["sse64"]
        streams = {}
        for target, url in urls.items():
            streams[target] = _stream(url, sse["body"], sse["headers"])
            seen = mock.requests()[-1]
            log(f"{target}: {streams[target]['events']} data events, [DONE] {streams[target]['done']}, "
                f"usage {streams[target]['usage']}; upstream got x-mock-chunks="
                f"{seen['headers'].get('x-mock-chunks')}, model {(seen.get('json') or {}).get('model')!r}, "
                f"body keys {sorted(seen.get('json') or {})}")
            mock.clear_requests()
        same = all(streams["litellm"][k] == streams["direct"][k] for k in ("status", "text", "usage", "done"))
        if not same:
            log(f"the stream through LiteLLM differs from the mock's: {streams}")

        # One at a time, then open loop at a rate LiteLLM sustains (half its one-at-a-time rate,
        # at most LITELLM_RATE): the same rate for both targets.
        seq = {name: measure(name, "sequential", samples=samples) for name in wls}
        for name in wls:
            rate = max(1.0, round(min(max_rate, 0.5 * seq[name]["litellm"]["achieved_rate"])))
            measure(name, "open", rate=rate, duration=5)
        rss = ll.rss_kib()

        print(f"\nLiteLLM {LITELLM_VERSION} vs the mock directly (aigw-bench, HTTP/1.1, 16 connections; "
              f"pinning {'proxy CPU 1, client and mock CPU 0' if pin else 'none'}); times in µs\n")
        print(f"{'workload':8} {'run':16} {'target':8} {'ok':>5} {'err':>4} {'rate/s':>8} {'p50':>7} {'p99':>7} "
              f"{'ttft p50':>8} {'events':>6} {'cpu/req':>8}")
        for name, mode, kw, target, r in rows:
            m = f"open {kw['rate']:g}/s" if mode == "open" else f"sequential x{kw['samples']}"
            lat, ttft, ev = r["latency_us"] or {}, r.get("ttft_us") or {}, r.get("events") or {}
            print(f"{name:8} {m:16} {target:8} {r['ok']:>5} {r['errors']:>4} {r['achieved_rate']:>8.1f} "
                  f"{lat.get('p50', '-'):>7} {lat.get('p99', '-'):>7} {ttft.get('p50', '-'):>8} "
                  f"{ev.get('per_response_mean', '-'):>6} {r.get('litellm_cpu_us_per_request', '-'):>8}"
                  + (f"  errors {r['error_kinds']}" if r["errors"] else ""))
        print(f"\nSSE through LiteLLM: {streams['litellm']['events']} data events per response "
              f"(mock directly: {streams['direct']['events']}); text, usage and [DONE] "
              f"{'identical' if same else 'DIFFERENT'}.")
        print(f"LiteLLM: startup {ll.startup_s:.1f} s, RSS {rss / 1024:.0f} MiB after the runs; "
              f"cpu/req = LiteLLM utime+stime over the run / responses.")
        bad = [(n, m, t) for n, m, _, t, r in rows if r["errors"] or not r["ok"]]
        if bad or not same:
            print(f"errors in {bad}; LiteLLM log tail:\n{ll.log()[-3000:]}", file=sys.stderr)
            return 1
        return 0
    finally:
        if ll is not None:
            ll.stop()
        mock.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(smoke())
