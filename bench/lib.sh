# Shared by the bench scripts (sourced from the repository's root): the tools a script needs,
# the release build, a work directory removed on exit together with the processes started
# (their pids pushed to `pids`), and free loopback ports.

# require_tools "apt-get install ..." tool...: stops with the install hint when one is missing.
require_tools() {
  local hint="$1"; shift
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is required ($hint)" >&2; exit 1; }
  done
}

cargo build --release --quiet
BIN="$(pwd)/${CARGO_TARGET_DIR:-target}/release/gatehouse"
[ -x "$BIN" ] || BIN="${CARGO_TARGET_DIR:-target}/release/gatehouse"

work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
