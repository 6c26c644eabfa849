"""The public API's OpenAPI document against what the API does: schemathesis (`--checks all`)
generates requests from it against a platform of this test's own (every status code documented
with its body, responses matching their schemas, schema-valid requests accepted and
schema-invalid ones refused, no server error). The seed is fixed so that a failure can be
replayed.

What it still finds is cross-field rules a JSON schema does not say (an upstream's `url` or
`urls`, a proxy's `provider` or `providers`, `templateDefinition.id` equal to `template`, a proxy
naming itself, a URL that parses) and model locations of one kind carrying another's field: the
operations below. The test fails when an operation outside this list fails, or on any server
error; docs/openapi.md lists the same."""

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest

from conftest import binary, free_port, wait_until

PASSWORD = "openapi-admin-password"
EXAMPLES = os.environ.get("GATEHOUSE_SCHEMATHESIS_EXAMPLES", "20")

# Operations whose findings are the cross-field rules named above (docs/openapi.md).
KNOWN = {
    f"{method} /api/v1/{collection}{suffix}"
    for collection in ("rest-apis", "llm-providers", "llm-proxies", "mcp-proxies")
    for method, suffix in (("POST", ""), ("PUT", "/{id}"))
} | {"POST /api/v1/llm-provider-templates", "PUT /api/v1/llm-provider-templates/{id}"}


def schemathesis():
    exe = Path(sys.executable).with_name("schemathesis")
    if not exe.exists():
        pytest.skip("schemathesis is not installed in this environment (scripts/test.sh installs it)")
    return str(exe)


def failing_operations(out):
    """`METHOD /path` of each operation in the report's failures section."""
    section = out.split("FAILURES", 1)[-1].split("SUMMARY", 1)[0]
    return set(re.findall(r"^_+ ([A-Z]+ /\S+) _+$", section, re.MULTILINE))


def test_schemathesis_finds_only_the_known_cross_field_rules():
    exe = schemathesis()
    with tempfile.TemporaryDirectory(prefix="gatehouse-openapi-") as d:
        base = f"http://127.0.0.1:{free_port()}"
        log = open(Path(d) / "platform.log", "wb")
        platform = subprocess.Popen(
            [binary(), "platform", "--listen", base.removeprefix("http://"),
             "--database", f"sqlite://{d}/platform.db", "--admin-password", PASSWORD],
            stdout=log, stderr=subprocess.STDOUT, cwd=d, env={**os.environ, "RUST_LOG": "warn"})
        try:
            wait_until("the platform", lambda: httpx.get(base + "/health").status_code == 200)
            token = httpx.post(base + "/api/v1/auth/login",
                               json={"username": "admin", "password": PASSWORD}).json()["token"]
            run = subprocess.run(
                [exe, "run", f"{base}/api/v1/openapi.json", "--checks", "all",
                 "-H", f"Authorization: Bearer {token}", "--max-examples", EXAMPLES,
                 "--workers", "2", "--seed", "1", "--no-color",
                 # Logging out would end the run's own session; logins are throttled by design.
                 "--exclude-path", "/api/v1/auth/logout", "--exclude-path", "/api/v1/auth/login"],
                capture_output=True, text=True, timeout=900, cwd=d)
            out = run.stdout + run.stderr
            assert "SUMMARY" in out, f"schemathesis did not finish:\n{out[-5000:]}"
            print(out[out.rfind("SUMMARY"):])
            assert "Server error" not in out, f"a server error:\n{out[-20000:]}"
            unknown = failing_operations(out) - KNOWN
            assert not unknown, f"new findings in {sorted(unknown)}:\n{out[-20000:]}"
            assert run.returncode in (0, 1), f"schemathesis failed to run:\n{out[-5000:]}"
        finally:
            platform.terminate()
            platform.wait(timeout=10)
            log.close()
