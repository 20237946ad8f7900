#!/usr/bin/env python3
"""The aigw benchmark (`make bench`): plain Envoy against the aigw filter chain, in one Envoy.

One mock provider; one Envoy (`--concurrency 1`) rendered from a gateway file by `aigw render`
and given listeners that differ only in their HTTP filters (and their route):

- `l0` (plain): Envoy's router only, straight to a copy of the mock's cluster without the
  upstream filter (the request reaches the mock unchanged: same path, same body);
- `l1` (wasm idle): `l0` with a no-op proxy-wasm module (bench/noop-filter) where aigw has its
  two filters (first in the listener's chain, and as the upstream filter of a copy of the
  cluster): the price of a VM in the path, nothing else;
- `l2` (aigw): the aigw chain as rendered (router wasm filter, header_to_metadata, router; the
  provider wasm filter in the cluster);

and the mock directly (`direct`) as the floor. The gateway file has two providers on the same
mock: `mock` (OpenAI-compatible, the pass-through route) and `mock-anthropic` (Anthropic
Messages), whose model `small-translated` is the translated route (OpenAI client → Anthropic
provider); `l0`, `l1` and `direct` send the same body to the mock's OpenAI endpoint.

Phases: (1) each workload: closed-loop capacity of every target, then open-loop runs at
fractions of plain Envoy's capacity and a one-at-a-time pass, targets interleaved within each
round, several rounds; figures are medians over rounds of differences within a round (aigw −
plain, split into wasm idle − plain and aigw − wasm idle), the spread is their min and max.
(2) A soak: aigw at a fixed open-loop rate, Envoy's and the VMs' memory sampled every 10 s.
(3) LiteLLM proxy (bench/litellm.py) on the same mock: small chat and SSE through it, plain
Envoy, aigw and the mock directly, interleaved.

Writes bench/results/<timestamp>.{json,md} and bench/results/latest.md.

Environment: BENCH_QUICK=1 (a few minutes), BENCH_DURATION (s per open-loop run),
BENCH_ROUNDS, BENCH_FRACTIONS (e.g. 0.25,0.5,0.75), BENCH_WORKLOADS (e.g. small,sse64),
BENCH_SAMPLES (one-at-a-time requests), BENCH_CONNECTIONS, BENCH_NO_PIN=1 (do not pin Envoy
and LiteLLM to CPU 1 and the client and mock to CPU 0), BENCH_SOAK_S (soak length, 0: no
soak), BENCH_LITELLM=0 (no LiteLLM phase). Binaries: AIGW_BIN_DIR (aigw, mock-provider),
AIGW_BENCH_BIN, AIGW_WASM_DIR, ENVOY_BIN.
"""
from __future__ import annotations

import copy
import datetime as dt
import hashlib
import importlib.util
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import harness  # noqa: E402  (the tests' mock provider process)

ROOT = Path(__file__).resolve().parent.parent
BIN_DIR = Path(os.environ.get("AIGW_BIN_DIR", ROOT / "target" / "tools"))
BENCH_BIN = Path(os.environ.get("AIGW_BENCH_BIN", BIN_DIR / "aigw-bench"))
WASM_DIR = Path(os.environ.get("AIGW_WASM_DIR", ROOT / "target" / "wasm32-wasip1" / "release"))
ENVOY = Path(os.environ.get("ENVOY_BIN", ROOT / ".venv" / "bin" / "envoy"))
RESULTS = Path(os.environ.get("BENCH_RESULTS_DIR", ROOT / "bench" / "results"))

QUICK = os.environ.get("BENCH_QUICK") == "1"


def _env_list(name: str, default: list) -> list:
    v = os.environ.get(name)
    return [type(default[0])(x) for x in v.split(",")] if v else default


SETTINGS = {
    "quick": QUICK,
    "duration_s": float(os.environ.get("BENCH_DURATION", 0.8 if QUICK else 3.0)),
    "capacity_s": 0.8 if QUICK else 2.0,
    "rounds": int(os.environ.get("BENCH_ROUNDS", 1 if QUICK else 3)),
    "fractions": _env_list("BENCH_FRACTIONS", [0.25, 0.75] if QUICK else [0.25, 0.5, 0.75]),
    "samples": int(os.environ.get("BENCH_SAMPLES", 200 if QUICK else 1000)),
    "connections": int(os.environ.get("BENCH_CONNECTIONS", 16)),
    "workloads": _env_list("BENCH_WORKLOADS", ["small", "prompt16k", "prompt256k", "sse64",
                                               "translated", "translated_sse64"]),
    # The latency bound of "throughput at a p99 bound" (small chat).
    "p99_bound_us": int(os.environ.get("BENCH_P99_BOUND_US", 5000)),
    "pin": os.environ.get("BENCH_NO_PIN") != "1" and (os.cpu_count() or 1) >= 2,
    # aigw as deployed: callers present a consumer's virtual key, with token and request budgets.
    "consumer": os.environ.get("BENCH_CONSUMER") != "0",
    # Soak: aigw (l2), small chat, open loop at this fraction of its closed-loop capacity, in
    # consecutive aigw-bench runs of `soak_chunk_s`; memory sampled every `sample_every_s`.
    "soak_s": float(os.environ.get("BENCH_SOAK_S", 20 if QUICK else 600)),
    "soak_fraction": 0.5,
    "soak_chunk_s": 10.0 if QUICK else 30.0,
    "sample_every_s": 10.0,
    # LiteLLM: rounds, one-at-a-time requests per run, open-loop rate as a fraction of its
    # one-at-a-time rate, open-loop run length (enough for ~`litellm_open_requests`, bounded).
    "litellm": os.environ.get("BENCH_LITELLM") != "0",
    # The price of each kind of host call, from the no-op module asked to make N of them.
    "hostcalls": os.environ.get("BENCH_HOSTCALLS") != "0",
    "litellm_workloads": ["small", "sse64"],
    "litellm_rounds": 1 if QUICK else 2,
    "litellm_samples": 100 if QUICK else 300,
    "litellm_rate_fraction": 1 / 3,
    "litellm_open_requests": 100 if QUICK else 300,
    "litellm_open_s": [3.0, 6.0] if QUICK else [10.0, 20.0],
}

MODEL = "small"
TRANSLATED_MODEL = "small-translated"
PATH = "/v1/chat/completions"
KEY_ENV = "AIGW_BENCH_KEY"
# The consumer's virtual key, sent by every request to every target (the others ignore it).
CONSUMER_KEY = "sk-aigw-bench-consumer"
PROVIDER = "mock"  # OpenAI-compatible: the pass-through route, and the one l0/l1 copy
ANTHROPIC_PROVIDER = "mock-anthropic"  # the same mock as an Anthropic provider: the translated route
PROVIDER_CLUSTER = f"aigw-provider-{PROVIDER}"  # `aigw render` names a provider's cluster so
TARGETS = ["direct", "l0", "l1", "l2"]
LISTENERS = ["l0", "l1", "l2"]
NAMES = {"direct": "direct", "l0": "plain", "l1": "wasm idle", "l2": "aigw", "litellm": "LiteLLM"}
# Differences reported for every latency figure, each `a − b` within a round.
DELTAS = {"added": ("l2", "l0"), "vm": ("l1", "l0"), "work": ("l2", "l1")}
CLIENT_CPUS = {0}
ENVOY_CPUS = {1}
# How often the filters report their VM's memory (aigw_wasm_memory_bytes).
VM_GAUGE_PERIOD_S = 10.0


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- workloads -------------------------------------------------------------------------------


