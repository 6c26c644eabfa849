"""A control plane and a connected gateway, the real `gatehouse` binary on free ports, shared by
the tests of one session; each test deploys its own artifacts under unique names."""

import itertools
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
ADMIN_PASSWORD = "sdk-admin-password"


def binary():
    if os.environ.get("GATEHOUSE_BIN"):
        return os.path.abspath(os.environ["GATEHOUSE_BIN"])
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    return str(target / "debug" / "gatehouse")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what, check, timeout=30.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as e:  # noqa: BLE001 - polled until the deadline
            last = e
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what} (last error: {last})")


class Stack:
    """The processes and an admin session of the control plane."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="gatehouse-sdk-"))
        self.logs = []
        self.procs = []
        self.platform = f"http://127.0.0.1:{free_port()}"
        self.spawn("platform", ["platform", "--listen", self.platform.removeprefix("http://"),
                                "--database", f"sqlite://{self.dir / 'platform.db'}",
                                "--admin-password", ADMIN_PASSWORD])
        wait_until("the platform", lambda: httpx.get(self.platform + "/health").status_code == 200)
        token = httpx.post(self.platform + "/api/v1/auth/login",
                           json={"username": "admin", "password": ADMIN_PASSWORD}).json()["token"]
        self.api = httpx.Client(base_url=self.platform + "/api/v1", headers={"authorization": f"Bearer {token}"},
                                timeout=30)
        self.gateway, self.gateway_admin = self.add_gateway("edge")
        self.second = None

    def add_gateway(self, name):
        """Registers gateway `name`, starts it connected, and returns its traffic and admin URLs."""
        self.must(self.api.post("/gateways", json={"id": name, "displayName": name}), 201)
        token = self.must(self.api.post(f"/gateways/{name}/tokens", json={}), 201)["token"]
        traffic, admin = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
        self.spawn(name, ["gateway", "--listen", traffic.removeprefix("http://"),
                          "--admin-listen", admin.removeprefix("http://"),
                          "--admin-password", "gw-admin", "--data-dir", str(self.dir / name),
                          "--control-plane", self.platform, "--token", token])
        wait_until(f"gateway {name}", lambda: httpx.get(traffic + "/_gateway-health/ready").status_code == 200)
        return traffic, admin

    def second_gateway(self):
        """A second gateway of the same organization (started on first use)."""
        if self.second is None:
            self.second = self.add_gateway("edge-2")[0]
        return self.second

    def spawn(self, name, args):
        log = open(self.dir / f"{name}.log", "wb")
        self.logs.append(log)
        self.procs.append(subprocess.Popen([binary(), *args], stdout=log, stderr=subprocess.STDOUT,
                                           cwd=self.dir, env={**os.environ, "RUST_LOG": "warn"}))

    @staticmethod
    def must(response, status):
        assert response.status_code == status, f"{response.request.method} {response.request.url}: {response.status_code} {response.text}"
        return response.json() if response.content else None

    def create(self, collection, body):
        if collection != "llm-providers":
            body.setdefault("projectId", "default")
        return self.must(self.api.post(f"/{collection}", json=body), 201)

    def deploy(self, collection, handle, ready_path=None, gateway="edge", base=None):
        """Deploys to `gateway` and waits until it routes `ready_path` to it: any answer but the
        gateway's own 404 for unrouted paths and its 503 for artifacts it cannot serve yet."""
        self.must(self.api.post(f"/{collection}/{handle}/deployments", json={"gatewayId": gateway}), 201)
        base = base or self.gateway
        if ready_path:
            def served():
                r = httpx.get(base + ready_path)
                return r.status_code != 503 and r.text != '{"error":"Not Found"}'
            wait_until(f"{collection}/{handle} on the gateway", served)

    def metrics(self):
        text = httpx.get(self.gateway_admin + "/metrics", auth=("admin", "gw-admin")).text
        return text

    def metric(self, name, **labels):
        """The sum of the series `name` whose labels include `labels`."""
        total = 0.0
        for line in self.metrics().splitlines():
            if not line.startswith(name + "{"):
                continue
            if all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def metric_at(self, expected, name, **labels):
        """The series' value once it equals `expected` (polled for up to 5 s: an exchange is
        recorded when the gateway has read the provider's whole answer, which may be just after
        the client stopped reading), else its last value."""
        deadline = time.monotonic() + 5
        while True:
            value = self.metric(name, **labels)
            if value == expected or time.monotonic() > deadline:
                return value
            time.sleep(0.05)

    def close(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        for log in self.logs:
            log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def stack():
    s = Stack()
    yield s
    s.close()


_names = itertools.count(1)


@pytest.fixture
def unique(request):
    """A handle no other test uses."""
    base = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:30]
    return f"{base}-{next(_names)}"
