"""The public API's OpenAPI document against what the API does: schemathesis (`--checks all`)
generates requests from it against a platform of this test's own (every status code documented
with its body, responses matching their schemas, schema-valid requests accepted and
schema-invalid ones refused, no server error). The seed is fixed so that a failure can be
replayed.

What a JSON schema cannot say is allowed, by the API's own message, and only as a rejected
schema-valid request (ST202): rules that span fields or need more than a pattern (listed in
docs/openapi.md). Anything else fails the test: another check, another message, a server error."""

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

# The API's messages for the rules docs/openapi.md lists as beyond the schemas.
BEYOND_SCHEMAS = [
    r"templateDefinition\.id: must be the template named in template",
    r"an LLM proxy cannot name itself",
    r"providers\[\d+\]\.id: provider '.*' is named twice",
    r"upstreams\[\d+\]\.name: '.*' names two servers",
    r"projectId: is required",
    r"\.tls: applies to https:// URLs only",
    r"\.tls\.(ca|clientCert|clientKey): ",
    r"mcp-authz reads the caller's token",
    r"is not a valid URL|has no host",
]


def schemathesis():
    exe = Path(sys.executable).with_name("schemathesis")
    if not exe.exists():
        pytest.skip("schemathesis is not installed in this environment (scripts/test.sh installs it)")
    return str(exe)


def unexplained(out):
    """Failures of the report that are not a rejected request with a message listed above."""
    section = out.split("FAILURES", 1)[-1].split("SUMMARY", 1)[0]
    blocks = re.split(r"^_+ ([A-Z]+ /\S+) _+$", section, flags=re.MULTILINE)[1:]
    found = []
    for operation, text in zip(blocks[0::2], blocks[1::2]):
        checks = set(re.findall(r"^- (ST\d+)", text, re.MULTILINE))
        messages = re.findall(r'"message":"((?:[^"\\]|\\.)*)"', text)
        explained = checks == {"ST202"} and messages and all(
            any(re.search(p, m) for p in BEYOND_SCHEMAS) for m in messages)
        if not explained:
            found.append(f"{operation}: {sorted(checks)} {messages}")
    return found


def test_schemathesis_finds_nothing_a_schema_could_say():
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
            found = unexplained(out)
            assert not found, "findings beyond docs/openapi.md:\n" + "\n".join(found) + "\n" + out[-20000:]
            assert run.returncode in (0, 1), f"schemathesis failed to run:\n{out[-5000:]}"
        finally:
            platform.terminate()
            platform.wait(timeout=10)
            log.close()