def _prompt(size: int) -> bytes:
    """A chat request of about `size` bytes (words of text in one user message)."""
    head = {"model": MODEL, "messages": [{"role": "user", "content": ""}]}
    base = len(json.dumps(head))
    words = ("the quick brown fox jumps over the lazy dog " * (size // 44 + 2))[: max(size - base, 8)]
    head["messages"][0]["content"] = words.strip()
    return json.dumps(head).encode()


def workloads() -> dict:
    """Every workload: a title, the request body, extra headers, and whether it streams."""
    small = {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant. Answer briefly and precisely."},
            {"role": "user", "content": "What is the capital of France? Please answer in one short sentence, "
             "and mention one famous landmark there as well."},
        ],
        "max_tokens": 64,
        "temperature": 0.2,
    }
    sse = dict(small, stream=True, stream_options={"include_usage": True})
    # The translated route: the same bodies, naming the model served by the Anthropic provider.
    # l0, l1 and direct send them to the mock's OpenAI endpoint (which answers any model).
    tr, tr_sse = dict(small, model=TRANSLATED_MODEL), dict(sse, model=TRANSLATED_MODEL)
    return {
        "small": {"title": "small chat (~0.3 KiB)", "body": json.dumps(small).encode(), "headers": [],
                  "stream": False},
        "prompt16k": {"title": "16 KiB prompt", "body": _prompt(16 * 1024), "headers": [], "stream": False},
        "prompt256k": {"title": "256 KiB prompt", "body": _prompt(256 * 1024), "headers": [], "stream": False},
        "sse64": {"title": "SSE, 64 chunks, include_usage", "body": json.dumps(sse).encode(),
                  "headers": ["x-mock-chunks: 64"], "stream": True},
        "translated": {"title": "translated route, small chat (OpenAI client → Anthropic provider)",
                       "body": json.dumps(tr).encode(), "headers": [], "stream": False},
        "translated_sse64": {"title": "translated route, SSE, 64 chunks, include_usage (OpenAI client → "
                             "Anthropic provider)", "body": json.dumps(tr_sse).encode(),
                             "headers": ["x-mock-chunks: 64"], "stream": True},
        # Not a load workload: paced chunks (2 ms apart) to see whether any is held back.
        "sse_paced": {"title": "SSE, 16 chunks 2 ms apart", "body": json.dumps(sse).encode(),
                      "headers": ["x-mock-chunks: 16", "x-mock-chunk-interval-ms: 2"], "stream": True},
    }


# --- processes -------------------------------------------------------------------------------


def pin(pid: int, cpus: set) -> None:
    if SETTINGS["pin"]:
        try:
            os.sched_setaffinity(pid, cpus)
        except OSError:
            pass


class Mock(harness.Mock):
    """The tests' mock provider, with its threads on the client's CPU."""

    def __init__(self):
        super().__init__("mock")
        # The mock's threads run with the client's CPU: set it for each thread it has now.
        for tid in os.listdir(f"/proc/{self.proc.pid}/task"):
            pin(int(tid), CLIENT_CPUS)


def gateway(mock_url: str) -> dict:
    """The bench's gateway file: the mock as an OpenAI-compatible provider (model `small`) and
    as an Anthropic one (model `small-translated`, sent upstream as `small`)."""
    return {
        "listen": "127.0.0.1:0",
        "admin": "127.0.0.1:0",
        "limits": {"maxRequestBodyBytes": 10 * 1024 * 1024},
        "providers": [
            {"name": PROVIDER, "kind": "openai-compatible", "baseUrl": f"{mock_url}/v1",
             "keys": [{"id": "bench", "env": KEY_ENV}]},
            # Anthropic's base URL has no /v1: the provider adds /v1/messages.
            {"name": ANTHROPIC_PROVIDER, "kind": "anthropic", "baseUrl": mock_url,
             "keys": [{"id": "bench-anthropic", "env": KEY_ENV}]},
        ],
        "models": [
            {"name": MODEL, "target": {"provider": PROVIDER}},
            {"name": TRANSLATED_MODEL, "target": {"provider": ANTHROPIC_PROVIDER, "model": MODEL}},
        ],
        # Budgets far above what the bench sends: every request is authenticated, reserves its
        # tokens and settles them, none is refused.
        **({"consumers": [{
            "name": "bench",
            "keys": [{"sha256": hashlib.sha256(CONSUMER_KEY.encode()).hexdigest()}],
            "limits": {"requestsPerMinute": 100_000_000, "tokensPerMinute": 1_000_000_000_000},
        }]} if SETTINGS["consumer"] else {}),
    }


def render_gateway(mock: Mock, workdir: Path) -> dict:
    """`aigw render` of the bench's gateway file (written to `workdir`), parsed."""
    path = workdir / "gateway.yaml"
    path.write_text(yaml.safe_dump(gateway(mock.url), sort_keys=False))
    r = subprocess.run(
        [str(BIN_DIR / "aigw"), "render", str(path), "--wasm-dir", str(WASM_DIR)],
        capture_output=True, text=True, env={**os.environ, KEY_ENV: "sk-bench"}, timeout=120,
    )
    if r.returncode != 0:
        raise RuntimeError(f"aigw render failed:\n{r.stderr}{r.stdout}")
    (workdir / "rendered.yaml").write_text(r.stdout)
    return yaml.safe_load(r.stdout)


def _hcm(listener: dict) -> dict:
    """The HTTP connection manager's config of a listener (its one filter chain's one filter)."""
    return listener["filter_chains"][0]["filters"][0]["typed_config"]


def _copy_cluster(cluster: dict, name: str, http_filters: list | None) -> dict:
    """`cluster` renamed, with `http_filters` as its upstream filters (None: none at all)."""
    c = copy.deepcopy(cluster)
    c["name"] = name
    c["load_assignment"]["cluster_name"] = name
    opts = c["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
    if http_filters is None:
        opts.pop("http_filters", None)
    else:
        opts["http_filters"] = http_filters
    return c


def build_bootstrap(rendered: dict) -> dict:
    """The rendered bootstrap with its one listener turned into `l0`, `l1` and `l2`, identical
    but for their HTTP filters and route config. `l2` is the rendered listener (every model,
    both providers). `l0` has one route, to a filterless copy of the OpenAI-compatible
    provider's cluster; `l1` is `l0` with the no-op module where `l2` has its two filters
    (downstream, and upstream in its own copy of the cluster), so l1 − l0 is the price of a VM
    per request and l2 − l1 the filters' work."""
    boot = copy.deepcopy(rendered)
    res = boot["static_resources"]
    (listener,) = [l for l in res["listeners"] if l["name"] == "aigw"]
    (cluster,) = [c for c in res["clusters"] if c["name"] == PROVIDER_CLUSTER]

    l2 = copy.deepcopy(listener)
    l2["name"] = "l2"
    l2["address"]["socket_address"]["port_value"] = 0

    res["clusters"].append(_copy_cluster(cluster, "bench-plain-mock", None))
    l0 = copy.deepcopy(l2)
    l0["name"] = "l0"
    hcm = _hcm(l0)
    hcm["http_filters"] = [f for f in hcm["http_filters"] if f["name"] == "envoy.filters.http.router"]
    # The first route to the OpenAI-compatible provider's cluster (its model's), for its
    # timeouts; matching every path, to the filterless copy.
    route = copy.deepcopy(next(r for r in hcm["route_config"]["virtual_hosts"][0]["routes"]
                               if r.get("route", {}).get("cluster") == PROVIDER_CLUSTER))
    route["name"] = "plain"
    route["match"] = {"prefix": "/"}
    route["route"]["cluster"] = "bench-plain-mock"
    hcm["route_config"] = {"name": "plain", "virtual_hosts": [{"name": "plain", "domains": ["*"], "routes": [route]}]}

    (router_wasm,) = [f for f in _hcm(listener)["http_filters"] if f["name"] == "envoy.filters.http.wasm"]
    upstream = cluster["typed_extension_protocol_options"][
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]["http_filters"]
    res["clusters"].append(_copy_cluster(
        cluster, "bench-noop-mock",
        [noop_filter(f) if f["name"] == "envoy.filters.http.wasm" else f for f in upstream]))
    l1 = copy.deepcopy(l0)
    l1["name"] = "l1"
    hcm1 = _hcm(l1)
    hcm1["http_filters"] = [noop_filter(router_wasm)] + hcm1["http_filters"]
    hcm1["route_config"]["virtual_hosts"][0]["routes"][0]["route"]["cluster"] = "bench-noop-mock"

    listeners = [l0, l1, l2]
    # The host-call phase: l1 with its downstream no-op module making calls at request headers.
    for name, work in HOSTCALL_WORK.items():
        lx = copy.deepcopy(l1)
        lx["name"] = name
        f = _hcm(lx)["http_filters"][0]["typed_config"]["config"]
        f["name"] = f"aigw-noop-{name}"
        f["configuration"] = {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": work}
        listeners.append(lx)
    res["listeners"] = listeners
    return boot


# Listeners of the host-call phase: what the no-op module does per request (bench/noop-filter).
HOSTCALL_CALLS = 20
HOSTCALL_WORK = {
    "hc_reads": f"reads={HOSTCALL_CALLS}",
    "hc_sets": f"sets={HOSTCALL_CALLS}",
    "hc_props": f"props={HOSTCALL_CALLS}",
    "hc_clock": f"clock={HOSTCALL_CALLS}",
    "hc_hold": "hold=1",
}
HOSTCALL_TITLES = {
    "hc_reads": "read of a request header (Envoy calls back into the VM to allocate the value)",
    "hc_sets": "write of a request header",
    "hc_props": "write of a filter-state property",
    "hc_clock": "read of the clock (no data returned)",
    "hc_hold": "holding headers and body until the body ends (once per request, not per call)",
}


def hostcall_prices(runner: "Runner", wl: dict) -> dict:
    """Envoy CPU per request of l1 and of each host-call listener, closed loop, interleaved,
    several rounds; the price of one call = (listener − l1) ÷ calls, median over rounds."""
    wl = dict(wl, name="small")
    targets = ["l1", *HOSTCALL_WORK]
    rounds = []
    for rnd in range(SETTINGS["rounds"] + 2):
        rr = {}
        for t in rotate(targets, rnd):
            rr[t] = runner.run(t, wl, "closed", duration=SETTINGS["capacity_s"]).get("envoy_cpu_us_per_request")
        rounds.append(rr)
    prices = {}
    for t in HOSTCALL_WORK:
        calls = 1 if t == "hc_hold" else HOSTCALL_CALLS
        prices[t] = med_spread([(rr[t] - rr["l1"]) / calls for rr in rounds
                                if rr.get(t) is not None and rr.get("l1") is not None])
    log(f"host-call prices (µs per call): { {t: get(p, 'median') for t, p in prices.items()} }")
    return {"calls": HOSTCALL_CALLS, "rounds": rounds, "prices": prices,
            "l1_cpu_us": med_spread([rr.get("l1") for rr in rounds])}


def hostcall_section(doc: dict) -> list:
    hc = doc.get("hostcalls")
    if not hc:
        return []
    out = ["## Host-call prices", "",
           f"What a proxy-wasm filter pays Envoy for each kind of call, on this machine: the no-op module of "
           f"`l1` (`bench/noop-filter`) configured to make {hc['calls']} calls of one kind at request headers, "
           f"on copies of `l1`; Envoy CPU per request (closed loop, {SETTINGS['capacity_s']} s runs, "
           f"{len(hc['rounds'])} rounds interleaved) minus `l1`'s ({fmt(hc['l1_cpu_us'], ' µs')}), divided by the "
           "calls. The CPU figure has 10 ms ticks and the machine is shared: read the prices as orders of "
           "magnitude.", "",
           "| Call | µs per call, median [min…max] |", "|---|---|"]
    for t, title in HOSTCALL_TITLES.items():
        out.append(f"| {title} | {fmt(hc['prices'].get(t))} |")
    return out + [""]


def noop_filter(wasm_filter: dict) -> dict:
    """`wasm_filter` (a rendered aigw wasm filter) with the no-op module instead of aigw's."""
    f = copy.deepcopy(wasm_filter)
    cfg = f["typed_config"]["config"]
    cfg["name"] = "aigw-noop"
    cfg.pop("configuration", None)
    cfg["vm_config"]["code"]["local"]["filename"] = str(WASM_DIR / "aigw_noop.wasm")
    cfg["vm_config"].pop("environment_variables", None)
    return f


class Envoy:
    def __init__(self, bootstrap: dict, workdir: Path):
        self.config = workdir / "envoy.yaml"
        self.config.write_text(yaml.safe_dump(bootstrap, sort_keys=False))
        env = {**os.environ, KEY_ENV: "sk-bench"}
        validate(self.config, env)
        self.log_path = workdir / "envoy.log"
        self.admin_path = workdir / "admin-address"
        self._log = open(self.log_path, "w")
        # stdout carries the access log (same format on every listener): discarded, so the
        # benchmark does not measure a disk filling up; Envoy's own log goes to stderr.
        self.proc = subprocess.Popen(
            [str(ENVOY), "-c", str(self.config), "--disable-hot-restart", "--concurrency", "1",
             "--admin-address-path", str(self.admin_path), "--log-level", "warn"],
            stdout=subprocess.DEVNULL, stderr=self._log, env=env, start_new_session=True,
        )
        pin(self.proc.pid, ENVOY_CPUS)
        try:
            self.admin = harness.wait_for_envoy_admin(self.proc, self.admin_path, 60)
        except RuntimeError as e:
            raise RuntimeError(f"Envoy did not start ({e}):\n{self.log_path.read_text()[-5000:]}") from None
        # Threads Envoy started (workers, V8) inherit the affinity; set it again to be sure.
        for tid in os.listdir(f"/proc/{self.proc.pid}/task"):
            pin(int(tid), ENVOY_CPUS)
        statuses = self.admin_json("/listeners?format=json")["listener_statuses"]
        self.ports = {s["name"]: s["local_address"]["socket_address"]["port_value"] for s in statuses}

    def admin_json(self, path: str):
        with urllib.request.urlopen(self.admin + path, timeout=5) as r:
            return json.load(r)

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        # utime and stime are fields 14 and 15 of the whole line; 12 and 13 after the name.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def vm_memory(self) -> dict:
        """The filters' `aigw_wasm_memory_bytes` gauges: {"router": bytes, "provider": bytes}
        (the linear memory of each filter's VM on the worker, as last reported)."""
        stats = self.admin_json("/stats?format=json&filter=wasm_memory_bytes")["stats"]
        return {s["name"].rsplit(".", 1)[1]: s["value"] for s in stats
                if ".filter." in s.get("name", "") and "value" in s}

    def memory(self) -> dict:
        """One memory sample: the process's RSS, the heap as Envoy's allocator sees it (admin
        /memory: `allocated` in use, `heap_size` reserved) and both VM gauges."""
        mem = self.admin_json("/memory")
        vm = self.vm_memory()
        return {"rss_kib": self.rss_kib(), "allocated": int(mem["allocated"]), "heap_size": int(mem["heap_size"]),
                "vm_router": vm.get("router"), "vm_provider": vm.get("provider")}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()


def validate(config: Path, env: dict) -> None:
    """`envoy --mode validate` on a bootstrap, or RuntimeError with Envoy's complaint."""
    r = subprocess.run(
        [str(ENVOY), "--mode", "validate", "--disable-hot-restart", "--log-level", "error", "-c", str(config)],
        capture_output=True, text=True, env=env, timeout=120,
    )
    if r.returncode != 0:
        raise RuntimeError(f"envoy --mode validate rejected the bench bootstrap:\n{r.stdout}{r.stderr}")


# --- running the load generator --------------------------------------------------------------


class Runner:
    """Runs aigw-bench against a target (by name), noting the CPU the run cost the proxy."""

    def __init__(self, mock: Mock, envoy: Envoy, workdir: Path):
        self.mock = mock
        self.envoy = envoy
        self.workdir = workdir
        self.urls = {
            "direct": f"{mock.url}{PATH}",
            **{t: f"http://127.0.0.1:{envoy.ports[t]}{PATH}" for t in envoy.ports},
        }
        # Per target, the process in the path and how to read its CPU time (none for direct).
        self.meters = {t: ("envoy", envoy.cpu_seconds) for t in envoy.ports}

    def add_target(self, name: str, url: str, process: str, cpu_seconds) -> None:
        """Another target (e.g. LiteLLM): runs against it report `<process>_cpu_us_per_request`."""
        self.urls[name] = url
        self.meters[name] = (process, cpu_seconds)

    def run(self, target: str, wl: dict, mode: str, rate: float | None = None,
            duration: float | None = None, samples: int | None = None) -> dict:
        body = self.workdir / f"body-{wl['name']}.json"
        if not body.exists():
            body.write_bytes(wl["body"])
        cmd = [str(BENCH_BIN), "--url", self.urls[target], "--body", str(body), "--mode", mode,
               "--connections", str(SETTINGS["connections"]), "--drain", "3", "--timeout", "5"]
        for h in wl["headers"]:
            cmd += ["-H", h]
        if SETTINGS["consumer"]:
            cmd += ["-H", f"authorization: Bearer {CONSUMER_KEY}"]
        if rate is not None:
            cmd += ["--rate", f"{rate:.1f}"]
        if duration is not None:
            cmd += ["--duration", str(duration)]
        if samples is not None:
            cmd += ["--samples", str(samples)]
        meter = self.meters.get(target)
        cpu0 = meter[1]() if meter else 0.0
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        pin(proc.pid, CLIENT_CPUS)
        out, err = proc.communicate(timeout=600)
        cpu1 = meter[1]() if meter else 0.0
        if proc.returncode != 0:
            raise RuntimeError(f"aigw-bench failed ({proc.returncode}): {err}")
        r = json.loads(out)
        if meter and r["ok"]:
            r[f"{meter[0]}_cpu_us_per_request"] = round((cpu1 - cpu0) * 1e6 / r["ok"], 1)
        # The mock keeps its last 10,000 requests, bodies included: forget them between runs.
        self.mock.clear_requests()
        return r


def rotate(items: list, k: int) -> list:
    k %= len(items)
    return items[k:] + items[:k]


# --- phase 1: the workloads ------------------------------------------------------------------


def bench_workload(runner: Runner, name: str, wl: dict) -> dict:
    wl = dict(wl, name=name)
    s = SETTINGS
    out: dict = {"title": wl["title"], "request_bytes": len(wl["body"]), "stream": wl["stream"], "rounds": []}
    # Warm-up: connections open, VMs and caches warm.
    for t in TARGETS:
        runner.run(t, wl, "sequential", samples=50)
    cap0 = runner.run("l0", wl, "closed", duration=s["capacity_s"])["achieved_rate"]
    out["l0_capacity_probe"] = cap0
    log(f"{name}: plain Envoy capacity ~{cap0:.0f} req/s ({s['connections']} connections, closed loop)")
    for rnd in range(s["rounds"]):
        rr: dict = {"capacity": {}, "open": {}, "sequential": {}}
        order = rotate(TARGETS, rnd)
        for t in order:
            rr["capacity"][t] = runner.run(t, wl, "closed", duration=s["capacity_s"])
        for frac in s["fractions"]:
            rate = max(cap0 * frac, 1.0)
            rr["open"][str(frac)] = {}
            for t in order:
                rr["open"][str(frac)][t] = runner.run(t, wl, "open", rate=rate, duration=s["duration_s"])
        for t in order:
            rr["sequential"][t] = runner.run(t, wl, "sequential", samples=s["samples"])
        if name == "small":
            rr["bounded"] = {t: bounded_rate(runner, wl, t, rr["capacity"][t]["achieved_rate"])
                             for t in rotate(LISTENERS, rnd)}
            log(f"{name}: round {rnd + 1} rate with p99 <= {s['p99_bound_us']} us: "
                + ", ".join(f"{NAMES[t]} {rr['bounded'][t]['rate']:.0f}" for t in LISTENERS) + " req/s")
        out["rounds"].append(rr)
        summary = {f: {t: rr["open"][f][t]["latency_us"]["p50"] if rr["open"][f][t]["latency_us"] else None
                       for t in TARGETS} for f in rr["open"]}
        log(f"{name}: round {rnd + 1}/{s['rounds']} open-loop p50 µs {summary}")
    return out


def bounded_rate(runner: Runner, wl: dict, target: str, start: float) -> dict:
    """The highest open-loop rate at which `target`'s p99 stays within the bound with no error:
    down from `start` (its closed-loop capacity) in steps of 15 % until a rate passes, then one
    step halfway back up towards the last rate that failed. About 7 % resolution."""
    bound = SETTINGS["p99_bound_us"]
    tries = []

    def ok(rate: float) -> bool:
        r = runner.run(target, wl, "open", rate=rate, duration=SETTINGS["duration_s"])
        p99 = get(r, "latency_us", "p99")
        good = r["errors"] == 0 and p99 is not None and p99 <= bound
        tries.append({"rate": round(rate, 1), "p99_us": p99, "errors": r["errors"], "ok": good})
        return good

    rate, failed = start, None
    for _ in range(12):
        if ok(rate):
            break
        failed, rate = rate, rate * 0.85
    else:
        return {"rate": 0.0, "tries": tries}
    if failed is not None:
        mid = (rate * failed) ** 0.5
        if ok(mid):
            rate = mid
    return {"rate": round(rate, 1), "tries": tries}


def paced_stream(runner: Runner, wl: dict) -> dict:
    wl = dict(wl, name="sse_paced")
    return {t: runner.run(t, wl, "sequential", samples=20 if QUICK else 50) for t in TARGETS}


# --- phase 2: the soak -----------------------------------------------------------------------


class Sampler:
    """A thread taking `envoy.memory()` every `every` seconds (and at once) until `stop()`;
    `samples` carry `t_s`, seconds since the start."""

    def __init__(self, envoy: Envoy, every: float):
        self.envoy, self.every = envoy, every
        self.samples: list = []
        self.errors: list = []
        self._stop = threading.Event()
        self.t0 = time.monotonic()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            try:
                self.samples.append({"t_s": round(time.monotonic() - self.t0, 1), **self.envoy.memory()})
            except (OSError, ValueError, KeyError) as e:
                self.errors.append(f"{time.monotonic() - self.t0:.1f} s: {e}")
            if self._stop.wait(self.every):
                return

    def stop(self) -> list:
        self._stop.set()
        self._thread.join()
        return self.samples


def soak(runner: Runner, envoy: Envoy, wl: dict, rate: float) -> dict:
    """aigw (l2) at `rate` req/s open loop for SETTINGS["soak_s"], as consecutive aigw-bench runs
    of `soak_chunk_s` (each with its own latency figures: a drift shows), Envoy's memory and
    the VM gauges sampled every `sample_every_s`. The last sample is taken one gauge period
    after the load stops, so the gauges include the end of the soak."""
    s = SETTINGS
    wl = dict(wl, name="soak")
    log(f"soak: aigw, small chat at {rate:.0f} req/s for {s['soak_s']:.0f} s")
    sampler = Sampler(envoy, s["sample_every_s"])
    chunks = []
    try:
        while (left := s["soak_s"] - (time.monotonic() - sampler.t0)) >= 1.0:
            t = time.monotonic() - sampler.t0
            r = runner.run("l2", wl, "open", rate=rate, duration=round(min(s["soak_chunk_s"], left), 1))
            chunks.append({
                "t_s": round(t, 1), "duration_s": r["duration_s"], "requests": r["requests"], "ok": r["ok"],
                "errors": r["errors"], "error_kinds": r["error_kinds"], "unfinished": r["unfinished"],
                "achieved_rate": r["achieved_rate"], "p50_us": get(r, "latency_us", "p50"),
                "p99_us": get(r, "latency_us", "p99"), "max_us": get(r, "latency_us", "max"),
                "envoy_cpu_us_per_request": r.get("envoy_cpu_us_per_request"),
            })
            log(f"soak: {t:.0f} s: {r['achieved_rate']:.0f} req/s, {r['errors']} errors, p50 "
                f"{get(r, 'latency_us', 'p50')} µs, p99 {get(r, 'latency_us', 'p99')} µs")
    finally:
        samples = sampler.stop()
    load_s = time.monotonic() - sampler.t0
    time.sleep(VM_GAUGE_PERIOD_S + 1)
    after = {"t_s": round(time.monotonic() - sampler.t0, 1), **envoy.memory()}
    return {"rate": round(rate, 1), "duration_s": s["soak_s"], "load_s": round(load_s, 1), "chunks": chunks,
            "samples": samples + [after], "sample_errors": sampler.errors, "after": after}


def soak_figures(sk: dict) -> dict:
    """The soak's verdict: neither VM gauge grew between the reference sample (one minute in,
    or a tenth of the soak if shorter) and the end; with RSS, heap and latency drift."""
    samples = sk["samples"]
    ref_t = min(60.0, sk["duration_s"] / 10)
    ref = next((x for x in samples if x["t_s"] >= ref_t), samples[0])
    start, end = samples[0], sk["after"]
    keys = ("vm_router", "vm_provider", "rss_kib", "allocated", "heap_size")
    growth = {k: (end[k] - ref[k]) if end.get(k) is not None and ref.get(k) is not None else None for k in keys}
    vm = [growth["vm_router"], growth["vm_provider"]]
    chunks = sk["chunks"]
    ok = [c for c in chunks if c["p50_us"] is not None]
    return {
        "rate": sk["rate"], "duration_s": sk["duration_s"], "reference_t_s": ref["t_s"],
        "start": start, "reference": ref, "end": end, "growth_since_reference": growth,
        "growth_since_start": {k: (end[k] - start[k]) if end.get(k) is not None and start.get(k) is not None
                               else None for k in keys},
        "vm_flat": None if None in vm else all(g <= 0 for g in vm),
        "requests": sum(c["requests"] for c in chunks), "errors": sum(c["errors"] for c in chunks),
        "achieved_rate": med_spread([c["achieved_rate"] for c in chunks]),
        "p50_us": med_spread([c["p50_us"] for c in ok]), "p99_us": med_spread([c["p99_us"] for c in ok]),
        "first_p99_us": ok[0]["p99_us"] if ok else None, "last_p99_us": ok[-1]["p99_us"] if ok else None,
        "first_p50_us": ok[0]["p50_us"] if ok else None, "last_p50_us": ok[-1]["p50_us"] if ok else None,
    }


# --- phase 3: LiteLLM ------------------------------------------------------------------------

LITELLM_TARGETS = ["direct", "l0", "l2", "litellm"]


def litellm_module():
    """bench/litellm.py, loaded by path (its name would shadow the installed `litellm`)."""
    spec = importlib.util.spec_from_file_location("bench_litellm", Path(__file__).with_name("litellm.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def litellm_phase(runner: Runner, mock: Mock, workdir: Path, exe: Path, wls: dict) -> dict:
    """LiteLLM proxy on the mock, on Envoy's CPU; the small chat and SSE workloads through it,
    plain Envoy, aigw and the mock directly. LiteLLM is stopped whatever happens."""
    ll = litellm_module()
    proxy = ll.LiteLLM(exe, mock.url, MODEL, workdir, ENVOY_CPUS if SETTINGS["pin"] else None)
    try:
        log(f"LiteLLM {ll.LITELLM_VERSION} up at {proxy.url} in {proxy.startup_s:.1f} s, "
            f"RSS {proxy.rss_kib() / 1024:.0f} MiB")
        runner.add_target("litellm", proxy.url + PATH, "litellm", proxy.cpu_seconds)
        out = {"version": ll.LITELLM_VERSION, "startup_s": round(proxy.startup_s, 1), "workloads": {}}
        for name in SETTINGS["litellm_workloads"]:
            out["workloads"][name] = litellm_workload(runner, name, wls[name])
        out["rss_kib"] = proxy.rss_kib()
        return out
    finally:
        proxy.stop()


def litellm_workload(runner: Runner, name: str, wl: dict) -> dict:
    """Warm-up, LiteLLM's one-at-a-time rate, then per round (targets interleaved, rotated):
    one-at-a-time runs and open-loop runs at a fraction of that rate, for every target."""
    s = SETTINGS
    wl = dict(wl, name=f"litellm-{name}")
    for t in LITELLM_TARGETS:  # LiteLLM's first requests import code and open its upstream client
        runner.run(t, wl, "sequential", samples=20 if QUICK else 50)
    probe = runner.run("litellm", wl, "sequential", samples=50 if QUICK else 100)
    rate = max(1.0, round(probe["achieved_rate"] * s["litellm_rate_fraction"], 1))
    lo, hi = s["litellm_open_s"]
    duration = round(min(hi, max(lo, s["litellm_open_requests"] / rate)), 1)
    log(f"litellm {name}: LiteLLM one at a time {probe['achieved_rate']:.0f} req/s; open loop at {rate:.0f} req/s, "
        f"{duration:.0f} s per run")
    rounds = []
    for rnd in range(s["litellm_rounds"]):
        order = rotate(LITELLM_TARGETS, rnd)
        rr = {"sequential": {t: runner.run(t, wl, "sequential", samples=s["litellm_samples"]) for t in order},
              "open": {t: runner.run(t, wl, "open", rate=rate, duration=duration) for t in order}}
        rounds.append(rr)
        log(f"litellm {name}: round {rnd + 1}: p50 µs one at a time "
            f"{ {t: get(rr['sequential'][t], 'latency_us', 'p50') for t in LITELLM_TARGETS} }, "
            f"open loop { {t: get(rr['open'][t], 'latency_us', 'p50') for t in LITELLM_TARGETS} }")
    return {"title": wl["title"], "stream": wl["stream"], "rate_probe": probe, "rate": rate, "duration_s": duration,
            "rounds": rounds}


# --- figures ---------------------------------------------------------------------------------


def med_spread(values: list) -> dict | None:
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    return {"median": round(statistics.median(vals), 1), "min": round(min(vals), 1), "max": round(max(vals), 1),
            "n": len(vals)}


def rounded(ms: dict | None, digits: int = 3) -> dict | None:
    """A med_spread of ratios, to `digits` decimals."""
    return ms and {k: round(v, digits) if isinstance(v, float) else v for k, v in ms.items()}


def get(r: dict, *path):
    for p in path:
        if r is None:
            return None
        r = r.get(p)
    return r


def added(rounds: list, section: str, key: str | None, metric: str, pct: str,
          target: str = "l2", base: str = "l0") -> dict | None:
    """Median over rounds of (target − base) for one percentile of one metric."""
    diffs = []
    for rr in rounds:
        sec = rr[section] if key is None else rr[section][key]
        a, b = get(sec[target], metric, pct), get(sec[base], metric, pct)
        if a is not None and b is not None:
            diffs.append(a - b)
    return med_spread(diffs)


def deltas(row: dict, rounds: list, section: str, key: str | None, metric: str, pct: str, label: str) -> None:
    """Sets row["<d>_<label>_us"] for each of DELTAS: `added` (aigw − plain), `vm` (wasm idle −
    plain: the price of a VM in the path) and `work` (aigw − wasm idle: the filters' work)."""
    for d, (a, b) in DELTAS.items():
        row[f"{d}_{label}_us"] = added(rounds, section, key, metric, pct, a, b)


def ratio_of_added(rounds: list, section: str, metric: str, pct: str, num: tuple, den: tuple) -> dict | None:
    """Median over rounds of (num[0] − num[1]) / (den[0] − den[1]), the denominator floored at
    1 µs (a difference within the noise would otherwise make the ratio meaningless)."""
    vals = []
    for rr in rounds:
        v = {t: get(rr[section][t], metric, pct) for t in (*num, *den)}
        if None not in v.values():
            vals.append((v[num[0]] - v[num[1]]) / max(v[den[0]] - v[den[1]], 1.0))
    return rounded(med_spread(vals), 1)


def figures(name: str, w: dict) -> dict:
    rounds = w["rounds"]
    f: dict = {"capacity": {}, "cpu_us_per_request": {}, "open": {}, "sequential": {}}
    for t in TARGETS:
        f["capacity"][t] = med_spread([rr["capacity"][t]["achieved_rate"] for rr in rounds])
    for t in ("l1", "l2"):
        f[f"capacity_ratio_{t}_l0"] = rounded(med_spread(
            [rr["capacity"][t]["achieved_rate"] / rr["capacity"]["l0"]["achieved_rate"]
             for rr in rounds if rr["capacity"]["l0"]["achieved_rate"]]))
    for t in LISTENERS:
        f["cpu_us_per_request"][t] = med_spread(
            [rr["open"][k][t].get("envoy_cpu_us_per_request") for rr in rounds for k in rr["open"]])
    sse = w.get("stream", name.startswith("sse"))
    for frac in rounds[0]["open"]:
        row = {
            "rate": med_spread([rr["open"][frac]["l0"]["target_rate"] for rr in rounds]),
            "p50": {t: med_spread([get(rr["open"][frac][t], "latency_us", "p50") for rr in rounds]) for t in TARGETS},
            "p99": {t: med_spread([get(rr["open"][frac][t], "latency_us", "p99") for rr in rounds]) for t in TARGETS},
            "errors": {t: sum(rr["open"][frac][t]["errors"] for rr in rounds) for t in TARGETS},
            # A target that did not keep up: completed under 95 % of the rate, or errors.
            "overloaded": [t for t in TARGETS if any(
                rr["open"][frac][t]["achieved_rate"] < 0.95 * rr["open"][frac][t]["target_rate"]
                or rr["open"][frac][t]["errors"] for rr in rounds)],
        }
        deltas(row, rounds, "open", frac, "latency_us", "p50", "p50")
        deltas(row, rounds, "open", frac, "latency_us", "p99", "p99")
        row["added_service_p50_us"] = added(rounds, "open", frac, "service_us", "p50")
        if sse:
            deltas(row, rounds, "open", frac, "ttft_us", "p50", "ttft_p50")
            row["added_ttft_p99_us"] = added(rounds, "open", frac, "ttft_us", "p99")
            row["added_gap_p99_us"] = added(rounds, "open", frac, "gap_us", "p99")
        f["open"][frac] = row
    seq = {
        "p50": {t: med_spread([get(rr["sequential"][t], "latency_us", "p50") for rr in rounds]) for t in TARGETS},
        "p99": {t: med_spread([get(rr["sequential"][t], "latency_us", "p99") for rr in rounds]) for t in TARGETS},
    }
    deltas(seq, rounds, "sequential", None, "latency_us", "p50", "p50")
    deltas(seq, rounds, "sequential", None, "latency_us", "p99", "p99")
    if sse:
        deltas(seq, rounds, "sequential", None, "ttft_us", "p50", "ttft_p50")
        seq["added_ttft_p99_us"] = added(rounds, "sequential", None, "ttft_us", "p99")
        seq["added_gap_p50_us"] = added(rounds, "sequential", None, "gap_us", "p50")
        seq["added_gap_p99_us"] = added(rounds, "sequential", None, "gap_us", "p99")
        seq["events_per_response"] = {t: get(rounds[-1]["sequential"][t], "events", "per_response_mean")
                                      for t in TARGETS}
    f["sequential"] = seq
    f["cpu_us_per_request_closed"] = {t: med_spread([rr["capacity"][t].get("envoy_cpu_us_per_request")
                                                     for rr in rounds]) for t in LISTENERS}
    if "bounded" in rounds[0]:
        f["p99_bound_us"] = SETTINGS["p99_bound_us"]
        f["rate_within_bound"] = {t: med_spread([rr["bounded"][t]["rate"] for rr in rounds]) for t in LISTENERS}
        def bounded_ratio(t: str) -> dict | None:
            return rounded(med_spread([rr["bounded"][t]["rate"] / rr["bounded"]["l0"]["rate"]
                                       for rr in rounds if rr["bounded"]["l0"]["rate"]]))
        f["rate_within_bound_ratio"] = bounded_ratio("l2")
        f["rate_within_bound_ratio_l1"] = bounded_ratio("l1")
    return f


def litellm_figures(w: dict) -> dict:
    """Per kind of run (one at a time, open loop): latencies of every target; LiteLLM's added
    latency (litellm − direct), aigw's (aigw − plain, and aigw − direct), their ratios per
    round; the proxies' CPU per request; for streams the same for the time to first event."""
    rounds = w["rounds"]
    f: dict = {"title": w["title"], "stream": w["stream"], "rate": w["rate"], "duration_s": w["duration_s"],
               "litellm_sequential_rate": w["rate_probe"]["achieved_rate"]}
    metrics = [("latency_us", "p50", ""), ("latency_us", "p99", "")]
    if w["stream"]:
        metrics.append(("ttft_us", "p50", "ttft_"))
    for section in ("sequential", "open"):
        sec: dict = {
            "p50": {t: med_spread([get(rr[section][t], "latency_us", "p50") for rr in rounds]) for t in LITELLM_TARGETS},
            "p99": {t: med_spread([get(rr[section][t], "latency_us", "p99") for rr in rounds]) for t in LITELLM_TARGETS},
            "achieved_rate": {t: med_spread([rr[section][t]["achieved_rate"] for rr in rounds]) for t in LITELLM_TARGETS},
            "errors": {t: sum(rr[section][t]["errors"] for rr in rounds) for t in LITELLM_TARGETS},
            "cpu_us_per_request": {
                "l2": med_spread([rr[section]["l2"].get("envoy_cpu_us_per_request") for rr in rounds]),
                "litellm": med_spread([rr[section]["litellm"].get("litellm_cpu_us_per_request") for rr in rounds]),
            },
        }
        for metric, pct, prefix in metrics:
            label = f"{prefix}{pct}"
            sec[f"litellm_added_{label}_us"] = added(rounds, section, None, metric, pct, "litellm", "direct")
            sec[f"aigw_added_{label}_us"] = added(rounds, section, None, metric, pct, "l2", "l0")
            sec[f"aigw_total_{label}_us"] = added(rounds, section, None, metric, pct, "l2", "direct")
            sec[f"ratio_{label}"] = ratio_of_added(rounds, section, metric, pct, ("litellm", "direct"), ("l2", "l0"))
            sec[f"ratio_total_{label}"] = ratio_of_added(rounds, section, metric, pct,
                                                         ("litellm", "direct"), ("l2", "direct"))
        f[section] = sec
    return f


# --- report ----------------------------------------------------------------------------------


def sh(*cmd: str) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd=ROOT).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    models = [l.split(":", 1)[1].strip() for l in cpuinfo.splitlines() if l.startswith("model name")]
    mem = next((l.split()[1] for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal")), "0")
    return {
        "cpu": models[0] if models else platform.processor(),
        "cores": len(models),
        "memory_gib": round(int(mem) / 1024 / 1024, 1),
        "kernel": platform.release(),
        "load_avg_at_start": list(os.getloadavg()),
    }


def versions(litellm_exe: Path | None) -> dict:
    envoy = sh(str(ENVOY), "--version")
    commit = sh("git", "rev-parse", "--short=12", "HEAD")
    dirty = sh("git", "status", "--porcelain", "--untracked-files=no")
    v = {
        "envoy": envoy.split("version:", 1)[-1].strip(),
        "aigw_commit": commit + ("-dirty" if dirty else ""),
        "rustc": sh("rustc", "--version"),
        "python": platform.python_version(),
    }
    if litellm_exe is not None:
        py = litellm_exe.parent / "python"
        v["litellm"] = sh(str(py), "-c", "import importlib.metadata as m; print(m.version('litellm'))")
        v["litellm_python"] = sh(str(py), "-c", "import platform; print(platform.python_version())")
    return v


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


def num(x: float) -> str:
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:g}"


def fmt(ms: dict | None, unit: str = "") -> str:
    if not ms:
        return "–"
    if ms["n"] == 1 or ms["min"] == ms["max"]:
        return f"{num(ms['median'])}{unit}"
    return f"{num(ms['median'])}{unit} [{num(ms['min'])}…{num(ms['max'])}]"


def mib(b: float | None, div: int = 1024 * 1024) -> str:
    return "–" if b is None else f"{b / div:.2f}"


def kib_delta(b: float | None) -> str:
    return "–" if b is None else f"{b / 1024:+.0f} KiB"


def first_line(text: str, limit: int = 200) -> str:
    return (text.strip().splitlines() or [""])[0][:limit]


def split(row: dict, label: str) -> str:
    """'VM cost x µs, filter work y µs' for one latency figure."""
    return f"VM cost {fmt(row.get(f'vm_{label}_us'), ' µs')}, filter work {fmt(row.get(f'work_{label}_us'), ' µs')}"


# What one pass over a request body costs the router filter per KiB: copying it into the VM and
# reading it, with the prompt's token estimate a consumer's token budget needs (1.2–1.6 µs/KiB in
# wasm or natively, `cargo run --release -p aigw-core --example hotpath`), with some margin.
# A slope above it means more than one pass: worse than linear.
LINEAR_US_PER_KIB = 2.0


def targets(figs: dict, soak_f: dict | None = None, ll: dict | None = None) -> list:
    """PRODUCT.md's performance targets against what this run measured."""
    rows = []
    mid = lambda f: sorted(f["open"], key=float)[0]  # noqa: E731  (the lightest load)
    if "small" in figs:
        f = figs["small"]
        r = f.get("rate_within_bound_ratio")
        rows.append(("Small chat: throughput at the same p99 bound ≥ 0.9× plain Envoy",
                     f"{fmt(r, '×')} (open-loop rate with p99 ≤ {f['p99_bound_us']} µs: aigw {fmt(f['rate_within_bound']['l2'])}, "
                     f"wasm idle {fmt(f['rate_within_bound']['l1'])}, plain {fmt(f['rate_within_bound']['l0'])} req/s; "
                     f"wasm idle/plain {fmt(f['rate_within_bound_ratio_l1'], '×')}); closed-loop capacity aigw/plain "
                     f"{fmt(f['capacity_ratio_l2_l0'], '×')}, wasm idle/plain {fmt(f['capacity_ratio_l1_l0'], '×')}"
                     if r else "–", verdict(None if not r else r["median"] >= 0.9)))
        sq, m = f["sequential"], mid(f)
        o = f["open"][m]
        rows.append(("Small chat: added latency p50 ≤ 50 µs",
                     f"one at a time {fmt(sq['added_p50_us'], ' µs')} ({split(sq, 'p50')}); open loop at {float(m):.0%} "
                     f"of plain capacity {fmt(o['added_p50_us'], ' µs')}",
                     verdict(None if not sq["added_p50_us"] else sq["added_p50_us"]["median"] <= 50)))
        rows.append(("Small chat: added latency p99 ≤ 150 µs",
                     f"one at a time {fmt(sq['added_p99_us'], ' µs')} ({split(sq, 'p99')}); open loop at {float(m):.0%} "
                     f"{fmt(o['added_p99_us'], ' µs')}",
                     verdict(None if not sq["added_p99_us"] else sq["added_p99_us"]["median"] <= 150)))
    if "sse64" in figs:
        f = figs["sse64"]
        sq, m = f["sequential"], mid(f)
        t = sq.get("added_ttft_p50_us")
        tr = get(figs.get("translated_sse64"), "sequential", "added_ttft_p50_us")
        rows.append(("Streaming: added time to first token ≤ 100 µs",
                     f"one at a time p50 {fmt(t, ' µs')} ({split(sq, 'ttft_p50')}); open loop at {float(m):.0%} p50 "
                     f"{fmt(f['open'][m].get('added_ttft_p50_us'), ' µs')}"
                     + (f"; translated route (not judged) one at a time p50 {fmt(tr, ' µs')}" if tr else ""),
                     verdict(None if not t else t["median"] <= 100)))
    if "sse_paced" in figs:
        p = figs["sse_paced"]
        ev = {t: get(p[t], "events", "per_response_mean") for t in TARGETS}
        g50 = {t: get(p[t], "gap_us", "p50") for t in TARGETS}
        gmin = {t: get(p[t], "gap_us", "min") for t in TARGETS}
        # A filter that held chunks would deliver them in pairs: many gaps near zero, the median
        # gap far under the 2 ms the mock paces at. The smallest gap alone says little: one
        # scheduling hiccup of the client makes it tiny on any target.
        ok = None
        if g50["l2"] is not None and g50["l0"] is not None:
            ok = ev["l2"] == ev["l0"] and g50["l2"] >= g50["l0"] - 500
        rows.append(("Streaming: no chunk held back",
                     f"16 chunks 2 ms apart: events per response direct {ev['direct']}, plain {ev['l0']}, "
                     f"wasm idle {ev['l1']}, aigw {ev['l2']}; median gap between events: plain {g50['l0']} µs, "
                     f"wasm idle {g50['l1']} µs, aigw {g50['l2']} µs (smallest: plain {gmin['l0']}, aigw "
                     f"{gmin['l2']} µs)",
                     verdict(ok)))
    if {"small", "prompt16k", "prompt256k"} <= figs.keys():
        a = {k: get(figs[k]["sequential"], "added_p50_us", "median") for k in ("small", "prompt16k", "prompt256k")}
        sizes = {k: figs[k]["size_kib"] for k in a}
        if None not in a.values():
            s16 = (a["prompt16k"] - a["small"]) / (sizes["prompt16k"] - sizes["small"])
            s256 = (a["prompt256k"] - a["small"]) / (sizes["prompt256k"] - sizes["small"])
            # Linear or better: the per-KiB cost up to 256 KiB is at most 1.5x the one up to 16 KiB,
            # or at most LINEAR_US_PER_KIB, one pass over the body: the 16 KiB step (16 KiB at
            # ~1 µs/KiB) is within the one-at-a-time noise (±100 µs), so its slope alone says little.
            ok = s256 <= max(1.5 * s16, LINEAR_US_PER_KIB)
            rows.append(("Large prompt: added latency grows linearly with size",
                         f"added p50 one at a time: {a['small']:g} µs (0.3 KiB), {a['prompt16k']:g} µs (16 KiB), "
                         f"{a['prompt256k']:g} µs (256 KiB): {s16:.2f} µs/KiB to 16 KiB, {s256:.2f} µs/KiB to 256 KiB "
                         f"(linear: at most 1.5× the first slope, or {LINEAR_US_PER_KIB:g} µs/KiB, one pass over the body)",
                         verdict(ok)))
    rows.append(memory_target(soak_f))
    rows.append(litellm_target(ll))
    return rows


def memory_target(sf: dict | None) -> tuple:
    name = "Memory: per-worker VM memory flat over a 10-minute soak"
    if not sf:
        return (name, "not measured (no soak: BENCH_SOAK_S=0)", "n/a")
    r, e, g = sf["reference"], sf["end"], sf["growth_since_reference"]
    text = (f"from {r['t_s']:.0f} s into a {sf['duration_s']:.0f} s soak at {sf['rate']:.0f} req/s to its end: router VM "
            f"{mib(r['vm_router'])} → {mib(e['vm_router'])} MiB ({kib_delta(g['vm_router'])}), provider VM "
            f"{mib(r['vm_provider'])} → {mib(e['vm_provider'])} MiB ({kib_delta(g['vm_provider'])}); Envoy RSS "
            f"{kib_delta(None if g['rss_kib'] is None else g['rss_kib'] * 1024)}, heap allocated {kib_delta(g['allocated'])}")
    if sf["duration_s"] < 600:
        text += f" (a {sf['duration_s']:.0f} s soak, shorter than the target's 10 minutes)"
    return (name, text, verdict(sf["vm_flat"]))


def litellm_target(ll: dict | None) -> tuple:
    name = "Against LiteLLM proxy: ≥ 20× less added latency"
    if not ll or ll.get("error") or "small" not in ll.get("figures", {}):
        why = f"failed: {first_line(ll['error'])}" if ll and ll.get("error") else "BENCH_LITELLM=0"
        return (name, f"not measured ({why})", "n/a")
    small = ll["figures"]["small"]
    sq, op = small["sequential"], small["open"]
    text = (f"small chat one at a time: LiteLLM adds {fmt(sq['litellm_added_p50_us'], ' µs')} p50, "
            f"{fmt(sq['litellm_added_p99_us'], ' µs')} p99 (vs the mock directly), aigw "
            f"{fmt(sq['aigw_added_p50_us'], ' µs')} p50, {fmt(sq['aigw_added_p99_us'], ' µs')} p99 (vs plain Envoy): "
            f"{fmt(sq['ratio_p50'], '×')} p50, {fmt(sq['ratio_p99'], '×')} p99; open loop at {small['rate']:.0f} req/s: "
            f"{fmt(op['ratio_p50'], '×')} p50, {fmt(op['ratio_p99'], '×')} p99")
    sse = ll["figures"].get("sse64")
    if sse:
        text += (f"; SSE one at a time: {fmt(sse['sequential']['ratio_p50'], '×')} p50, time to first event "
                 f"{fmt(sse['sequential'].get('ratio_ttft_p50'), '×')}")
    r = sq["ratio_p50"]
    return (name, text, verdict(None if not r else r["median"] >= 20))


def method(doc: dict) -> list:
    s = doc["settings"]
    out = [
        "## Method", "",
        "One mock provider (`tools/mock-provider`) and one Envoy (`--concurrency 1`: one worker) bootstrapped "
        "from `aigw render` of a gateway file with two providers on the same mock: `mock` (OpenAI-compatible) "
        f"serving model `{MODEL}`, and `mock-anthropic` (kind `anthropic`, the mock's `/v1/messages`) serving "
        f"`{TRANSLATED_MODEL}` as `{MODEL}`. Three listeners, identical but for their HTTP filters and route: "
        "**plain** (`l0`: Envoy's router only, one route to a copy of the OpenAI-compatible provider's cluster "
        "without the upstream filter; the request reaches the mock unchanged); **wasm idle** (`l1`: `l0` with a "
        "no-op proxy-wasm module, `bench/noop-filter`, built with the same SDK and profile, where aigw has its "
        "two filters: first in the listener's chain and as the upstream filter of its own copy of the cluster, "
        "with the same VM settings); **aigw** (`l2`: the rendered chain, router wasm filter + header_to_metadata "
        "+ router, and the provider wasm filter in each provider's cluster). All keep the rendered access log "
        "(stdout, discarded). **direct** is the mock without Envoy. "
        + ("aigw runs as deployed with virtual keys: one consumer whose key every request presents "
           "(`Authorization: Bearer`, sent to every target; the others ignore it), with request and token "
           "budgets far above the load, so each request is authenticated (SHA-256 of the key), reserves its "
           "estimated tokens and settles what the provider reported (shared data, compare-and-swap), and "
           "none is refused."
           if s["consumer"] else "aigw runs without consumers (`BENCH_CONSUMER=0`): no key check, no budgets."),
        "",
        "**Added** = aigw − plain in the same round, split into **VM cost** = wasm idle − plain (a VM in the "
        "path: context creation, Envoy entering the VM for every callback, context deletion) and **filter work** "
        "= aigw − wasm idle (aigw's own work: parsing, routing, key choice, metrics, translation, plus the "
        "header_to_metadata filter). Each is shown as median [min…max] over rounds of the per-round difference.",
        "",
        f"The **translated** workloads send an OpenAI request for `{TRANSLATED_MODEL}`: aigw translates it to "
        "Anthropic Messages, the mock answers on `/v1/messages`, aigw translates the answer (or stream) back. "
        "Plain, wasm idle and direct send the same body to the mock's OpenAI endpoint (which answers any "
        "model), so *added* there includes both translations and the difference between the mock's two "
        "endpoints.",
        "",
        f"Load: `aigw-bench` (HTTP/1.1, {s['connections']} connections). Per workload: plain Envoy's "
        f"capacity is probed (closed loop, {s['capacity_s']} s); then {s['rounds']} round(s), each with the "
        f"closed-loop capacity of every target, open-loop runs of {s['duration_s']} s at "
        f"{', '.join(f'{x:.0%}' for x in s['fractions'])} of the probed capacity (requests on a fixed "
        f"schedule, latency from each request's intended start, so queueing counts), and {s['samples']} "
        "requests one at a time; targets interleaved, their order rotated each round. "
        "A row marked *overloaded* names a target that completed under 95 % of the scheduled rate or "
        "had errors: its latencies are mostly queueing. "
        f"Small chat also gets a search, per round, for the highest open-loop rate each of plain, wasm idle "
        f"and aigw sustains with p99 ≤ {s['p99_bound_us']} µs and no error (down from its closed-loop "
        "capacity in 15 % steps, then one step halfway back; ≈7 % resolution). "
        "Envoy CPU per request = Envoy's utime+stime (/proc) over the run ÷ requests (10 ms clock ticks). "
        "Verdicts on added latency use the one-at-a-time pass; the lightest open-loop load is shown beside it. "
        "Open-loop latencies include the client's pacer hand-off (tens of µs, the same for every target).",
        "",
    ]
    if s["soak_s"] > 0:
        out += [
            f"**Memory and soak.** Envoy's RSS (/proc), its heap (admin `/memory`: `allocated`, `heap_size`) "
            "and the filters' gauges `aigw_wasm_memory_bytes{filter=router|provider}` (the linear memory of "
            "each filter's VM on the worker; a VM's memory never shrinks; reported every "
            f"{VM_GAUGE_PERIOD_S:.0f} s, so a sample can be up to that old) are read at idle (1 s after Envoy "
            "started, before any request), at steady state (after every workload, before the soak) and after "
            f"the soak. The soak: aigw, small chat, open loop at {s['soak_fraction']:.0%} of the highest rate "
            "aigw sustained within the p99 bound in the small chat workload (headroom: the soak measures "
            f"memory, not the edge of capacity), {s['soak_s']:.0f} s as consecutive "
            f"{s['soak_chunk_s']:.0f} s runs (latency per run: a drift shows), memory sampled every "
            f"{s['sample_every_s']:.0f} s; the last sample is taken {VM_GAUGE_PERIOD_S + 1:.0f} s after the "
            "load stops, so the gauges have reported once more. Flat = neither VM gauge grew between the "
            "sample one minute into the soak (a tenth of it, if shorter) and the end.",
            "",
        ]
    if s["litellm"]:
        lo, hi = s["litellm_open_s"]
        out += [
            "**LiteLLM.** LiteLLM proxy (`litellm[proxy]` from PyPI, in its own venv; one uvicorn worker, no "
            "database, no master key, client `x-*` headers forwarded so `x-mock-chunks` reaches the mock), "
            f"serving `{MODEL}` from the same mock as an OpenAI provider, on Envoy's CPU "
            "(Envoy is idle meanwhile but for the plain and aigw runs). Small chat and SSE (64 chunks): "
            f"warm-up, LiteLLM's one-at-a-time rate, then {s['litellm_rounds']} round(s), targets "
            f"interleaved: {s['litellm_samples']} requests one at a time to each of direct, plain, aigw and "
            f"LiteLLM, then an open-loop run of each at {s['litellm_rate_fraction']:.2g} of LiteLLM's "
            f"one-at-a-time rate ({lo:.0f}–{hi:.0f} s, aiming at {s['litellm_open_requests']} requests). "
            "LiteLLM's added latency = LiteLLM − direct; aigw's = aigw − plain (also shown: aigw − direct, "
            "which counts Envoy too); the ratio is taken per round (aigw's added latency floored at 1 µs), "
            "then the median over rounds. LiteLLM CPU per request = utime+stime of its process tree over the "
            "run ÷ responses; Envoy's likewise (10 ms clock ticks, and at these low rates background work, "
            "timers and stats flushes, weighs on both).",
            "",
        ]
    return out


def workload_section(name: str, f: dict) -> list:
    out = [f"### {f['title']} ({f['request_bytes']} B request)", ""]
    cap, cpu, cpuc = f["capacity"], f["cpu_us_per_request"], f["cpu_us_per_request_closed"]
    line = (f"Closed-loop capacity (req/s): direct {fmt(cap['direct'])}, plain {fmt(cap['l0'])}, wasm idle "
            f"{fmt(cap['l1'])}, aigw {fmt(cap['l2'])}; wasm idle/plain {fmt(f['capacity_ratio_l1_l0'], '×')}, "
            f"aigw/plain {fmt(f['capacity_ratio_l2_l0'], '×')}. Envoy CPU per request (open loop): plain "
            f"{fmt(cpu['l0'], ' µs')}, wasm idle {fmt(cpu['l1'], ' µs')}, aigw {fmt(cpu['l2'], ' µs')}; at capacity: "
            f"plain {fmt(cpuc['l0'], ' µs')}, wasm idle {fmt(cpuc['l1'], ' µs')}, aigw {fmt(cpuc['l2'], ' µs')}.")
    if "rate_within_bound" in f:
        b = f["rate_within_bound"]
        line += (f" Open-loop rate with p99 ≤ {f['p99_bound_us']} µs: plain {fmt(b['l0'])}, wasm idle {fmt(b['l1'])}, "
                 f"aigw {fmt(b['l2'])} req/s; aigw/plain {fmt(f['rate_within_bound_ratio'], '×')}, wasm idle/plain "
                 f"{fmt(f['rate_within_bound_ratio_l1'], '×')}.")
    if name.startswith("translated"):
        line += " (aigw: translated to Anthropic and back; the others: the mock's OpenAI endpoint.)"
    out += [line, ""]
    sse = f.get("stream", name.startswith("sse"))
    hdr = ("| Load | Rate (req/s) | p50 direct / plain / wasm idle / aigw (µs) | p99 direct / plain / wasm idle / aigw (µs) "
           "| Added p50 (µs) | Added p99 (µs) | VM cost p50 / p99 (µs) | Filter work p50 / p99 (µs) |")
    sep = "|---|---|---|---|---|---|---|---|"
    if sse:
        hdr += " Added TTFT p50 (µs) | TTFT VM cost / filter work (µs) | Added gap p99 (µs) |"
        sep += "---|---|---|"
    out += [hdr, sep]

    def cells(row: dict) -> str:
        c = (f"{' / '.join(fmt(row['p50'][t]) for t in TARGETS)} | {' / '.join(fmt(row['p99'][t]) for t in TARGETS)} | "
             f"{fmt(row['added_p50_us'])} | {fmt(row['added_p99_us'])} | "
             f"{fmt(row['vm_p50_us'])} / {fmt(row['vm_p99_us'])} | {fmt(row['work_p50_us'])} / {fmt(row['work_p99_us'])} |")
        if sse:
            c += (f" {fmt(row.get('added_ttft_p50_us'))} | {fmt(row.get('vm_ttft_p50_us'))} / "
                  f"{fmt(row.get('work_ttft_p50_us'))} | {fmt(row.get('added_gap_p99_us'))} |")
        return c

    for frac, row in f["open"].items():
        over = ", ".join(NAMES[t] for t in row["overloaded"])
        out.append(f"| {float(frac):.0%}{' (overloaded: ' + over + ')' if over else ''} | {fmt(row['rate'])} | {cells(row)}")
    sq = f["sequential"]
    out += [f"| one at a time | – | {cells(sq)}", ""]
    if sse and sq.get("events_per_response"):
        e = sq["events_per_response"]
        out += [f"Events per response: direct {e['direct']}, plain {e['l0']}, wasm idle {e['l1']}, aigw {e['l2']}.", ""]
    return out


def litellm_section(doc: dict) -> list:
    ll = doc.get("litellm")
    if not ll:
        return []
    out = ["## Against LiteLLM proxy", ""]
    if ll.get("error"):
        return out + [f"The LiteLLM phase failed: `{first_line(ll['error'])}` (the whole error is in the JSON).", ""]
    out += [f"LiteLLM {ll['version']}: started in {ll['startup_s']:.0f} s; RSS {ll['rss_kib'] / 1024:.0f} MiB after "
            f"its runs (Envoy: {doc['memory']['steady']['rss_kib'] / 1024:.0f} MiB at steady state).", ""]
    for name, f in ll["figures"].items():
        sse = f["stream"]
        out += [f"### {f['title']} through LiteLLM", "",
                "| Run | p50 direct / plain / aigw / LiteLLM (µs) | p99 direct / plain / aigw / LiteLLM (µs) "
                "| LiteLLM added p50 / p99 (µs) | aigw added p50 / p99 (µs) | LiteLLM ÷ aigw p50 / p99 "
                "| LiteLLM ÷ (aigw − direct) p50 / p99 | CPU per request aigw / LiteLLM (µs) |",
                "|---|---|---|---|---|---|---|---|"]
        for section, label in (("sequential", f"one at a time ({doc['settings']['litellm_samples']} requests)"),
                               ("open", f"open loop, {f['rate']:.0f} req/s for {f['duration_s']:.0f} s")):
            sec = f[section]
            bad = [f"{NAMES[t]} {sec['errors'][t]} errors" for t in LITELLM_TARGETS if sec["errors"][t]]
            if section == "open":
                slow = [t for t in LITELLM_TARGETS if sec["achieved_rate"][t]
                        and sec["achieved_rate"][t]["min"] < 0.95 * f["rate"]]
                bad += [f"{NAMES[t]} behind (achieved {fmt(sec['achieved_rate'][t])} req/s)" for t in slow]
            out.append(
                f"| {label}{' (' + '; '.join(bad) + ')' if bad else ''} | "
                f"{' / '.join(fmt(sec['p50'][t]) for t in LITELLM_TARGETS)} | "
                f"{' / '.join(fmt(sec['p99'][t]) for t in LITELLM_TARGETS)} | "
                f"{fmt(sec['litellm_added_p50_us'])} / {fmt(sec['litellm_added_p99_us'])} | "
                f"{fmt(sec['aigw_added_p50_us'])} / {fmt(sec['aigw_added_p99_us'])} | "
                f"{fmt(sec['ratio_p50'], '×')} / {fmt(sec['ratio_p99'], '×')} | "
                f"{fmt(sec['ratio_total_p50'], '×')} / {fmt(sec['ratio_total_p99'], '×')} | "
                f"{fmt(sec['cpu_us_per_request']['l2'])} / {fmt(sec['cpu_us_per_request']['litellm'])} |")
        out.append("")
        if sse:
            out += ["Time to first event, p50: " + "; ".join(
                f"{'one at a time' if section == 'sequential' else 'open loop'}: LiteLLM adds "
                f"{fmt(f[section]['litellm_added_ttft_p50_us'], ' µs')}, aigw {fmt(f[section]['aigw_added_ttft_p50_us'], ' µs')} "
                f"({fmt(f[section]['ratio_ttft_p50'], '×')})" for section in ("sequential", "open")) + ".", ""]
    return out


def memory_section(doc: dict) -> list:
    mem, sf, sk = doc["memory"], doc.get("soak"), doc["raw"].get("soak")
    out = ["## Memory", "",
           "Envoy (one process: three listeners, one worker; the VMs of aigw's two filters and of the no-op "
           "module, on the main thread and the worker). Sizes in MiB; the VM gauges as last reported "
           f"(every {VM_GAUGE_PERIOD_S:.0f} s).", "",
           "| When | RSS | Heap allocated | Heap size | Router VM | Provider VM |", "|---|---|---|---|---|---|"]
    rows = [("idle (after start, no request yet)", mem.get("idle")),
            ("steady state (after every workload)", mem.get("steady"))]
    if sf:
        rows += [(f"soak, {sf['reference']['t_s']:.0f} s in (reference)", sf["reference"]),
                 ("after the soak", sf["end"])]
    for label, m in rows:
        if m:
            out.append(f"| {label} | {mib(m['rss_kib'], 1024)} | {mib(m['allocated'])} | {mib(m['heap_size'])} | "
                       f"{mib(m['vm_router'])} | {mib(m['vm_provider'])} |")
    out.append("")
    if not sf:
        return out + ["No soak (BENCH_SOAK_S=0).", ""]
    s = doc["settings"]
    out += [
        f"**Soak**: aigw, small chat, open loop at {sf['rate']:.0f} req/s ({s['soak_fraction']:.0%} of "
        f"{sk['rate_basis']}), {sf['duration_s']:.0f} s in {len(sk['chunks'])} runs; {sf['requests']} requests, "
        f"{sf['errors']} errors; achieved rate per run {fmt(sf['achieved_rate'])} req/s; p50 per run "
        f"{fmt(sf['p50_us'], ' µs')}, p99 {fmt(sf['p99_us'], ' µs')} (first run {sf['first_p50_us']} / "
        f"{sf['first_p99_us']} µs, last {sf['last_p50_us']} / {sf['last_p99_us']} µs). "
        f"From the reference sample to the end: router VM {kib_delta(sf['growth_since_reference']['vm_router'])}, "
        f"provider VM {kib_delta(sf['growth_since_reference']['vm_provider'])}, RSS "
        f"{kib_delta(None if sf['growth_since_reference']['rss_kib'] is None else sf['growth_since_reference']['rss_kib'] * 1024)}, "
        f"heap allocated {kib_delta(sf['growth_since_reference']['allocated'])}. "
        f"VM gauge changes during the soak: {gauge_changes(sk['samples'])}.", "",
        "| Run start (s) | Achieved (req/s) | Errors | p50 (µs) | p99 (µs) | max (µs) | Envoy CPU per request (µs) |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in sk["chunks"]:
        out.append(f"| {c['t_s']:.0f} | {c['achieved_rate']:.0f} | {c['errors']} | {c['p50_us']} | {c['p99_us']} | "
                   f"{c['max_us']} | {c['envoy_cpu_us_per_request']} |")
    return out + [""]


def gauge_changes(samples: list) -> str:
    """Where either VM gauge changed between consecutive samples, or 'none'."""
    changes = []
    for a, b in zip(samples, samples[1:]):
        for k, label in (("vm_router", "router"), ("vm_provider", "provider")):
            if a.get(k) != b.get(k):
                changes.append(f"{label} {mib(a.get(k))} → {mib(b.get(k))} MiB at {b['t_s']:.0f} s")
    return "; ".join(changes) if changes else "none"


def markdown(doc: dict) -> str:
    m, v, s = doc["machine"], doc["versions"], doc["settings"]
    figs = doc["figures"]
    out = [f"# aigw benchmark — {doc['started']}", ""]
    if s["quick"]:
        out += ["**Quick smoke run (`BENCH_QUICK=1`): one round, short runs, a short soak. Figures are "
                "indicative only.**", ""]
    out += [
        "## Machine and versions", "",
        f"- CPU: {m['cpu']}, {m['cores']} cores; memory {m['memory_gib']} GiB; kernel {m['kernel']}; "
        f"load average at start {', '.join(f'{x:.2f}' for x in m['load_avg_at_start'])}, at the end "
        f"{', '.join(f'{x:.2f}' for x in doc['load_avg_at_end'])} (the machine is shared: other work adds noise)",
        f"- Envoy {v['envoy']}, aigw {v['aigw_commit']}, {v['rustc']}, Python {v['python']}",
    ]
    if v.get("litellm"):
        out.append(f"- LiteLLM proxy {v['litellm']} (`litellm[proxy]` from PyPI), Python {v['litellm_python']}")
    out += [
        f"- Pinning: {'Envoy and LiteLLM on CPU 1, client and mock on CPU 0' if s['pin'] else 'none'}",
        "",
        *method(doc),
        "## PRODUCT.md targets", "",
        "| Target | Measured | Verdict |", "|---|---|---|",
    ]
    for t, meas, ver in doc["targets"]:
        out.append(f"| {t} | {meas} | {ver} |")
    out += ["", "## Figures", ""]
    for name, f in figs.items():
        if name != "sse_paced":
            out += workload_section(name, f)
    out += litellm_section(doc)
    out += memory_section(doc)
    out += hostcall_section(doc)
    out += ["## Not measured yet", ""]
    if not doc.get("soak"):
        out.append("- This run: no soak, so no verdict on VM memory over time (BENCH_SOAK_S=0).")
    if not doc.get("litellm") or doc["litellm"].get("error"):
        out.append("- This run: no comparison with LiteLLM proxy (BENCH_LITELLM=0, or the phase failed).")
    out += [
        "- More than one Envoy worker, HTTP/2 or TLS on the client side: every run here is one worker, "
        "HTTP/1.1 in cleartext.",
        "- LiteLLM on the large-prompt and translated workloads (only small chat and SSE go through it).",
        "- A soak of anything but small chat through aigw; `l1`'s VM memory (the no-op module reports no gauge).",
        "",
        f"Raw data: `{doc['json_name']}`. Total run time {doc['elapsed_s']:.0f} s.", "",
    ]
    return "\n".join(out)


# --- main ------------------------------------------------------------------------------------


def soak_rate(runner: Runner, figs: dict, wl: dict) -> tuple:
    """The soak's rate: a fraction of the highest rate aigw sustained with its p99 within the
    bound in the small workload (a rate with headroom: a soak measures memory, not the edge of
    capacity, where a short disturbance builds a queue that takes minutes to drain), or of its
    closed-loop capacity (measured now if the small workload did not run); and its basis."""
    bounded = get(figs.get("small"), "rate_within_bound", "l2", "median")
    if bounded:
        return max(1.0, bounded * SETTINGS["soak_fraction"]), (
            f"the highest rate aigw sustained with p99 ≤ {SETTINGS['p99_bound_us']} µs in the small chat "
            f"workload, {bounded:.0f} req/s")
    cap = get(figs.get("small"), "capacity", "l2", "median")
    if cap:
        basis = f"aigw's closed-loop capacity in the small chat workload, {cap:.0f} req/s"
    else:
        cap = runner.run("l2", dict(wl, name="small"), "closed", duration=SETTINGS["capacity_s"])["achieved_rate"]
        basis = f"aigw's closed-loop small chat capacity measured before the soak, {cap:.0f} req/s"
    return max(1.0, cap * SETTINGS["soak_fraction"]), basis


def run_litellm(runner: Runner, mock: Mock, workdir: Path, exe: Path, wls: dict) -> dict:
    """The LiteLLM phase, its raw data and figures; a failure is recorded, not raised."""
    try:
        raw = litellm_phase(runner, mock, workdir, exe, wls)
    except Exception as e:  # noqa: BLE001  (the rest of the report is still worth writing)
        log(f"LiteLLM phase failed: {e}")
        return {"error": f"{type(e).__name__}: {e}"}
    figs = {name: litellm_figures(w) for name, w in raw["workloads"].items()}
    return {k: v for k, v in raw.items() if k != "workloads"} | {"raw": raw["workloads"], "figures": figs}


def main() -> int:
    for p in (BIN_DIR / "aigw", BIN_DIR / "mock-provider", BENCH_BIN, ENVOY,
              WASM_DIR / "aigw_router.wasm", WASM_DIR / "aigw_provider.wasm", WASM_DIR / "aigw_noop.wasm"):
        if not p.exists():
            print(f"bench: {p} is missing (make build, make venv)", file=sys.stderr)
            return 2
    started = dt.datetime.now(dt.timezone.utc)
    t_start = time.monotonic()
    machine_info = machine()
    ll_exe, ll = None, None
    if SETTINGS["litellm"]:
        try:  # installed first, so a failure shows before the long part
            ll_exe = litellm_module().ensure_venv(ROOT)
        except Exception as e:  # noqa: BLE001
            log(f"LiteLLM install failed: {e}")
            ll = {"error": f"{type(e).__name__}: {e}"}
    workdir = Path(tempfile.mkdtemp(prefix="aigw-bench-"))
    pin(os.getpid(), CLIENT_CPUS)
    mock = Mock()
    envoy = None
    memory: dict = {}
    raw, figs, soak_f = {}, {}, None
    try:
        envoy = Envoy(build_bootstrap(render_gateway(mock, workdir)), workdir)
        runner = Runner(mock, envoy, workdir)
        time.sleep(1.0)
        memory["idle"] = envoy.memory()
        log(f"Envoy up (plain :{envoy.ports['l0']}, wasm idle :{envoy.ports['l1']}, aigw :{envoy.ports['l2']}), "
            f"mock :{mock.port}, idle memory {memory['idle']}; settings {SETTINGS}")
        wls = workloads()
        for name in SETTINGS["workloads"]:
            raw[name] = bench_workload(runner, name, wls[name])
            figs[name] = figures(name, raw[name])
            figs[name]["title"] = wls[name]["title"]
            figs[name]["stream"] = wls[name]["stream"]
            figs[name]["request_bytes"] = len(wls[name]["body"])
            figs[name]["size_kib"] = round(len(wls[name]["body"]) / 1024, 2)
        if "sse64" in SETTINGS["workloads"]:
            raw["sse_paced"] = paced_stream(runner, wls["sse_paced"])
            figs["sse_paced"] = raw["sse_paced"]
        memory["steady"] = envoy.memory()
        if SETTINGS["soak_s"] > 0:
            rate, basis = soak_rate(runner, figs, wls["small"])
            raw["soak"] = soak(runner, envoy, wls["small"], rate) | {"rate_basis": basis}
            soak_f = soak_figures(raw["soak"])
            memory["after_soak"] = raw["soak"]["after"]
        if SETTINGS["hostcalls"]:
            raw["hostcalls"] = hostcall_prices(runner, wls["small"])
        if ll_exe is not None:
            ll = run_litellm(runner, mock, workdir, ll_exe, wls)
    except Exception:
        if envoy is not None:
            print(envoy.log_path.read_text()[-5000:], file=sys.stderr)
        raise
    finally:
        if envoy is not None:
            envoy.stop()
        mock.stop()
    if ll and "raw" in ll:
        raw["litellm"] = ll.pop("raw")
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    doc = {
        "started": started.isoformat(timespec="seconds"),
        "machine": machine_info,
        "versions": versions(ll_exe),
        "settings": SETTINGS,
        "memory": memory,
        "envoy_rss_kib": {"idle": memory["idle"]["rss_kib"], "after": memory["steady"]["rss_kib"]},
        "figures": figs,
        "soak": soak_f,
        "litellm": ll,
        "hostcalls": raw.get("hostcalls"),
        "raw": raw,
        "json_name": f"{stamp}.json",
        "elapsed_s": time.monotonic() - t_start,
        "load_avg_at_end": list(os.getloadavg()),
    }
    doc["targets"] = targets(figs, soak_f, ll)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stamp}.json").write_text(json.dumps(doc, indent=1) + "\n")
    md = markdown(doc)
    (RESULTS / f"{stamp}.md").write_text(md)
    shutil.copyfile(RESULTS / f"{stamp}.md", RESULTS / "latest.md")
    shutil.rmtree(workdir, ignore_errors=True)
    print(md)
    log(f"wrote {RESULTS / (stamp + '.md')} and latest.md")
    return 1 if ll and ll.get("error") else 0


if __name__ == "__main__":
    sys.exit(main())
