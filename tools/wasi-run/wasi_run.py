#!/usr/bin/env python3
"""Runs a wasm32-wasip1 command module under wasmtime: the cargo test runner
for the core crate compiled to wasm (CARGO_TARGET_WASM32_WASIP1_RUNNER).

    wasi_run.py MODULE.wasm [ARGS...]

Stdout and stderr are the process's own; the exit code is the module's.
"""
import sys

from wasmtime import Config, Engine, ExitTrap, Linker, Module, Store, WasiConfig


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    path = sys.argv[1]
    engine = Engine(Config())
    store = Store(engine)
    wasi = WasiConfig()
    wasi.argv = [path] + sys.argv[2:]
    wasi.inherit_stdout()
    wasi.inherit_stderr()
    wasi.inherit_env()
    store.set_wasi(wasi)
    linker = Linker(engine)
    linker.define_wasi()
    module = Module.from_file(engine, path)
    instance = linker.instantiate(store, module)
    start = instance.exports(store)["_start"]
    try:
        start(store)
    except ExitTrap as e:
        return e.code
    return 0


if __name__ == "__main__":
    sys.exit(main())
