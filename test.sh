#!/usr/bin/env bash
# Every test, Rust and Python: the README's test command (CI runs it too).
#   1. cargo test --release --locked (the library, the CLI, the doc tests);
#   2. the Python package built and installed into a venv
#      ($POINTPIPE_VENV, default target/pyvenv) with `pip install ./python`,
#      then pytest python/tests (which runs target/release/pointpipe).
# Python tests that need ../shared/data fail (not skip) when CI=true.
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

cargo test --release --locked
cargo build --release --locked --bin pointpipe

VENV="${POINTPIPE_VENV:-$CARGO_TARGET_DIR/pyvenv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
export PATH="$VENV/bin:$PATH"  # maturin, for the --no-build-isolation build
"$PY" -m pip install -q maturin numpy scipy pytest
# Optional cross-checks: Open3D's normals (skipped when not importable).
"$PY" -m pip install -q open3d 2>/dev/null || echo "open3d not installable here: its normals cross-check will be skipped"
# Build with the same target directory as cargo (shared dependencies);
# no build isolation: maturin comes from the venv.
"$PY" -m pip install -q --no-build-isolation --force-reinstall --no-deps ./python
"$PY" -m pytest -q -p no:cacheprovider python/tests
