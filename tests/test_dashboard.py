"""The monitoring assets: the Grafana dashboard, its provisioning, the Prometheus
scrape config and their services in docker-compose.yml.

Nothing is started (no network, no docker): the files are read and checked
against each other, against the rendered Envoy config and against the metrics
the filters document.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import yaml

from test_shipped_configs import _ports, _volumes

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "aigw.json"
DATASOURCES = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yaml"
DASHBOARD_PROVIDERS = DEPLOY / "grafana" / "provisioning" / "dashboards" / "aigw.yaml"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
COMPOSE_FILE = ROOT / "docker-compose.yml"
COMPOSE_ENVOY_CONFIG = ROOT / "envoy" / "demo.compose.yaml"

# The metrics the filters expose on /stats/prometheus, with their labels.
COUNTERS = {
    "aigw_requests_total": {"model", "served_model", "provider", "consumer", "status"},
    "aigw_tokens_total": {"model", "served_model", "provider", "consumer", "type", "source"},
    "aigw_streams_interrupted_total": {"provider", "how"},
    "aigw_fallbacks_total": {"model", "provider"},
    "aigw_retries_total": {"provider"},
    "aigw_key_requests_total": {"provider", "key"},
    "aigw_key_failures_total": {"provider", "key", "class"},
}
GAUGES = {
    "aigw_key_state": {"provider", "key"},
    "aigw_wasm_memory_bytes": {"filter"},
}
HISTOGRAMS = {
    "aigw_request_duration_ms": {"model", "provider", "consumer"},
    "aigw_time_to_first_token_ms": {"model", "provider", "consumer"},
    "aigw_stream_duration_ms": {"model", "provider", "consumer"},
}
# Every series name an expression may select, with the labels it carries.
SERIES = {**COUNTERS, **GAUGES}
for _name, _labels in HISTOGRAMS.items():
    SERIES[f"{_name}_bucket"] = _labels | {"le"}
    SERIES[f"{_name}_sum"] = _labels
    SERIES[f"{_name}_count"] = _labels

# Label values the filters produce, where the set is closed.
LABEL_VALUES = {
    "status": {"2xx", "4xx", "5xx", "none"},
    "type": {"input", "output", "total", "cached", "reasoning"},
    "source": {"reported", "estimated"},
    "how": {"ended_early", "reset"},
    "class": {"rate_limited", "auth", "error"},
    "filter": {"router", "provider"},
}
# README "Metrics per key": the values of aigw_key_state.
KEY_STATES = {"0": "healthy", "1": "trial", "2": "cooling", "3": "unhealthy", "4": "disabled"}

# PromQL words that are neither metrics nor functions called with parentheses.
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset", "inf", "nan"}
GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)")
SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{([^{}]*)\}")
MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')
IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def _load_yaml(path: Path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def _dashboard() -> dict:
    with open(DASHBOARD, encoding="utf-8") as f:
        return json.load(f)


def _all_panels(panels: list) -> list[dict]:
    """Every panel, including those inside (collapsed) rows."""
    out = []
    for p in panels:
        out.append(p)
        out += _all_panels(p.get("panels") or [])
    return out


def _exprs(dashboard: dict) -> list[tuple[str, str]]:
    """(panel title, expr) for every query of every panel."""
    return [
        (p.get("title", ""), t["expr"])
        for p in _all_panels(dashboard["panels"])
        for t in p.get("targets") or []
        if "expr" in t
    ]


def _variable_query(var: dict) -> str:
    q = var.get("query")
    return q.get("query", "") if isinstance(q, dict) else (q or "")


def _label_values(var: dict) -> tuple[str, str]:
    """(metric, label) of a `label_values(metric{...}, label)` variable."""
    query = _variable_query(var)
    m = re.fullmatch(r"label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{[^}]*\})?\s*,\s*(\w+)\s*\)", query)
    assert m, f"variable {var['name']}: {query!r} is not a label_values query"
    return m.group(1), m.group(2)


def _strip(expr: str) -> str:
    """The expression without variables, durations and label matchers' values."""
    expr = re.sub(r"\$\{?\w+\}?", "", expr)
    return re.sub(r"\[[^\]]*\]", "", expr)


