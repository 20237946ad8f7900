#!/usr/bin/env bash
# Runs the gateway: the local mock providers, then Envoy with the aigw filters
# on CONFIG (`aigw run`). Ctrl-C stops everything this script started.
set -euo pipefail

config="${1:-config/demo.yaml}"
bin="${AIGW_BIN_DIR:-target/tools}"
pids=()

cleanup() {
    trap - EXIT INT TERM
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

"$bin/mock-provider" --listen 127.0.0.1:9101 --name mock-openai &
pids+=($!)
"$bin/mock-provider" --listen 127.0.0.1:9102 --name mock-deepseek &
pids+=($!)

"$bin/aigw" validate "$config" --no-envoy >/dev/null
# Not exec: the trap must run to stop the mocks when Envoy exits.
"$bin/aigw" run "$config" &
pids+=($!)
wait "${pids[-1]}"
