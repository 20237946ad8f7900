"""Integration harness: real Envoy processes with the built aigw filters, and
mock providers, all on free ports, cleaned up after use.

Every process binds port 0 and reports the port it got (the mock prints it,
Envoy writes its admin address to a file and lists its listener's port), so
tests can run in parallel without colliding.
"""
from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN_DIR = Path(os.environ.get("AIGW_BIN_DIR", ROOT / "target" / "tools"))
WASM_DIR = Path(os.environ.get("AIGW_WASM_DIR", ROOT / "target" / "wasm32-wasip1" / "release"))
ENVOY = Path(os.environ.get("ENVOY_BIN", ROOT / ".venv" / "bin" / "envoy"))
AIGW = BIN_DIR / "aigw"
MOCK = BIN_DIR / "mock-provider"

STARTUP_TIMEOUT = 60.0


class Mock:
    """A mock provider process (tools/mock-provider) on a free port."""

    def __init__(self, name: str):
        self.name = name
        self.proc = subprocess.Popen(
            [str(MOCK), "--listen", "127.0.0.1:0", "--name", name],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if "listening on" not in line:
            self.stop()
            raise RuntimeError(f"mock {name} did not start: {line!r}")
        self.port = int(line.rsplit(":", 1)[1])
        self.url = f"http://127.0.0.1:{self.port}"

    def base_url(self, prefix: str = "/v1") -> str:
        return self.url + prefix

    def requests(self) -> list[dict]:
        with urllib.request.urlopen(self.url + "/__mock/requests", timeout=10) as r:
            return json.load(r)

    def clear(self) -> None:
        """Forgets the requests received and the rules programmed."""
        self.clear_requests()
        req = urllib.request.Request(self.url + "/__mock/rules", method="DELETE")
        urllib.request.urlopen(req, timeout=10).read()

    def clear_requests(self) -> None:
        """Forgets the requests received; the rules stay."""
        req = urllib.request.Request(self.url + "/__mock/requests", method="DELETE")
        urllib.request.urlopen(req, timeout=10).read()

    def add_rules(self, rules: list[dict]) -> None:
        req = urllib.request.Request(
            self.url + "/__mock/rules",
            data=json.dumps(rules).encode(),
            headers={"content-type": "application/json"},
            method="POST",
        )
        urllib.request.urlopen(req, timeout=10).read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()


def wait_until_ok(proc: subprocess.Popen, url, timeout: float, every: float = 0.1) -> None:
    """Polls until `url()` (a URL, or None while it is not known yet) answers 200. Raises
    RuntimeError when the process exits first or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"not ready after {timeout:.0f} s")
        u = url()
        if u:
            try:
                with urllib.request.urlopen(u, timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
        time.sleep(every)


def wait_for_envoy_admin(proc: subprocess.Popen, admin_path: Path, timeout: float) -> str:
    """The admin URL of an Envoy started with `--admin-address-path admin_path`, once its
    `/ready` answers 200 (see `wait_until_ok`)."""
    def ready() -> str | None:
        address = admin_path.read_text().strip() if admin_path.exists() else ""
        return f"http://{address}/ready" if address else None

    wait_until_ok(proc, ready, timeout)
    return "http://" + admin_path.read_text().strip()


def closed_port() -> int:
    """A local port nothing listens on (bound then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def aigw(*args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    full_env = dict(os.environ)
    full_env.update(env or {})
    result = subprocess.run([str(AIGW), *args], capture_output=True, text=True, env=full_env, timeout=120)
    if check and result.returncode != 0:
        raise RuntimeError(f"aigw {' '.join(args)} failed ({result.returncode}):\n{result.stderr}{result.stdout}")
    return result


def validate_envoy_config(path: Path, env: dict | None = None) -> None:
    """`envoy --mode validate` on a rendered config: every config the tests
    render is checked this way before it is run."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    r = subprocess.run(
        [str(ENVOY), "--mode", "validate", "--disable-hot-restart", "--log-level", "error", "-c", str(path)],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
    )
    if r.returncode != 0:
        raise RuntimeError(f"envoy --mode validate rejected {path}:\n{r.stdout}{r.stderr}")


class Gateway:
    """Envoy running the bootstrap `aigw render` makes of a gateway file.

    `listen` and `admin` of the file are forced to 127.0.0.1:0 through the
    environment (`AIGW_LISTEN`, `AIGW_ADMIN`) when the file uses them, or
    by the `listen:`/`admin:` lines written by `gateway_yaml`.
    """

    def __init__(self, gateway_yaml: str, env: dict | None = None, concurrency: int = 2):
        self.dir = Path(tempfile.mkdtemp(prefix="aigw-test-"))
        self.config = self.dir / "gateway.yaml"
        self.config.write_text(gateway_yaml)
        self.env = {"AIGW_LISTEN": "127.0.0.1:0", "AIGW_ADMIN": "127.0.0.1:0", **(env or {})}
        rendered = aigw("render", str(self.config), "--wasm-dir", str(WASM_DIR), env=self.env)
        self.envoy_config = self.dir / "envoy.yaml"
        self.envoy_config.write_text(rendered.stdout)
        validate_envoy_config(self.envoy_config, self.env)
        self.log_path = self.dir / "envoy.log"
        self.admin_path = self.dir / "admin-address"
        full_env = dict(os.environ)
        full_env.update(self.env)
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [
                str(ENVOY), "-c", str(self.envoy_config),
                "--disable-hot-restart",
                "--concurrency", str(concurrency),
                "--admin-address-path", str(self.admin_path),
                "--log-level", "info",
                "--component-log-level", "wasm:debug",
                # Access log lines within 0.1 s, not Envoy's default 10 s.
                "--file-flush-interval-msec", "100",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=full_env,
            start_new_session=True,
        )
        try:
            self._wait_ready()
        except Exception:
            log = self.log()
            self.stop()
            raise RuntimeError(f"Envoy did not become ready. Envoy log:\n{log[-20000:]}")

    def _wait_ready(self) -> None:
        self.admin = wait_for_envoy_admin(self.proc, self.admin_path, STARTUP_TIMEOUT)
        with urllib.request.urlopen(self.admin + "/listeners?format=json", timeout=5) as r:
            listeners = json.load(r)
        status = next(l for l in listeners["listener_statuses"] if l["name"] == "aigw")
        self.port = status["local_address"]["socket_address"]["port_value"]
        self.host = "127.0.0.1"
        self.url = f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def access_log(self) -> list[dict]:
        out = []
        for line in self.log().splitlines():
            if line.startswith("{") and '"route"' in line:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
        # A failed test printed Envoy's log already (conftest's report hook runs first).
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- HTTP helpers -----------------------------------------------------

    def request(self, method: str, path: str, body=None, headers: dict | None = None, timeout: float = 30) -> "Response":
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        hdrs = dict(headers or {})
        data = body
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
            hdrs.setdefault("content-type", "application/json")
        elif isinstance(body, str):
            data = body.encode()
        try:
            conn.request(method, path, body=data, headers=hdrs)
            r = conn.getresponse()
            raw = r.read()
            return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, raw)
        finally:
            conn.close()

    def chat(self, body: dict, headers: dict | None = None) -> "Response":
        return self.request("POST", "/v1/chat/completions", body, headers)

    def stream(self, body: dict, headers: dict | None = None, timeout: float = 30) -> "Stream":
        """Sends a request and reads the response as it arrives, noting when each event came."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        hdrs = {"content-type": "application/json", **(headers or {})}
        start = time.monotonic()
        conn.request("POST", "/v1/chat/completions", body=json.dumps(body).encode(), headers=hdrs)
        r = conn.getresponse()
        s = Stream(r.status, {k.lower(): v for k, v in r.getheaders()})
        buf = b""
        try:
            while True:
                chunk = r.read1(65536) if hasattr(r, "read1") else r.read(1)
                if not chunk:
                    break
                buf += chunk
                s.raw += chunk
                while b"\n\n" in buf:
                    event, buf = buf.split(b"\n\n", 1)
                    s.events.append(event.decode())
                    s.times.append(time.monotonic() - start)
        except (http.client.IncompleteRead, ConnectionError) as e:
            s.error = e
        finally:
            conn.close()
        return s


@dataclass
class Response:
    status: int
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class Stream:
    status: int
    headers: dict
    events: list = field(default_factory=list)
    times: list = field(default_factory=list)
    raw: bytes = b""
    error: Exception | None = None

    def data(self) -> list[str]:
        return [e[len("data: "):] for e in self.events if e.startswith("data: ")]

    def chunks(self) -> list[dict]:
        return [json.loads(d) for d in self.data() if d != "[DONE]"]

    def text(self) -> str:
        return "".join(
            (c["choices"][0]["delta"].get("content") or "") for c in self.chunks() if c.get("choices")
        )


def gateway_yaml(providers: list[dict], models: list[dict], extra: str = "", **top) -> str:
    """A gateway file (as YAML text; JSON is YAML) listening on free ports;
    `top` adds top-level sections (e.g. `consumers=[...]`)."""
    doc = {"listen": "${AIGW_LISTEN}", "admin": "${AIGW_ADMIN}", "providers": providers, "models": models, **top}
    return json.dumps(doc, indent=2) + "\n" + extra


# For tests that inject provider errors to check their shape: a key pool that
# never refuses locally, so each request reaches the (mock) provider.
NEVER_REFUSE = {"whenAllDown": "try-oldest"}


def provider(name: str, mock: Mock, keys=None, prefix: str = "/v1", **kw) -> dict:
    p = {"name": name, "kind": "openai-compatible", "baseUrl": mock.base_url(prefix)}
    if keys is not None:
        p["keys"] = keys
    p.update(kw)
    return p