def _selectors(expr: str) -> list[tuple[str, dict[str, tuple[str, str]]]]:
    """(metric, {label: (op, value)}) for every `metric{...}` selector."""
    found = []
    for m in SELECTOR.finditer(expr):
        body = m.group(2).strip()
        matchers, pos = {}, 0
        while pos < len(body):
            mm = MATCHER.match(body, pos)
            assert mm, f"cannot read the label matchers {{{body}}} in {expr!r}"
            matchers[mm.group(1)] = (mm.group(2), mm.group(3))
            pos = mm.end()
        found.append((m.group(1) or "", matchers))
    return found


def _metric_names(expr: str) -> set[str]:
    """Every metric name an expression selects."""
    text = _strip(expr)
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)  # string literals (matchers' values)
    text = re.sub(r"\{[^{}]*\}", " ", text)  # label matchers
    text = GROUPING.sub(" ", text)  # by (...), on (...) label lists
    names = set()
    for m in IDENT.finditer(text):
        word = m.group(0)
        rest = text[m.end() :].lstrip()
        if rest.startswith("("):  # a function or an aggregation
            continue
        if word.lower() in KEYWORDS:
            continue
        names.add(word)
    return names


def _grouping_labels(expr: str) -> set[str]:
    labels = set()
    for m in GROUPING.finditer(_strip(expr)):
        labels |= {l.strip() for l in m.group(2).split(",") if l.strip()}
    return labels


# --- the dashboard ------------------------------------------------------------


def test_dashboard_is_grafana_json_with_unique_panel_ids():
    d = _dashboard()
    assert d["uid"] == "aigw" and d["title"]
    assert isinstance(d["schemaVersion"], int) and d["schemaVersion"] >= 36
    panels = _all_panels(d["panels"])
    assert panels, "the dashboard has no panel"
    ids = [p["id"] for p in panels]
    assert all(isinstance(i, int) for i in ids), ids
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {sorted(i for i in ids if ids.count(i) > 1)}"
    for p in panels:
        assert p.get("type") and p.get("title"), p
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0, f"panel {p['title']!r}: gridPos {g}"
        if p["type"] != "row":
            assert p.get("targets"), f"panel {p['title']!r} has no query"
            ref_ids = [t["refId"] for t in p["targets"]]
            assert len(ref_ids) == len(set(ref_ids)), f"panel {p['title']!r}: duplicate refIds {ref_ids}"


def test_dashboard_queries_the_prometheus_data_source():
    d = _dashboard()
    variables = {v["name"]: v for v in d["templating"]["list"]}
    ds = variables["datasource"]
    assert ds["type"] == "datasource" and ds["query"] == "prometheus"
    # The provisioned data source's uid (deploy/grafana/provisioning/datasources).
    assert ds["current"]["value"] == "prometheus"
    expected = {"type": "prometheus", "uid": "${datasource}"}
    for p in _all_panels(d["panels"]):
        if p["type"] == "row":
            continue
        assert p["datasource"] == expected, f"panel {p['title']!r} uses {p['datasource']}"
        for t in p["targets"]:
            assert t.get("datasource", expected) == expected, f"panel {p['title']!r}: {t['datasource']}"
    for v in variables.values():
        if v["type"] == "query":
            assert v["datasource"] == expected, f"variable {v['name']} uses {v['datasource']}"


def test_dashboard_has_model_provider_and_consumer_variables():
    variables = {v["name"]: v for v in _dashboard()["templating"]["list"]}
    for label in ("model", "provider", "consumer"):
        v = variables.get(label)
        assert v, f"no {label} variable"
        assert v["type"] == "query" and v["multi"] and v["includeAll"] and v["allValue"] == ".*"
        metric, values_of = _label_values(v)
        assert values_of == label
        assert metric in SERIES and label in SERIES[metric], f"variable {label}: {metric} has no {label} label"


def test_every_expression_uses_only_the_documented_metrics():
    d = _dashboard()
    exprs = _exprs(d)
    assert exprs, "the dashboard has no query"
    used = set()
    for title, expr in exprs:
        names = _metric_names(expr)
        assert names, f"panel {title!r}: no metric in {expr!r}"
        unknown = names - set(SERIES)
        assert not unknown, f"panel {title!r}: {sorted(unknown)} are not aigw metrics in {expr!r}"
        used |= names
    for v in d["templating"]["list"]:
        if v["type"] == "query":
            metric, label = _label_values(v)
            assert metric in SERIES and label in SERIES[metric], f"variable {v['name']}: {metric} has no {label} label"
    # Histograms are read through their buckets, never as plain series.
    for name in HISTOGRAMS:
        assert name not in used
    # Every metric has a panel.
    for name in (*COUNTERS, *GAUGES):
        assert name in used, f"no panel shows {name}"
    for name in HISTOGRAMS:
        assert f"{name}_bucket" in used, f"no panel shows {name}"


