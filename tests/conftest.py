"""Fixtures shared by the integration tests, and Envoy's log on failure."""
from __future__ import annotations

import pytest

from harness import Gateway, Mock


@pytest.fixture(scope="module")
def mock_factory():
    mocks: list[Mock] = []

    def make(name: str) -> Mock:
        m = Mock(name)
        mocks.append(m)
        return m

    yield make
    for m in mocks:
        m.stop()


@pytest.fixture(scope="module")
def gateway_factory():
    gateways: list[Gateway] = []

    def make(yaml_text: str, env: dict | None = None, concurrency: int = 2) -> Gateway:
        g = Gateway(yaml_text, env=env, concurrency=concurrency)
        gateways.append(g)
        return g

    make.gateways = gateways
    yield make
    for g in gateways:
        g.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    seen = set()
    for value in item.funcargs.values():
        candidates = []
        if isinstance(value, Gateway):
            candidates = [value]
        elif hasattr(value, "gateways"):
            candidates = list(value.gateways)
        elif isinstance(value, (tuple, list)):
            candidates = [v for v in value if isinstance(v, Gateway)]
        for g in candidates:
            if id(g) in seen:
                continue
            seen.add(id(g))
            report.sections.append((f"Envoy log ({g.envoy_config})", g.log()[-30000:]))
