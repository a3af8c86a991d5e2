"""System containers (`[[container]]`) against a real Docker engine, through
`ecs-boot containers reconcile|stop`.

No registry is reachable: the only image is built here with `docker import` from a static busybox
(Debian's busybox-static) and tagged under the loopback registry `127.0.0.1:1`, so even a pull by
mistake never leaves this machine. Every test runs in its own scope (the hidden `--scope` sets the
value of the `io.ecs-boot.managed` label), so tests never see each other's containers, nor those of
a simulated instance's ecs-boot on the same engine; names are unique per test, and every container
a test made is removed at teardown.
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import threading
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

IMAGE = "127.0.0.1:1/ecs-boot-test/busybox:1"
LOCAL_TAG = "ecs-boot-test/busybox:1"
MISSING = "127.0.0.1:1/ecs-boot-test/missing:1"
TEST_LABEL = "io.ecs-boot.test"
# Like a real daemon it exits on SIGTERM (busybox sleep as PID 1 would ignore it until SIGKILL).
SLEEP = '["/bin/busybox", "sh", "-c", "trap \'exit 0\' TERM; sleep 3600 & wait"]'
HEADER = '[docker]\nengine_wait = "20s"\n'


def docker(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check,
                          timeout=timeout)


def engine_problem() -> str | None:
    if not shutil.which("docker"):
        return "the docker CLI is not installed (.ci/run installs docker.io)"
    try:
        out = docker("info", "--format", "{{.ServerVersion}}", check=False, timeout=20)
    except subprocess.TimeoutExpired:
        return "`docker info` did not answer in 20 s"
    if out.returncode != 0:
        return f"no Docker engine reachable ({out.stderr.strip()[:200]}); .ci/run starts one"
    return None


@pytest.fixture(scope="session")
def busybox_image():
    """The test image, built once: a static busybox with its applets linked into /bin."""
    problem = engine_problem()
    if problem:
        pytest.skip(problem)
    if docker("image", "inspect", IMAGE, check=False).returncode == 0:
        yield IMAGE
        return
    busybox = shutil.which("busybox") or "/bin/busybox"
    if not Path(busybox).is_file() or _is_dynamic(busybox):
        pytest.skip("needs a static busybox: apt-get install -y busybox-static")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "bin").mkdir()
        (root / "tmp").mkdir()
        shutil.copy(busybox, root / "bin/busybox")
        applets = subprocess.run([busybox, "--list"], capture_output=True, text=True,
                                 check=True).stdout.split()
        for applet in applets:
            if applet != "busybox":
                (root / "bin" / applet).symlink_to("busybox")
        tar = subprocess.run(["tar", "-C", str(root), "-c", "."], capture_output=True,
                             check=True).stdout
        subprocess.run(["docker", "import", "--change", f"LABEL {TEST_LABEL}=image",
                        "--change", "ENV PATH=/bin", "-", IMAGE],
                       input=tar, capture_output=True, check=True)
    docker("tag", IMAGE, LOCAL_TAG)
    yield IMAGE
    docker("rmi", IMAGE, LOCAL_TAG, check=False)


def _is_dynamic(path: str) -> bool:
    out = subprocess.run(["ldd", path], capture_output=True, text=True)
    return "not a dynamic executable" not in (out.stdout + out.stderr)


class Containers:
    """One test's view: its scope, unique names, and `ecs-boot containers ...` runs."""

    def __init__(self, ecs_boot):
        self.ecs_boot = ecs_boot
        tag = uuid.uuid4().hex[:8]
        self.scope = f"test-{tag}"
        self.prefix = f"ebt-{tag}-"
        self.env = {"DOCKER_HOST": os.environ["DOCKER_HOST"]} if os.environ.get(
            "DOCKER_HOST") else None

    def name(self, short: str) -> str:
        return self.prefix + short

    def spec(self, short: str, *, image: str = IMAGE, command: str = SLEEP, **fields) -> str:
        lines = ["[[container]]", f'name = "{self.name(short)}"', f'image = "{image}"',
                 f"command = {command}"]
        for key, value in fields.items():
            lines.append(f"{key} = {value}")
        return "\n".join(lines) + "\n"

    def run(self, *args: str, env: dict | None = None, timeout: float = 150):
        return self.ecs_boot.run("containers", *args, "--scope", self.scope,
                                 env={**(self.env or {}), **(env or {})}, timeout=timeout)

    def reconcile(self, *specs: str, header: str = HEADER, env: dict | None = None):
        """Writes the config, reconciles; returns (process, records by name)."""
        self.ecs_boot.write_config(header + "".join(specs))
        t0 = time.monotonic()
        proc = self.run("reconcile", "--json", env=env)
        proc.elapsed = time.monotonic() - t0
        records = {}
        if proc.stdout.strip():
            records = {r["name"]: r for r in json.loads(proc.stdout)}
        return proc, records

    def inspect(self, short_or_id: str) -> dict | None:
        ref = short_or_id if short_or_id.startswith(self.prefix) or len(short_or_id) == 64 \
            else self.name(short_or_id)
        out = docker("inspect", ref, check=False)
        return json.loads(out.stdout)[0] if out.returncode == 0 else None

    def wait_for(self, short: str, predicate, timeout: float = 20) -> dict:
        end = time.monotonic() + timeout
        info = None
        while time.monotonic() < end:
            info = self.inspect(short)
            if info and predicate(info):
                return info
            time.sleep(0.2)
        raise AssertionError(f"{short}: condition not met in {timeout}s; last state "
                             f"{(info or {}).get('State')}")

    def cleanup(self) -> None:
        for label in (f"io.ecs-boot.managed={self.scope}", f"{TEST_LABEL}={self.scope}"):
            ids = docker("ps", "-aq", "--filter", f"label={label}", check=False).stdout.split()
            if ids:
                docker("rm", "-f", *ids, check=False)