def test_every_expression_uses_only_the_labels_of_its_metrics():
    d = _dashboard()
    defined = {v["name"] for v in d["templating"]["list"]}
    for title, expr in _exprs(d):
        depth = []
        for c in re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr):
            if c in "([{":
                depth.append(c)
            elif c in ")]}":
                assert depth and depth.pop() + c in ("()", "[]", "{}"), f"panel {title!r}: unbalanced {expr!r}"
        assert not depth, f"panel {title!r}: unbalanced {expr!r}"
        selectors = _selectors(expr)
        assert selectors, f"panel {title!r}: no selector in {expr!r}"
        for metric, matchers in selectors:
            assert metric in SERIES, f"panel {title!r}: selector without a known metric in {expr!r}"
            extra = set(matchers) - SERIES[metric]
            assert not extra, f"panel {title!r}: {metric} has no label {sorted(extra)}"
            for label, (op, value) in matchers.items():
                for var in re.findall(r"\$\{?(\w+)\}?", value):
                    assert var in defined, f"panel {title!r}: ${var} is not a dashboard variable"
                if label in LABEL_VALUES and "$" not in value:
                    values = set(value.split("|")) if op in ("=~", "!~") else {value}
                    assert values <= LABEL_VALUES[label], f"panel {title!r}: {label} is never {sorted(values - LABEL_VALUES[label])}"
        # Grouping labels exist on a metric the expression reads.
        available = set().union(*(SERIES[m] for m in _metric_names(expr)))
        missing = _grouping_labels(expr) - available
        assert not missing, f"panel {title!r}: grouping by {sorted(missing)}, which no metric of {expr!r} has"
        # Quantiles come from the rate of buckets, grouped by le.
        if "histogram_quantile" in expr:
            assert re.search(r"_bucket\{", expr) and "rate(" in expr and "le" in _grouping_labels(expr), expr


def test_the_panels_the_dashboard_promises():
    exprs = [e for _, e in _exprs(_dashboard())]

    def some(pattern: str) -> bool:
        return any(re.search(pattern, e) for e in exprs)

    assert some(r"sum by \(status\) \(rate\(aigw_requests_total"), "request rate by status"
    assert some(r'aigw_requests_total\{[^}]*status=~"5xx\|none"[^}]*\}.*\) / sum\(rate\(aigw_requests_total'), "error ratio"
    assert some(r"sum by \(type, source\) \(rate\(aigw_tokens_total"), "tokens per second by type and source"
    assert some(r"sum by \(consumer\) \(\w*\(?aigw_tokens_total"), "tokens by consumer"
    for h in HISTOGRAMS:
        for q in ("0.5", "0.95", "0.99"):
            assert some(rf"histogram_quantile\({q}, sum by \(le\) \(rate\({h}_bucket"), f"p{q} of {h}"
    assert some(r"rate\(aigw_fallbacks_total") and some(r"rate\(aigw_retries_total"), "fallbacks and retries"
    assert some(r"rate\(aigw_streams_interrupted_total"), "interrupted streams"
    assert some(r"aigw_key_state") and some(r"rate\(aigw_key_failures_total"), "key states and failures"


def test_key_state_panel_names_the_documented_states():
    for p in _all_panels(_dashboard()["panels"]):
        if any("aigw_key_state" in t.get("expr", "") for t in p.get("targets") or []) and p["type"] == "state-timeline":
            mappings = p["fieldConfig"]["defaults"]["mappings"]
            names = {k: v["text"] for m in mappings if m["type"] == "value" for k, v in m["options"].items()}
            assert names == KEY_STATES, names
            break
    else:
        raise AssertionError("no state-timeline panel shows aigw_key_state")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    encoding = ", ".join(f"{k} {v}" for k, v in KEY_STATES.items())
    assert encoding in readme, f"README.md no longer documents aigw_key_state as {encoding!r}"


# --- Prometheus ---------------------------------------------------------------


def _compose_services() -> dict:
    return _load_yaml(COMPOSE_FILE)["services"]


