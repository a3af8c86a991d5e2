"""SSM Run Command that really runs, for `ecs-boot fleet status` against simulated instances.

moto accepts SendCommand but runs nothing: every invocation is `Success` with empty output
(docs/aws-facts.md §10), and it has no DescribeInstanceInformation. Here a simulated instance is an
instance id mapped to a root directory (`register()`, or `POST /_harness/ssm/instances`):

- DescribeInstanceInformation lists registered instances, `PingStatus` `Online` or
  `ConnectionLost` (registered with `online: false`). Unregistered ids are not managed nodes.
- SendCommand with `InstanceIds` naming an unregistered id fails as AWS does:
  `InvalidInstanceId` "Instances [[i-...]] not in a valid state for account ...", and sends to
  nobody. (`Targets` simply skip unregistered instances.) A `vanishing` instance is listed by
  DescribeInstanceInformation but refused so: it went away between the two calls.
- For an online instance the invocation starts `Pending`, goes `InProgress` (after the
  instance's `delay` seconds), and the AWS-RunShellScript `commands` run under bash in a worker
  pool with `ecs-boot` replaced by `$ECS_BOOT_BIN --root <root>`. Exit 0 gives `Success`, any
  other `Failed` with that `ResponseCode`; running past `executionTimeout` gives `TimedOut` /
  `ExecutionTimedOut`. Output is cut as SSM cuts it (24,000 / 8,000 characters); with
  `OutputS3BucketName` the whole of it is also put in moto's S3 under AWS's key layout and
  `StandardOutputUrl` points there.
- ListCommandInvocations (missing from moto) lists statuses, `Details` with output cut at
  2,500 characters.
- For an offline instance the invocation stays `Pending` until the command's `TimeoutSeconds`
  pass, then reads `TimedOut` / `DeliveryTimedOut`, as an undelivered command does in AWS.

The moto patches run in the server's interpreter; `install()` is idempotent. The registry is
emptied whenever the harness resets.
"""

from __future__ import annotations

import datetime
import os
import re
import shlex
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult
from moto.s3.models import s3_backends
from moto.ssm.models import Command, SimpleSystemManagerBackend
from moto.ssm.responses import SimpleSystemManagerResponse

from . import admin, lifecycle

STDOUT_LIMIT = 24_000
STDERR_LIMIT = 8_000
LIST_OUTPUT_LIMIT = 2_500
PLUGIN = "aws:runShellScript"
REPO_ROOT = Path(__file__).resolve().parents[2]
# Enough workers that 500 instances finish in seconds; each mostly waits on a short process.
WORKERS = int(os.environ.get("HARNESS_SSM_WORKERS", "16"))
# `ecs-boot` where a shell command word starts: line start, or after ; & | ( and spaces.
_ECS_BOOT_WORD = re.compile(r"(^|[;&|(]\s*|\s&&\s*)ecs-boot(?=\s|$)", re.MULTILINE)


@dataclass
class SimInstance:
    instance_id: str
    root: str
    online: bool = True
    delay: float = 0.0  # seconds between delivery and the command starting
    binary: str = ""
    # Listed by DescribeInstanceInformation but refused by SendCommand: the instance went away
    # between the two calls (scale-in, a stopped agent).
    vanishing: bool = False

    def describe(self) -> dict:
        return asdict(self)


_registry: dict[str, SimInstance] = {}
_registry_lock = threading.Lock()
_pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="ssm-sim")
# Set on reset: delayed invocations of the previous test give up instead of running.
_generation = threading.Event()
_installed = False


def default_binary() -> str:
    binary = os.environ.get("ECS_BOOT_BIN") or REPO_ROOT / "target/debug/ecs-boot"
    return str(Path(binary).resolve())


def register(instance_id: str, root, online: bool = True, delay: float = 0.0,
             binary: str | None = None, vanishing: bool = False) -> SimInstance:
    """Make `instance_id` a managed node whose commands run against `root` (re-register to
    change it, e.g. to take it offline)."""
    sim = SimInstance(instance_id, str(root), bool(online), float(delay),
                      binary or default_binary(), bool(vanishing))
    with _registry_lock:
        _registry[instance_id] = sim
    return sim


def instances() -> list[dict]:
    with _registry_lock:
        return [s.describe() for s in _registry.values()]


def reset() -> None:
    global _generation
    with _registry_lock:
        _registry.clear()
        _generation.set()
        _generation = threading.Event()


def _lookup(instance_id: str) -> SimInstance | None:
    with _registry_lock:
        return _registry.get(instance_id)


# --- SSM API ----------------------------------------------------------------------------------


