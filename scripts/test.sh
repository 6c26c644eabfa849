#!/usr/bin/env bash
# The project's test command: every Rust test (`cargo test --workspace`), then the SDK suite
# (`tests/sdk`: the official openai, anthropic and mcp Python packages against the real binary,
# and the web console in Debian's Chromium through Selenium).
# Prepares what the SDK suite needs first: a virtual environment in .venv-sdk with pinned
# packages from PyPI (made once; reused while the pins match).
#
#   scripts/test.sh
#   GATEHOUSE_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PINS=(openai==3.57.0 anthropic==2.14.0 mcp==2.3.0 pytest==9.2.0 httpx==0.28.1 grpcio==1.76.0 grpcio-health-checking==1.76.0 selenium==4.40.0 schemathesis==4.32.5)
VENV=.venv-sdk
stamp="$VENV/.pins"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "${PINS[*]}" ]; then
  echo "preparing $VENV (${PINS[*]})"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PINS[@]}"
  echo "${PINS[*]}" > "$stamp"
fi

status=0
cargo_log="$(mktemp)"
sdk_log="$(mktemp)"
trap 'rm -f "$cargo_log" "$sdk_log"' EXIT

cargo test --workspace --no-fail-fast 2>&1 | tee "$cargo_log" || status=1
cargo build --quiet --bin gatehouse
export GATEHOUSE_BIN="${CARGO_TARGET_DIR:-target}/debug/gatehouse"
"$VENV/bin/python" -m pytest tests/sdk 2>&1 | tee "$sdk_log" || status=1

cargo_total=$(awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } } END { printf "%d passed, %d failed", p, f }' "$cargo_log")
sdk_passed=$({ grep -oE '[0-9]+ passed' "$sdk_log" || true; } | tail -1 | grep -oE '[0-9]+' || echo 0)
sdk_failed=$({ grep -oE '[0-9]+ (failed|errors?)' "$sdk_log" || true; } | awk '{ s += $1 } END { print s + 0 }')
echo "cargo tests: ${cargo_total}"
echo "sdk tests: ${sdk_passed} passed, ${sdk_failed} failed"
exit "$status"