@pytest.fixture
def cx(ecs_boot, busybox_image):
    c = Containers(ecs_boot)
    yield c
    c.cleanup()


def ok(proc) -> None:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"


# --- create, keep, replace, remove -----------------------------------------------------------

def test_create_then_rerun_keeps_the_same_container(cx):
    spec = cx.spec("agent", pull='"if-not-present"', memory_mib=32, env='{ MODE = "test" }',
                   labels='{ team = "obs" }', log_driver='"json-file"',
                   log_options='{ max-size = "1m" }')
    proc, recs = cx.reconcile(spec)
    ok(proc)
    rec = recs[cx.name("agent")]
    assert rec["action"] == "created" and rec["state"] == "running", rec
    assert rec["image"] == IMAGE and rec["digest"].startswith("sha256:"), rec
    info = cx.inspect("agent")
    assert info["Id"] == rec["id"]
    labels = info["Config"]["Labels"]
    assert labels["io.ecs-boot.managed"] == cx.scope
    assert labels["io.ecs-boot.name"] == cx.name("agent")
    assert len(labels["io.ecs-boot.config-hash"]) == 64
    assert labels["team"] == "obs"
    assert "MODE=test" in info["Config"]["Env"]
    host = info["HostConfig"]
    assert host["NetworkMode"] == "host"
    assert host["RestartPolicy"]["Name"] == "unless-stopped"
    assert host["Memory"] == 32 * 1024 * 1024
    assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "1m"}}

    again, recs = cx.reconcile(spec)
    ok(again)
    assert recs[cx.name("agent")]["action"] == "unchanged"
    assert recs[cx.name("agent")]["id"] == rec["id"]
    assert cx.inspect("agent")["State"]["StartedAt"] == info["State"]["StartedAt"]


def test_config_change_replaces_the_container(cx):
    proc, recs = cx.reconcile(cx.spec("agent", env='{ LEVEL = "1" }'))
    ok(proc)
    old = recs[cx.name("agent")]["id"]
    proc, recs = cx.reconcile(cx.spec("agent", env='{ LEVEL = "2" }'))
    ok(proc)
    rec = recs[cx.name("agent")]
    assert rec["action"] == "replaced" and rec["id"] != old, rec
    assert cx.inspect(old) is None, "the old container is removed"
    assert "LEVEL=2" in cx.inspect("agent")["Config"]["Env"]
    # Fields that only change how ecs-boot treats a container do not restart it.
    proc, recs = cx.reconcile(cx.spec("agent", env='{ LEVEL = "2" }', essential="true",
                                      min_uptime='"1s"'))
    ok(proc)
    assert recs[cx.name("agent")]["action"] == "unchanged"
    assert recs[cx.name("agent")]["id"] == rec["id"]


def test_container_removed_from_config_is_removed(cx):
    proc, recs = cx.reconcile(cx.spec("keep"), cx.spec("drop"))
    ok(proc)
    dropped = recs[cx.name("drop")]["id"]
    proc, recs = cx.reconcile(cx.spec("keep"))
    ok(proc)
    assert recs[cx.name("keep")]["action"] == "unchanged"
    assert recs[cx.name("drop")]["action"] == "removed", recs
    assert cx.inspect(dropped) is None


# --- keeping containers up --------------------------------------------------------------------