class InvalidInstanceId(ServiceException):
    def __init__(self, message: str):
        super().__init__("InvalidInstanceId", message)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def describe_instance_information(self):
    wanted: set[str] | None = None
    for f in self._get_param("Filters") or []:
        if f.get("Key") == "InstanceIds":
            wanted = set(f.get("Values") or [])
    for f in self._get_param("InstanceInformationFilterList") or []:
        if f.get("key") == "InstanceIds":
            wanted = set(f.get("valueSet") or [])
    with _registry_lock:
        sims = sorted((s for s in _registry.values() if wanted is None or s.instance_id in wanted),
                      key=lambda s: s.instance_id)
    start = int(self._get_param("NextToken") or 0)
    size = int(self._get_param("MaxResults") or 50)
    page = sims[start:start + size]
    now = _now()
    body = {"InstanceInformationList": [{
        "InstanceId": s.instance_id,
        "PingStatus": "Online" if s.online else "ConnectionLost",
        "LastPingDateTime": now if s.online else now - datetime.timedelta(hours=2),
        "AgentVersion": "3.3.0.0",
        "IsLatestVersion": True,
        "PlatformType": "Linux",
        "PlatformName": "Amazon Linux",
        "ResourceType": "EC2Instance",
    } for s in page]}
    if start + size < len(sims):
        body["NextToken"] = str(start + size)
    return ActionResult(body)


def list_command_invocations(self):
    """Statuses of a command's invocations; with Details, plugin output cut at 2,500 characters
    as AWS cuts it. moto 5.2.1 has no ListCommandInvocations."""
    command_id, instance_id = self._get_param("CommandId"), self._get_param("InstanceId")
    backend = self.ssm_backend
    commands = [backend.get_command_by_id(command_id)] if command_id else backend._commands
    rows = [(c, c.get_invocation(i["InstanceId"], None)) for c in commands for i in c.invocations
            if instance_id in (None, i["InstanceId"])]
    start = int(self._get_param("NextToken") or 0)
    size = int(self._get_param("MaxResults") or 50)
    details = bool(self._get_param("Details"))
    body = {"CommandInvocations": [{
        "CommandId": c.command_id, "InstanceId": inv["InstanceId"], "Comment": c.comment,
        "DocumentName": c.document_name, "RequestedDateTime": c.requested_date_time,
        "Status": inv["Status"], "StatusDetails": inv["StatusDetails"],
        "StandardOutputUrl": inv.get("StandardOutputUrl", ""),
        "StandardErrorUrl": inv.get("StandardErrorUrl", ""),
        **({"CommandPlugins": [{
            "Name": PLUGIN, "Status": inv["Status"], "StatusDetails": inv["StatusDetails"],
            "ResponseCode": inv["ResponseCode"],
            "Output": inv["StandardOutputContent"][:LIST_OUTPUT_LIMIT]}]} if details else {}),
    } for c, inv in rows[start:start + size]]}
    if start + size < len(rows):
        body["NextToken"] = str(start + size)
    return ActionResult(body)


def _wrap_send_command(original):
    def send_command(self, **kwargs):
        unknown = [i for i in kwargs.get("instance_ids") or []
                   if _lookup(i) is None or _lookup(i).vanishing]
        if unknown:
            raise InvalidInstanceId(
                f"Instances [[{', '.join(unknown)}]] not in a valid state for account "
                f"{self.account_id}")
        # moto resolves an empty Targets list to every EC2 instance (and extends the caller's
        # InstanceIds list in place): only the ids named count then.
        named = None if kwargs.get("targets") else set(kwargs.get("instance_ids") or [])
        command = original(self, **kwargs)
        command.status = "InProgress"
        kept = []
        for invocation in command.invocations:
            sim = _lookup(invocation["InstanceId"])
            if sim is None:  # reached through Targets: AWS sends only to managed nodes
                continue
            if named is not None and invocation["InstanceId"] not in named:
                continue
            invocation.update(Status="Pending", StatusDetails="Pending", ResponseCode=-1,
                              StandardOutputContent="", StandardErrorContent="",
                              ExecutionStartDateTime="", ExecutionEndDateTime="",
                              ExecutionElapsedTime="")
            kept.append(invocation)
            if sim.online:
                _pool.submit(_execute, command, invocation, sim, _generation)
        command.invocations = kept
        command.instance_ids = [i["InstanceId"] for i in kept]
        command.target_count = len(kept)
        command.completed_count = 0
        return command

    return send_command


def _wrap_get_invocation(original):
    def get_invocation(self, instance_id, plugin_name):
        invocation = original(self, instance_id, plugin_name)
        expires = self.expires_after
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=datetime.timezone.utc)
        if invocation["Status"] == "Pending" and _now() > expires:
            invocation.update(Status="TimedOut", StatusDetails="DeliveryTimedOut")
        return invocation

    return get_invocation


def rewrite(script: str, sim: SimInstance) -> str:
    """The script with each `ecs-boot` command word aimed at the instance's binary and root."""
    target = f"{shlex.quote(sim.binary)} --root {shlex.quote(sim.root)}"
    return _ECS_BOOT_WORD.sub(lambda m: m.group(1) + target, script)


# A script that is one plain `ecs-boot` command (what `ecs-boot-fleet status` sends): no shell
# syntax in it, so it runs without bash, one exec instead of two (thousands of instances per run).
_PLAIN_ECS_BOOT = re.compile(r"^\s*ecs-boot(\s+[-\w=.]+)*\s*$")


