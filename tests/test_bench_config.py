"""The benchmark's Envoy bootstrap (bench/run.py), without load: the bench gateway renders, the
bootstrap built from it passes `envoy --mode validate`, and its listeners `l0` (plain), `l1`
(wasm idle) and `l2` (aigw) differ only in their HTTP filters and route config."""
from __future__ import annotations

import copy
import importlib.util
import json
import os
from pathlib import Path

import pytest
import yaml

from harness import ROOT, Mock

KEY_ENV = "AIGW_BENCH_KEY"


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def bench():
    return load_bench()


@pytest.fixture(scope="module")
def built(bench, tmp_path_factory):
    """(rendered bootstrap, bench bootstrap, its path, the mock's URL)."""
    workdir = tmp_path_factory.mktemp("bench-config")
    mock = Mock("bench-config")
    try:
        rendered = bench.render_gateway(mock, workdir)
        boot = bench.build_bootstrap(rendered)
        path = workdir / "envoy.yaml"
        path.write_text(yaml.safe_dump(boot, sort_keys=False))
        yield rendered, boot, path, mock.url
    finally:
        mock.stop()


def hcm(listener: dict) -> dict:
    return listener["filter_chains"][0]["filters"][0]["typed_config"]


def without_filters_and_routes(listener: dict) -> dict:
    lst = copy.deepcopy(listener)
    lst.pop("name")
    cfg = hcm(lst)
    cfg.pop("http_filters")
    cfg.pop("route_config")
    return lst


def listeners(boot: dict) -> dict:
    return {l["name"]: l for l in boot["static_resources"]["listeners"]}


def clusters(boot: dict) -> dict:
    return {c["name"]: c for c in boot["static_resources"]["clusters"]}


def upstream_filters(cluster: dict) -> list:
    opts = cluster["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
    return opts.get("http_filters", [])


def wasm_file(f: dict) -> str:
    return Path(f["typed_config"]["config"]["vm_config"]["code"]["local"]["filename"]).name


def test_the_bench_bootstrap_passes_envoy_validate(bench, built):
    _, _, path, _ = built
    bench.validate(path, {**os.environ, KEY_ENV: "sk-bench"})


def test_listeners_differ_only_in_http_filters_and_route(bench, built):
    _, boot, _, _ = built
    ls = listeners(boot)
    assert list(ls) == ["l0", "l1", "l2", *bench.HOSTCALL_WORK]
    base = without_filters_and_routes(ls["l0"])
    for name in ("l1", "l2", *bench.HOSTCALL_WORK):
        assert without_filters_and_routes(ls[name]) == base, name
    # The host-call listeners are l1 but for the no-op module's configuration.
    for name, work in bench.HOSTCALL_WORK.items():
        (noop, router) = hcm(ls[name])["http_filters"]
        assert noop["typed_config"]["config"]["configuration"]["value"] == work
        assert hcm(ls[name])["route_config"] == hcm(ls["l1"])["route_config"]
    for lst in ls.values():
        assert lst["address"]["socket_address"]["port_value"] == 0


def test_each_listener_has_its_filters(built):
    rendered, boot, _, _ = built
    ls = listeners(boot)
    names = {n: [f["name"] for f in hcm(l)["http_filters"]] for n, l in ls.items()}
    assert names["l0"] == ["envoy.filters.http.router"]
    assert names["l1"] == ["envoy.filters.http.wasm", "envoy.filters.http.router"]
    assert wasm_file(hcm(ls["l1"])["http_filters"][0]) == "aigw_noop.wasm"
    # l2 is the rendered listener's chain, untouched.
    (aigw,) = rendered["static_resources"]["listeners"]
    assert hcm(ls["l2"])["http_filters"] == hcm(aigw)["http_filters"]
    assert hcm(ls["l2"])["route_config"] == hcm(aigw)["route_config"]


def test_routes_go_to_the_right_clusters(bench, built):
    _, boot, _, mock_url = built
    ls, cs = listeners(boot), clusters(boot)

    def route_clusters(name: str) -> set:
        return {r["route"]["cluster"] for vh in hcm(ls[name])["route_config"]["virtual_hosts"]
                for r in vh["routes"] if "route" in r}

    assert route_clusters("l0") == {"bench-plain-mock"}
    assert route_clusters("l1") == {"bench-noop-mock"}
    # aigw reaches the mock as both providers: the pass-through and the translated route.
    assert route_clusters("l2") == {"aigw-provider-mock", "aigw-provider-mock-anthropic"}
    # The plain and no-op copies are of the OpenAI-compatible provider's cluster (same endpoint).
    port = int(mock_url.rsplit(":", 1)[1])
    for name in ("bench-plain-mock", "bench-noop-mock", "aigw-provider-mock", "aigw-provider-mock-anthropic"):
        (ep,) = [e for g in cs[name]["load_assignment"]["endpoints"] for e in g["lb_endpoints"]]
        assert ep["endpoint"]["address"]["socket_address"]["port_value"] == port, name
    assert upstream_filters(cs["bench-plain-mock"]) == []
    noop = [wasm_file(f) for f in upstream_filters(cs["bench-noop-mock"]) if f["name"] == "envoy.filters.http.wasm"]
    assert noop == ["aigw_noop.wasm"]
    aigw = [wasm_file(f) for f in upstream_filters(cs["aigw-provider-mock"]) if f["name"] == "envoy.filters.http.wasm"]
    assert aigw == ["aigw_provider.wasm"]
    # Apart from the wasm filter, the no-op copy keeps the provider cluster's upstream filters.
    assert ([f["name"] for f in upstream_filters(cs["bench-noop-mock"])]
            == [f["name"] for f in upstream_filters(cs["aigw-provider-mock"])])


def test_workloads_name_the_models_the_gateway_serves(bench):
    wls = bench.workloads()
    models = {m["name"] for m in bench.gateway("http://127.0.0.1:1")["models"]}
    for name in bench.SETTINGS["workloads"] + ["sse_paced"]:
        body = json.loads(wls[name]["body"])
        assert body["model"] in models, name
        assert wls[name]["stream"] == bool(body.get("stream")), name
    assert json.loads(wls["translated"]["body"])["model"] == bench.TRANSLATED_MODEL
    assert "x-mock-chunks: 64" in wls["translated_sse64"]["headers"]