def test_crashed_container_comes_back_and_a_stopped_one_is_started(cx):
    # Exits with code 3 when /tmp/die appears, like a crash; the restart policy brings it back.
    crash_on_signal = ('["/bin/busybox", "sh", "-c", '
                       '"while [ ! -e /tmp/die ]; do sleep 0.2; done; rm /tmp/die; exit 3"]')
    proc, recs = cx.reconcile(cx.spec("agent", command=crash_on_signal))
    ok(proc)
    cid = recs[cx.name("agent")]["id"]
    docker("exec", cid, "touch", "/tmp/die")
    info = cx.wait_for("agent", lambda i: i["RestartCount"] >= 1 and i["State"]["Running"])
    assert info["Id"] == cid

    proc, recs = cx.reconcile(cx.spec("agent", command=crash_on_signal))
    ok(proc)
    assert recs[cx.name("agent")]["action"] == "unchanged"
    assert recs[cx.name("agent")]["restart_count"] >= 1

    # `docker stop` disables the restart policy; the next reconcile starts it again.
    docker("stop", "-t", "1", cid)
    proc, recs = cx.reconcile(cx.spec("agent", command=crash_on_signal))
    ok(proc)
    rec = recs[cx.name("agent")]
    assert rec["action"] == "started" and rec["id"] == cid and rec["state"] == "running", rec


def test_stop_stops_only_our_containers_and_reconcile_brings_them_back(cx):
    proc, recs = cx.reconcile(cx.spec("agent"))
    ok(proc)
    foreign = docker("run", "-d", "--name", cx.name("foreign"), "--label",
                     f"{TEST_LABEL}={cx.scope}", IMAGE, "/bin/busybox", "sleep", "3600"
                     ).stdout.strip()
    ok(cx.run("stop"))
    assert cx.inspect("agent")["State"]["Status"] == "exited"
    assert cx.inspect(foreign)["State"]["Running"]
    proc, recs = cx.reconcile(cx.spec("agent"))
    ok(proc)
    assert recs[cx.name("agent")]["action"] == "started"


def test_foreign_containers_are_never_touched(cx):
    def run_foreign(short, *labels):
        args = ["run", "-d", "--name", cx.name(short), "--label", f"{TEST_LABEL}={cx.scope}"]
        for label in labels:
            args += ["--label", label]
        return docker(*args, IMAGE, "/bin/busybox", "sleep", "3600").stdout.strip()

    unrelated = run_foreign("task")  # an ECS task, the ECS agent, anything else
    other_scope = run_foreign("other", "io.ecs-boot.managed=someone-else",
                              "io.ecs-boot.config-hash=x")
    squatter = run_foreign("agent")  # holds the name of a configured container
    before = {i: cx.inspect(i)["State"]["StartedAt"] for i in (unrelated, other_scope, squatter)}

    proc, recs = cx.reconcile(cx.spec("agent"), cx.spec("fine"))
    ok(proc)  # not essential: the boot goes on
    rec = recs[cx.name("agent")]
    assert "did not create" in rec["last_error"], rec
    assert recs[cx.name("fine")]["state"] == "running"
    assert set(recs) == {cx.name("agent"), cx.name("fine")}, "nothing else is reported"
    for cid, started in before.items():
        info = cx.inspect(cid)
        assert info is not None and info["State"]["Running"], cid
        assert info["State"]["StartedAt"] == started, "not restarted"
    assert cx.inspect("agent")["Id"] == squatter

    # The same with the squatted name essential: the boot fails, the squatter still stands.
    proc, _ = cx.reconcile(cx.spec("agent", essential="true"))
    assert proc.returncode == 1
    assert cx.name("agent") in proc.stderr and "did not create" in proc.stderr
    assert cx.inspect("agent")["Id"] == squatter


# --- registry credentials --------------------------------------------------------------------

