#!/usr/bin/env bash
# Runs the gateway: the local mock providers, then Envoy with the aigw filters
# on CONFIG (`aigw run`). Ctrl-C stops everything this script started.
set -euo pipefail

config="${1:-config/demo.yaml}"
bin="${AIGW_BIN_DIR:-target/tools}"
state="$(mktemp -d "${TMPDIR:-/tmp}/aigw-run.XXXXXX")"
pids=()

cleanup() {
    trap - EXIT INT TERM
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$state"
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

# Fail early, with the reason, on a config error (warnings come from `aigw run`).
if ! "$bin/aigw" validate "$config" --no-envoy >/dev/null 2>"$state/validate.err"; then
    cat "$state/validate.err" >&2
    exit 1
fi

start_mock() { # name port
    "$bin/mock-provider" --listen "127.0.0.1:$2" --name "$1" --port-file "$state/$1.port" &
    pids+=($!)
}
mocks=(mock-openai mock-deepseek mock-anthropic mock-gemini)
start_mock mock-openai "${MOCK_OPENAI_PORT:-9101}"
start_mock mock-deepseek "${MOCK_DEEPSEEK_PORT:-9102}"
start_mock mock-anthropic "${MOCK_ANTHROPIC_PORT:-9103}"
start_mock mock-gemini "${MOCK_GEMINI_PORT:-9104}"

# Wait until every mock is listening (each writes its port file once bound).
for name in "${mocks[@]}"; do
    for _ in $(seq 100); do
        [[ -s "$state/$name.port" ]] && break
        for pid in "${pids[@]}"; do
            if ! kill -0 "$pid" 2>/dev/null; then
                echo "run: a mock provider could not start (is its port already in use?)" >&2
                exit 1
            fi
        done
        sleep 0.1
    done
done

# Not exec: the trap must run to stop the mocks when Envoy exits.
# ENVOY_ARGS: extra Envoy flags, e.g. "--component-log-level wasm:debug".
# shellcheck disable=SC2086
"$bin/aigw" run "$config" -- ${ENVOY_ARGS:-} &
pids+=($!)
wait "${pids[-1]}"
