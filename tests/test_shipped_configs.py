"""Every config we ship is valid, and the docker compose stack agrees with it.

No gateway is started here: the configs are checked with `aigw validate` and
`envoy --mode validate` against the built filters, the committed compose render
is compared with a fresh one, and docker-compose.yml is read and compared with
that render (docker itself is not needed).
"""
from __future__ import annotations

import difflib
import ipaddress
import os
import shlex
import subprocess
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _path(var: str, default: str) -> Path:
    p = Path(os.environ.get(var) or default)
    return p if p.is_absolute() else ROOT / p


BIN_DIR = _path("AIGW_BIN_DIR", "target/tools")
WASM_DIR = _path("AIGW_WASM_DIR", "target/wasm32-wasip1/release")
ENVOY = _path("ENVOY_BIN", ".venv/bin/envoy")
AIGW = BIN_DIR / "aigw"

COMPOSE_FILE = ROOT / "docker-compose.yml"
COMPOSE_ENVOY_CONFIG = ROOT / "envoy" / "demo.compose.yaml"
# How `make compose-config` renders it; keep the two in step. The config path
# is relative (from the repository root) because the render's header names it.
DEMO_CONFIG = "config/demo.yaml"
COMPOSE_WASM_DIR = "/etc/aigw/wasm"
COMPOSE_RENDER_ENV = {
    "AIGW_LISTEN": "0.0.0.0:8080",
    "AIGW_ADMIN": "0.0.0.0:9901",
    "MOCK_OPENAI_HOST": "mock-openai",
    "MOCK_DEEPSEEK_HOST": "mock-deepseek",
    "MOCK_ANTHROPIC_HOST": "mock-anthropic",
    "MOCK_GEMINI_HOST": "mock-gemini",
}
MOCKS = ("mock-openai", "mock-deepseek", "mock-anthropic", "mock-gemini")


def _require(path: Path, hint: str) -> None:
    assert path.exists(), f"{path} not found: {hint}"