class FakeRegistry:
    """A registry on loopback that asks for Basic auth, records what it gets, and knows no image."""

    def __init__(self):
        self.auth_headers: list[str] = []
        registry = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server naming)
                auth = self.headers.get("Authorization")
                if not auth:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="ecs-boot-test"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                registry.auth_headers.append(auth)
                body = b"{}" if self.path == "/v2/" else json.dumps({"errors": [
                    {"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]}).encode()
                self.send_response(200 if self.path == "/v2/" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Docker-Distribution-API-Version", "registry/2.0")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_HEAD = do_GET

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def test_pull_uses_the_boot_path_registry_credentials(cx, moto):
    registry = FakeRegistry()
    try:
        login = base64.b64encode(b"bob:s3cr3t").decode()
        s3 = moto.client("s3")
        s3.create_bucket(Bucket="creds")
        s3.put_object(Bucket="creds", Key="docker.json", Body=json.dumps(
            {"auths": {registry.host: {"auth": login}}}).encode())
        image = f"{registry.host}/team/agent:1"
        cx.ecs_boot.write_config(HEADER + cx.spec("agent", image=image, essential="true"))
        proc = cx.run("reconcile", "--registry-auth", "s3://creds/docker.json")
        assert proc.returncode == 1, proc.stdout + proc.stderr
        # The registry saw exactly the stored login; "manifest unknown" is not retried.
        assert registry.auth_headers and set(registry.auth_headers) == {f"Basic {login}"}
        assert "after 1 attempt:" in proc.stderr and "manifest unknown" in proc.stderr, \
            proc.stderr
        assert "s3cr3t" not in proc.stdout + proc.stderr
    finally:
        registry.stop()


# --- essential containers and failures ---------------------------------------------------------

def test_essential_image_missing_with_pull_never_fails_naming_the_image(cx):
    proc, recs = cx.reconcile(cx.spec("side"),
                              cx.spec("agent", image=MISSING, pull='"never"', essential="true"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert cx.name("agent") in proc.stderr and MISSING in proc.stderr, proc.stderr
    assert "never" in proc.stderr
    rec = recs[cx.name("agent")]
    assert rec["essential"] and rec["state"] == "missing" and MISSING in rec["last_error"]
    # The other container is still brought up and reported.
    assert recs[cx.name("side")]["state"] == "running"


def test_non_essential_failure_is_reported_and_the_boot_goes_on(cx):
    proc, recs = cx.reconcile(cx.spec("agent", image=MISSING, pull='"never"'))
    ok(proc)
    rec = recs[cx.name("agent")]
    assert not rec["essential"] and MISSING in rec["last_error"], rec
    assert "error:" in cx.run("reconcile").stdout, "the table shows the error too"


def test_pull_from_unreachable_registry_retries_a_bounded_number_of_times(cx):
    image = "127.0.0.1:1/ecs-boot-test/unreachable:1"  # loopback only: nothing leaves this host
    proc, recs = cx.reconcile(cx.spec("agent", image=image, pull='"always"', essential="true"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert image in proc.stderr and "after 4 attempts" in proc.stderr, proc.stderr
    assert "connection refused" in proc.stderr.lower(), proc.stderr
    assert proc.elapsed < 30, f"bounded: {proc.elapsed:.1f}s"
    assert cx.inspect("agent") is None


def test_pull_always_with_a_local_copy_falls_back_to_it(cx):
    proc, recs = cx.reconcile(cx.spec("agent", pull='"always"'))
    ok(proc)  # the registry 127.0.0.1:1 is down, the image is here
    rec = recs[cx.name("agent")]
    assert rec["state"] == "running" and "local copy" in rec["last_error"], rec


def test_essential_counts_up_only_after_min_uptime(cx):
    proc, recs = cx.reconcile(cx.spec("agent", essential="true", min_uptime='"2s"'))
    ok(proc)
    assert proc.elapsed >= 2, proc.elapsed
    assert recs[cx.name("agent")]["state"] == "running"


def test_crash_looping_essential_container_fails_the_boot(cx):
    crash = '["/bin/busybox", "sh", "-c", "exit 7"]'
    proc, recs = cx.reconcile(cx.spec("agent", command=crash, essential="true",
                                      min_uptime='"3s"'))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "crash loop" in proc.stderr and cx.name("agent") in proc.stderr, proc.stderr
    assert "exit code 7" in proc.stderr
    assert proc.elapsed < 30


def test_essential_container_that_exits_before_min_uptime_fails(cx):
    short = '["/bin/busybox", "sh", "-c", "sleep 1; exit 2"]'
    proc, _ = cx.reconcile(cx.spec("agent", command=short, essential="true", restart='"no"',
                                   min_uptime='"5s"'))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "exited with code 2" in proc.stderr, proc.stderr


def test_engine_wait_has_a_deadline_and_docker_host_is_honoured(cx, tmp_path):
    header = '[docker]\nengine_wait = "2s"\n'
    absent = f"unix://{tmp_path}/no-docker.sock"
    proc, recs = cx.reconcile(cx.spec("agent", essential="true"), header=header,
                              env={"DOCKER_HOST": absent})
    assert proc.returncode == 1
    assert absent in proc.stderr and "did not answer within 2s" in proc.stderr, proc.stderr
    assert proc.elapsed < 15
    assert recs[cx.name("agent")]["state"] == "unknown"


# --- memory reserved from ECS ------------------------------------------------------------------

def test_container_memory_is_reserved_from_ecs(imds, ecs_boot):
    imds.set_tags({"ecs-boot:cluster": "prod-web"})
    ecs_boot.write_config(
        '[tags]\nwait = "4s"\n[imds]\ntimeout = "5s"\n'
        '[ecs.settings]\nECS_RESERVED_MEMORY = "100"\n'
        f'[[container]]\nname = "cwagent"\nimage = "{IMAGE}"\nmemory_mib = 128\n'
        f'[[container]]\nname = "shipper"\nimage = "{IMAGE}"\nmemory_mib = 64\n'
        f'[[container]]\nname = "exporter"\nimage = "{IMAGE}"\n')
    out = ecs_boot.run("render", timeout=60)
    assert out.returncode == 0, out.stderr
    assert "ECS_RESERVED_MEMORY=292\n" in out.stdout, out.stdout