def argv_of(script: str, sim: SimInstance) -> list[str]:
    if _PLAIN_ECS_BOOT.match(script) and os.access(sim.binary, os.X_OK):
        return [sim.binary, "--root", sim.root, *script.split()[1:]]
    return ["bash", "-c", rewrite(script, sim)]


def _execute(command: Command, invocation: dict, sim: SimInstance, generation) -> None:
    if sim.delay and generation.wait(sim.delay):
        return  # the harness was reset meanwhile
    started = _now()
    with lifecycle.LOCK:
        invocation.update(Status="InProgress", StatusDetails="InProgress",
                          ExecutionStartDateTime=started.isoformat())
    params = command.parameters or {}
    script = "\n".join(params.get("commands") or [])
    timeout = float((params.get("executionTimeout") or ["3600"])[0])
    status = details = None
    try:
        proc = subprocess.run(
            argv_of(script, sim), cwd=sim.root, capture_output=True,
            timeout=timeout, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                                  "HOME": sim.root, "LANG": "C.UTF-8"})
        stdout, stderr, code = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as err:
        stdout, stderr, code = err.stdout or b"", err.stderr or b"", -1
        status, details = "TimedOut", "ExecutionTimedOut"
    if status is None:
        status = details = "Success" if code == 0 else "Failed"
    out, err = stdout.decode("utf-8", "replace"), stderr.decode("utf-8", "replace")
    ended = _now()
    with lifecycle.LOCK:
        if generation.is_set():
            return
        invocation.update(
            Status=status, StatusDetails=details, ResponseCode=code,
            StandardOutputContent=out[:STDOUT_LIMIT], StandardErrorContent=err[:STDERR_LIMIT],
            ExecutionEndDateTime=ended.isoformat(),
            ExecutionElapsedTime=f"PT{(ended - started).total_seconds():.3f}S")
        if command.output_s3_bucket_name:
            _put_output(command, invocation, out, err)
        command.completed_count += 1
        if command.completed_count >= command.target_count:
            command.status = "Success"


def _put_output(command: Command, invocation: dict, out: str, err: str) -> None:
    """AWS's layout: PREFIX/COMMAND/INSTANCE/awsrunShellScript/0.awsrunShellScript/stdout."""
    bucket = command.output_s3_bucket_name
    base = "/".join(p for p in (command.output_s3_key_prefix.strip("/"), command.command_id,
                                invocation["InstanceId"],
                                "awsrunShellScript/0.awsrunShellScript") if p)
    backend = s3_backends[command.account_id]["aws"]
    region = command.output_s3_region or command.backend_region
    for name, text, field in (("stdout", out, "StandardOutputUrl"),
                              ("stderr", err, "StandardErrorUrl")):
        if not text:
            continue
        try:
            backend.put_object(bucket, f"{base}/{name}", text.encode())
        except Exception:  # no such bucket: AWS leaves the URL empty and keeps the inline copy
            continue
        invocation[field] = f"https://s3.{region}.amazonaws.com/{bucket}/{base}/{name}"


# --- Admin routes (/_harness/ssm/...) ----------------------------------------------------------


def _admin(environ, start_response):
    method = environ.get("REQUEST_METHOD", "GET")
    path = environ.get("PATH_INFO", "")[len("/_harness"):].rstrip("/")
    try:
        body = admin._body(environ) if method in ("POST", "PUT") else {}
    except ValueError:
        return admin._json(start_response, 400, {"error": "body is not JSON"})
    if path != "/ssm/instances":
        return admin._json(start_response, 404, {"error": f"{method} {path}"})
    if method == "GET":
        return admin._json(start_response, 200, {"instances": instances()})
    if method == "DELETE":
        reset()
        return admin._json(start_response, 200, {"ok": True})
    if method != "POST":
        return admin._json(start_response, 405, {"error": f"{method} {path}"})
    items = body.get("instances", [body])
    if any(not i.get("instance_id") or not i.get("root") for i in items):
        return admin._json(start_response, 400, {"error": "missing instance_id or root"})
    sims = [register(i["instance_id"], i["root"], i.get("online", True), i.get("delay", 0.0),
                     i.get("binary"), i.get("vanishing", False)) for i in items]
    return admin._json(start_response, 200, {"instances": [s.describe() for s in sims]})


def _wrap_admin_handle(original):
    def handle(app, environ, start_response):
        if environ.get("PATH_INFO", "").startswith("/_harness/ssm/"):
            return _admin(environ, start_response)
        return original(app, environ, start_response)

    return handle


def _wrap_reset(original):
    def reset_all():
        original()
        reset()

    return reset_all


def install() -> None:
    global _installed
    if _installed:
        return
    SimpleSystemManagerResponse.describe_instance_information = describe_instance_information
    SimpleSystemManagerResponse.list_command_invocations = list_command_invocations
    SimpleSystemManagerBackend.send_command = _wrap_send_command(
        SimpleSystemManagerBackend.send_command)
    Command.get_invocation = _wrap_get_invocation(Command.get_invocation)
    admin.handle = _wrap_admin_handle(admin.handle)
    lifecycle.reset = _wrap_reset(lifecycle.reset)
    _installed = True