def _run(args: list, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(a) for a in args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def _output(r: subprocess.CompletedProcess) -> str:
    return f"exit status {r.returncode}\n--- stdout\n{r.stdout}--- stderr\n{r.stderr}"


def _load_yaml(path: Path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


# --- shipped gateway configs ---------------------------------------------------


def test_every_shipped_gateway_config_passes_aigw_and_envoy_validation():
    _require(AIGW, "build the tools first (make build)")
    _require(ENVOY, "install Envoy first (make venv), or set ENVOY_BIN")
    configs = sorted((ROOT / "config").glob("*.yaml"))
    assert configs, "no gateway config found in config/"
    env = {**os.environ, "ENVOY_BIN": str(ENVOY)}
    failures = []
    for config in configs:
        name = config.relative_to(ROOT)
        r = _run([AIGW, "validate", name, "--wasm-dir", WASM_DIR], env=env)
        envoy_ok = any(
            line.startswith("envoy --mode validate:") and "OK" in line for line in r.stdout.splitlines()
        )
        if r.returncode != 0 or not envoy_ok:
            failures.append(f"== {name}\n{_output(r)}")
    assert not failures, "\n".join(failures)


def test_the_demos_commented_consumers_example_is_valid_when_uncommented():
    _require(AIGW, "build the tools first (make build)")
    text = (ROOT / DEMO_CONFIG).read_text()
    start = text.index("# consumers:")
    example = "\n".join(l[2:] if l.startswith("# ") else l for l in text[start:].splitlines())
    with tempfile.TemporaryDirectory() as d:
        config = Path(d) / "demo-with-consumers.yaml"
        config.write_text(text[:start] + example + "\n")
        r = _run([AIGW, "validate", config, "--no-envoy"])
    assert r.returncode == 0, _output(r)
    assert "consumer demo-app's key is given in plain text" in r.stderr, _output(r)


# --- the docker compose stack ---------------------------------------------------


def test_compose_envoy_config_is_the_render_of_the_demo_config():
    _require(AIGW, "build the tools first (make build)")
    _require(COMPOSE_ENVOY_CONFIG, "run `make compose-config`")
    with tempfile.TemporaryDirectory(prefix="aigw-compose-") as tmp:
        out = Path(tmp) / "demo.compose.yaml"
        # Only these variables, as the Makefile's `env -i` does.
        r = _run(
            [AIGW, "render", DEMO_CONFIG, "--wasm-dir", COMPOSE_WASM_DIR, "-o", out],
            env=COMPOSE_RENDER_ENV,
        )
        assert r.returncode == 0, _output(r)
        fresh = out.read_bytes()
    committed = COMPOSE_ENVOY_CONFIG.read_bytes()
    if fresh != committed:
        diff = difflib.unified_diff(
            committed.decode("utf-8", "replace").splitlines(),
            fresh.decode("utf-8", "replace").splitlines(),
            "envoy/demo.compose.yaml (committed)",
            "fresh render",
            lineterm="",
        )
        shown = "\n".join(list(diff)[:60])
        raise AssertionError(
            f"envoy/demo.compose.yaml is not the render of {DEMO_CONFIG}: run `make compose-config`\n{shown}"
        )


def test_compose_envoy_config_passes_envoy_validation():
    _require(ENVOY, "install Envoy first (make venv), or set ENVOY_BIN")
    for wasm in ("aigw_router.wasm", "aigw_provider.wasm"):
        _require(WASM_DIR / wasm, "build the filters first (make build)")
    text = COMPOSE_ENVOY_CONFIG.read_text(encoding="utf-8")
    assert COMPOSE_WASM_DIR in text, f"{COMPOSE_ENVOY_CONFIG} does not load the filters from {COMPOSE_WASM_DIR}"
    with tempfile.TemporaryDirectory(prefix="aigw-compose-") as tmp:
        local = Path(tmp) / "envoy.yaml"
        local.write_text(text.replace(COMPOSE_WASM_DIR, str(WASM_DIR.resolve())), encoding="utf-8")
        # The mock hosts are compose service names; LOGICAL_DNS clusters are
        # not resolved in validate mode.
        r = _run([ENVOY, "--mode", "validate", "--disable-hot-restart", "-c", local])
    assert r.returncode == 0, f"envoy rejected envoy/demo.compose.yaml:\n{_output(r)}"


def _command(service: dict) -> list[str]:
    cmd = service.get("command") or []
    return shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]


def _flag(args: list[str], flag: str) -> str | None:
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(flag + "="):
            return a[len(flag) + 1 :]
    return None


def _volumes(service: dict) -> dict[str, tuple[str, bool]]:
    """Container path -> (host source, read-only), from short or long syntax."""
    mounts = {}
    for v in service.get("volumes") or []:
        if isinstance(v, str):
            parts = v.split(":")
            source, target = parts[0], parts[1]
            read_only = len(parts) > 2 and "ro" in parts[2].split(",")
        else:
            source, target, read_only = v.get("source", ""), v["target"], bool(v.get("read_only"))
        mounts[target] = (os.path.normpath(source), read_only)
    return mounts


def _ports(service: dict) -> dict[int, tuple[str, int]]:
    """Container port -> (host ip, published port), from short or long syntax."""
    ports = {}
    for p in service.get("ports") or []:
        if isinstance(p, str):
            parts = p.split("/")[0].split(":")
            assert len(parts) == 3, f"port {p!r}: publish as HOST_IP:HOST_PORT:CONTAINER_PORT"
            ports[int(parts[2])] = (parts[0], int(parts[1]))
        else:
            ports[int(p["target"])] = (p.get("host_ip", ""), int(p["published"]))
    return ports


def _environment(service: dict) -> set[str]:
    env = service.get("environment") or {}
    if isinstance(env, dict):
        return set(env)
    return {e.split("=", 1)[0] for e in env}


def _depends_on(service: dict) -> set[str]:
    return set(service.get("depends_on") or [])


def _socket(address: dict) -> tuple[str, int]:
    s = address["socket_address"]
    return s["address"], int(s["port_value"])


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def _wasm_files(node) -> list[str]:
    """Every `vm_config.code.local.filename` in the rendered config."""
    found = []
    if isinstance(node, dict):
        vm = node.get("vm_config")
        if isinstance(vm, dict):
            found.append(vm["code"]["local"]["filename"])
        for v in node.values():
            found += _wasm_files(v)
    elif isinstance(node, list):
        for v in node:
            found += _wasm_files(v)
    return found


def _host_env_keys(node) -> set[str]:
    keys = set()
    if isinstance(node, dict):
        keys |= set(node.get("host_env_keys") or [])
        for v in node.values():
            keys |= _host_env_keys(v)
    elif isinstance(node, list):
        for v in node:
            keys |= _host_env_keys(v)
    return keys


def test_docker_compose_file_matches_the_rendered_config():
    compose = _load_yaml(COMPOSE_FILE)
    rendered = _load_yaml(COMPOSE_ENVOY_CONFIG)
    services = compose["services"]
    envoy = services["envoy"]

    # The official, pinned Envoy: the version the filters are tested with.
    assert envoy["image"] == "envoyproxy/envoy:v1.40.0"

    # Envoy reads the committed render, and the filters where the render says.
    mounts = _volumes(envoy)
    args = _command(envoy)
    config_path = _flag(args, "-c") or _flag(args, "--config-path")
    assert config_path, f"the envoy command {args} names no config (-c)"
    assert config_path in mounts, f"{config_path} is not mounted into the envoy service"
    assert mounts[config_path] == ("envoy/demo.compose.yaml", True), mounts[config_path]
    assert COMPOSE_WASM_DIR in mounts, f"nothing is mounted at {COMPOSE_WASM_DIR}"
    assert mounts[COMPOSE_WASM_DIR] == ("target/wasm32-wasip1/release", True), mounts[COMPOSE_WASM_DIR]
    wasm_files = _wasm_files(rendered)
    assert wasm_files, "the rendered config loads no wasm filter"
    for f in wasm_files:
        assert f.startswith(COMPOSE_WASM_DIR + "/"), f"{f} is outside the mounted {COMPOSE_WASM_DIR}"

    # The listener and the admin listen on all interfaces inside the container,
    # published on the host's loopback at the same ports as `make run`.
    listen_host, listen_port = _socket(rendered["static_resources"]["listeners"][0]["address"])
    admin_host, admin_port = _socket(rendered["admin"]["address"])
    assert (listen_host, admin_host) == ("0.0.0.0", "0.0.0.0")
    assert _ports(envoy) == {listen_port: ("127.0.0.1", 8080), admin_port: ("127.0.0.1", 9901)}
    assert (listen_port, admin_port) == (8080, 9901)

    # Every provider key variable the filters read reaches Envoy's environment.
    missing = _host_env_keys(rendered) - _environment(envoy)
    assert not missing, f"the envoy service does not pass {sorted(missing)}"

    # Each mock cluster points at the mock's service, on the port it listens on.
    clusters = {c["name"]: c for c in rendered["static_resources"]["clusters"]}
    assert set(MOCKS) <= _depends_on(envoy)
    for name in MOCKS:
        mock = services[name]
        build = mock["build"]
        _require(ROOT / build["context"] / build["dockerfile"], "the mock's Dockerfile is missing")
        mock_args = _command(mock)
        assert _flag(mock_args, "--name") == name
        listen = _flag(mock_args, "--listen")
        assert listen, f"service {name} has no --listen"
        mock_host, _, mock_port = listen.rpartition(":")
        assert mock_host == "0.0.0.0", f"service {name} listens on {listen}, unreachable from envoy"
        cluster = clusters[f"aigw-provider-{name}"]
        endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
        host, port = _socket(endpoint["address"])
        assert host == name, f"cluster aigw-provider-{name} points at {host}, not the {name} service"
        assert not _is_ip(host) and cluster["type"] == "LOGICAL_DNS"
        assert port == int(mock_port), (
            f"cluster aigw-provider-{name} uses port {port}, the {name} service listens on {mock_port}"
        )