def _flag(args: list[str], flag: str) -> str | None:
    for i, a in enumerate(args):
        if a.startswith(flag + "="):
            return a[len(flag) + 1 :]
        if a == flag and i + 1 < len(args):
            return args[i + 1]
    return None


def test_prometheus_scrapes_the_envoy_admin_of_the_compose_stack():
    config = _load_yaml(PROMETHEUS)
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    job = jobs["aigw"]
    assert job["metrics_path"] == "/stats/prometheus"
    assert job.get("scheme", "http") == "http"
    targets = [t for sc in job["static_configs"] for t in sc["targets"]]
    # The admin address of the rendered config, reached by the envoy service's name.
    admin = _load_yaml(COMPOSE_ENVOY_CONFIG)["admin"]["address"]["socket_address"]
    assert admin["address"] == "0.0.0.0", "the admin is not reachable from the other services"
    assert targets == [f"envoy:{admin['port_value']}"]
    assert "envoy" in _compose_services()


def test_grafana_data_source_is_the_compose_prometheus():
    config = _load_yaml(DATASOURCES)
    [ds] = config["datasources"]
    assert ds["type"] == "prometheus" and ds["uid"] == "prometheus" and ds["isDefault"]
    services = _compose_services()
    port = _ports(services["prometheus"])
    assert 9090 in port
    assert ds["url"] == "http://prometheus:9090"
    interval = _load_yaml(PROMETHEUS)["global"]["scrape_interval"]
    assert ds["jsonData"]["timeInterval"] == interval, "Grafana's $__rate_interval needs the scrape interval"


def test_grafana_dashboard_provider_loads_the_dashboard_directory():
    config = _load_yaml(DASHBOARD_PROVIDERS)
    [provider] = config["providers"]
    assert provider["type"] == "file"
    path = provider["options"]["path"]
    mounts = _volumes(_compose_services()["grafana"])
    assert mounts.get(path) == ("deploy/grafana/dashboards", True), f"{path} is not the mounted dashboards: {mounts}"
    assert (ROOT / mounts[path][0] / DASHBOARD.name).is_file()


# --- docker-compose.yml ---------------------------------------------------------


def test_compose_runs_prometheus_and_grafana_with_the_deploy_files():
    services = _compose_services()

    prom = services["prometheus"]
    assert re.fullmatch(r"prom/prometheus:v\d+\.\d+\.\d+", prom["image"]), f"pin prometheus: {prom['image']}"
    args = prom.get("command") or []
    config_path = _flag(args, "--config.file")
    assert config_path, f"prometheus command {args} names no --config.file"
    assert _volumes(prom).get(config_path) == ("deploy/prometheus/prometheus.yml", True)
    assert _ports(prom) == {9090: ("127.0.0.1", 9090)}
    assert "envoy" in (prom.get("depends_on") or [])

    grafana = services["grafana"]
    assert re.fullmatch(r"grafana/grafana:\d+\.\d+\.\d+", grafana["image"]), f"pin grafana: {grafana['image']}"
    mounts = _volumes(grafana)
    assert mounts.get("/etc/grafana/provisioning/datasources") == ("deploy/grafana/provisioning/datasources", True)
    assert mounts.get("/etc/grafana/provisioning/dashboards") == ("deploy/grafana/provisioning/dashboards", True)
    for target, (source, _) in mounts.items():
        assert (ROOT / source).exists(), f"grafana mounts {source}, which does not exist"
    assert _ports(grafana) == {3000: ("127.0.0.1", 3000)}
    assert "prometheus" in (grafana.get("depends_on") or [])
    env = grafana["environment"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true" and env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    home = env.get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home:
        directory, name = home.rsplit("/", 1)
        assert mounts[directory][0] == "deploy/grafana/dashboards" and (ROOT / mounts[directory][0] / name).is_file()


def test_metric_name_extraction():
    # The helper the checks above rely on.
    assert _metric_names(
        'histogram_quantile(0.95, sum by (le, model) (rate(aigw_request_duration_ms_bucket{model=~"$model"}[$__rate_interval])))'
    ) == {"aigw_request_duration_ms_bucket"}
    assert _metric_names('count(aigw_key_state{provider=~"$provider"} > 0) or vector(0)') == {"aigw_key_state"}
    assert _metric_names('sum(rate(foo_total[5m])) / sum(rate(aigw_requests_total{status="5xx"}[5m]))') == {
        "foo_total",
        "aigw_requests_total",
    }
