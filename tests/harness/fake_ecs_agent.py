#!/usr/bin/env python3
"""A fake Amazon ECS agent for ecs-boot tests: registers in moto ECS, serves introspection.

Standalone on purpose (stdlib + boto3 only): it also runs as `ecs.service` inside a Debian
systemd container with `EnvironmentFile=/etc/ecs/ecs.config`.

Behaviour copied from the real agent (docs/aws-facts.md §5):
- settings come from the environment and/or an ecs.config parsed by ecs-init's naive rules;
- invalid ECS_INSTANCE_ATTRIBUTES exits 1;
- the introspection port (default 51678) opens only after registration, so "connection refused"
  means "not registered yet";
- /v1/tasks keeps STOPPED tasks.
Deliberate difference: without ECS_CLUSTER it refuses to register and exits 5 (the agent's
"terminal" code, which systemd's RestartPreventExitStatus=5 will not restart), instead of
silently joining `default`, so tests can prove ecs-boot fails closed.

Test controls (flags, or FAKE_ECS_* environment variables for systemd drop-ins) and an admin
HTTP API on --admin-port: see --help and harness/README.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import secrets
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import boto3
from botocore.config import Config

AGENT_VERSION = "Amazon ECS Agent - v1.90.0 (fake)"
EXIT_CONFIG = 1  # the real agent's exit code for a bad configuration
EXIT_TERMINAL = 5  # the real agent's "do not restart me" code
IMAGE = "public.ecr.aws/docker/library/busybox:latest"

log = logging.getLogger("fake-ecs-agent")


# --- configuration ----------------------------------------------------------------------------


def parse_ecs_config(text: str) -> dict[str, str]:
    """ecs-init's parser (docker.go:438-455): no quotes, comments, escapes or continuations."""
    settings = {}
    for line in text.strip().split("\n"):
        key, sep, value = line.strip().partition("=")
        if sep:
            settings[key] = value
    return settings


def load_settings(environ: dict, config_path: str | None) -> dict[str, str]:
    """The process environment, overridden by the file (ecs-init passes the file's values as the
    agent container's environment)."""
    settings = dict(environ)
    if config_path and os.path.exists(config_path):
        with open(config_path, encoding="utf-8") as f:
            settings.update(parse_ecs_config(f.read()))
    return settings


def parse_attributes(raw: str | None) -> dict[str, str]:
    if not raw:
        return {}
    value = json.loads(raw)  # ValueError is the caller's "Invalid format" exit
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ValueError("expected a JSON object of strings")
    return value


# --- IMDS (for the instance id when none is given) --------------------------------------------


def identity_from_imds(endpoint: str, attempts: int = 30) -> dict:
    base = endpoint.rstrip("/")
    for attempt in range(attempts):
        try:
            put = urllib.request.Request(
                base + "/latest/api/token", method="PUT",
                headers={"X-aws-ec2-metadata-token-ttl-seconds": "21600"})
            token = urllib.request.urlopen(put, timeout=2).read().decode()
            get = urllib.request.Request(
                base + "/latest/dynamic/instance-identity/document",
                headers={"X-aws-ec2-metadata-token": token})
            return json.loads(urllib.request.urlopen(get, timeout=2).read())
        except (OSError, ValueError) as err:
            log.warning("IMDS not ready (attempt %d): %s", attempt + 1, err)
            time.sleep(1)
    raise SystemExit(f"fake-ecs-agent: no instance identity from IMDS at {endpoint}")


def target_lifecycle_state(endpoint: str) -> str | None:
    """IMDS's target-lifecycle-state, None on 404 (as the real agent's warm-pool check reads it)."""
    base = endpoint.rstrip("/")
    put = urllib.request.Request(base + "/latest/api/token", method="PUT",
                                 headers={"X-aws-ec2-metadata-token-ttl-seconds": "21600"})
    token = urllib.request.urlopen(put, timeout=2).read().decode()
    get = urllib.request.Request(base + "/latest/meta-data/autoscaling/target-lifecycle-state",
                                 headers={"X-aws-ec2-metadata-token": token})
    try:
        return urllib.request.urlopen(get, timeout=2).read().decode().strip()
    except urllib.error.HTTPError as err:
        if err.code == 404:
            return None
        raise


# --- the agent --------------------------------------------------------------------------------


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class LocalTask:
    """What the agent knows about one task; rendered in the introspection API's shape."""

    def __init__(self, arn: str, family: str, revision: int, kind: str):
        self.arn, self.family, self.revision, self.kind = arn, family, revision, kind
        self.desired = self.known = "RUNNING"
        self.stop_at: float | None = None  # set while a service task waits to be drained
        self.docker_id = secrets.token_hex(32)
        self.created = _now()

    def response(self) -> dict:
        return {
            "Arn": self.arn,
            "DesiredStatus": self.desired,
            "KnownStatus": self.known,
            "Family": self.family,
            "Version": str(self.revision),
            "Containers": [{
                "DockerId": self.docker_id,
                "DockerName": f"ecs-{self.family}-{self.revision}-app-{self.docker_id[:20]}",
                "Name": "app",
                "Image": IMAGE,
                "ImageID": "sha256:" + self.docker_id,
                "CreatedAt": self.created,
                "StartedAt": self.created,
                "Ports": [],
                "Networks": [{"NetworkMode": "bridge", "IPv4Addresses": ["172.17.0.2"]}],
                "Volumes": [],
            }],
        }


class Agent:
    def __init__(self, args, cluster: str, attributes: dict, identity: dict, region: str):
        self.args = args
        self.cluster = args.cluster_override or cluster
        self.attributes = attributes
        self.identity = identity
        self.ecs = boto3.client(
            "ecs", region_name=region, endpoint_url=os.environ.get("AWS_ENDPOINT_URL"),
            aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
            aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
            aws_session_token=os.environ.get("AWS_SESSION_TOKEN"),  # role credentials
            config=Config(user_agent_extra="fake-ecs-agent", retries={"max_attempts": 3}))
        self.lock = threading.Lock()
        self.arn: str | None = None
        self.status: str | None = None  # container instance status in ECS
        self.tasks: dict[str, LocalTask] = {}
        self.revisions: dict[str, int] = {}
        self.introspection: ThreadingHTTPServer | None = None
        self.oversize_tasks = 0  # bytes of made-up tasks added to /v1/tasks (0: none)

    def register(self) -> None:
        doc = json.dumps(self.identity)
        while True:
            try:
                resp = self.ecs.register_container_instance(
                    cluster=self.cluster, instanceIdentityDocument=doc,
                    versionInfo={"agentVersion": "1.90.0", "agentHash": "fake"})
                break
            except Exception as err:  # the real agent retries registration forever too
                log.warning("registration in cluster %r failed, retrying: %s", self.cluster, err)
                time.sleep(2)
        self.arn = resp["containerInstance"]["containerInstanceArn"]
        if self.attributes:
            self.ecs.put_attributes(cluster=self.cluster, attributes=[
                {"name": k, "value": v, "targetId": self.arn} for k, v in self.attributes.items()])
        log.info("registered %s in cluster %s", self.arn, self.cluster)

    def open_introspection(self) -> None:
        with self.lock:
            if self.introspection is None:
                handler = KeepAliveIntrospection if self.args.keep_alive else IntrospectionHandler
                self.introspection = serve(self.args.port, handler, self)
                log.info("introspection listening on 127.0.0.1:%d", self.args.port)

    def close_introspection(self) -> None:
        with self.lock:
            server, self.introspection = self.introspection, None
        if server:
            server.shutdown()
            server.server_close()
            log.info("introspection closed (simulated agent death)")

    def start_tasks(self, family: str, kind: str, count: int) -> list[str]:
        if kind not in ("service", "standalone"):
            raise ValueError("kind must be service or standalone")
        if family not in self.revisions:
            td = self.ecs.register_task_definition(family=family, containerDefinitions=[
                {"name": "app", "image": IMAGE, "memory": 32, "essential": True}])
            self.revisions[family] = td["taskDefinition"]["revision"]
        started_by = (f"ecs-svc/{random.randrange(10**18, 10**19)}" if kind == "service"
                      else "fake-standalone")
        arns = []
        for _ in range(count):
            resp = self.ecs.start_task(cluster=self.cluster, taskDefinition=family,
                                       containerInstances=[self.arn], startedBy=started_by)
            for task in resp["tasks"]:
                with self.lock:
                    self.tasks[task["taskArn"]] = LocalTask(
                        task["taskArn"], family, self.revisions[family], kind)
                arns.append(task["taskArn"])
        return arns

    def poll_forever(self) -> None:
        """Follow ECS like the real agent: drain service tasks, stop what StopTask stopped."""
        while True:
            time.sleep(self.args.poll_interval)
            try:
                self.poll_once()
            except Exception as err:  # moto restarts or resets between tests; keep going
                log.warning("poll failed: %s", err)

    def poll_once(self) -> None:
        instances = self.ecs.describe_container_instances(
            cluster=self.cluster, containerInstances=[self.arn])["containerInstances"]
        status = instances[0]["status"] if instances else "MISSING"
        with self.lock:
            running = [t for t in self.tasks.values() if t.known == "RUNNING"]
        if status != self.status:
            log.info("container instance status %s -> %s", self.status, status)
            self.status = status
            for task in running:
                if task.kind == "service":
                    draining = status == "DRAINING" and self.args.stop_delay is not None
                    task.stop_at = time.monotonic() + self.args.stop_delay if draining else None
        for task in running:
            if task.stop_at is not None and time.monotonic() >= task.stop_at:
                # The service scheduler would replace it elsewhere; here it just stops.
                self.ecs.stop_task(cluster=self.cluster, task=task.arn,
                                   reason="Service draining (fake agent)")
                self._stopped(task)
        still_running = [t.arn for t in running if t.known == "RUNNING"]
        if not still_running:
            return
        for desc in self.ecs.describe_tasks(cluster=self.cluster, tasks=still_running)["tasks"]:
            task = self.tasks.get(desc["taskArn"])
            if task and desc.get("desiredStatus") == "STOPPED" and task.known == "RUNNING":
                self._stopped(task)

    def _stopped(self, task: LocalTask) -> None:
        with self.lock:
            task.desired = task.known = "STOPPED"
            task.stop_at = None
        log.info("task %s stopped", task.arn)

    def task_list(self) -> list[dict]:
        with self.lock:
            return [t.response() for t in self.tasks.values()]


# --- HTTP ---------------------------------------------------------------------------------------


def serve(port: int, handler_cls, agent: Agent) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", port), type("H", (handler_cls,), {"agent": agent}))
    server.daemon_threads = True
    # Checked for shutdown twice a second: 200 agents (the storm bench) at 20 checks a second
    # each were the fake agents' whole idle CPU.
    threading.Thread(target=server.serve_forever, args=(0.5,), daemon=True).start()
    return server


class _JsonHandler(BaseHTTPRequestHandler):
    agent: Agent

    def log_message(self, *args):
        pass

    def send_json(self, status: int, body) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class IntrospectionHandler(_JsonHandler):
    def do_GET(self):
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/v1/metadata":
            return self.send_json(200, {"Cluster": self.agent.cluster,
                                        "ContainerInstanceArn": self.agent.arn,
                                        "Version": AGENT_VERSION})
        if url.path != "/v1/tasks":
            return self.send_json(404, {})
        if "taskarn" in query and "dockerid" in query:
            return self.send_json(400, {})
        tasks = self.agent.task_list()
        if "taskarn" in query or "dockerid" in query:
            # Like the real agent, a filtered request answers one task object, not a list.
            match = [t for t in tasks if t["Arn"] == query.get("taskarn") or (
                "dockerid" in query and t["Containers"][0]["DockerId"].startswith(
                    query["dockerid"]))]
            return self.send_json(200, match[0]) if match else self.send_json(404, {})
        pad = self.agent.oversize_tasks
        if pad:
            # Oversized answer (POST /_admin/oversize): valid JSON full of tasks ECS never heard
            # of, all RUNNING, so a client without a size cap sees a drain that never ends.
            filler = {"Arn": "", "DesiredStatus": "RUNNING", "KnownStatus": "RUNNING",
                      "Family": "oversize", "Version": "1", "Containers": []}
            one = len(json.dumps(filler)) + 60
            tasks = tasks + [dict(filler, Arn=f"arn:aws:ecs:us-east-1:123456789012:task/"
                                  f"oversize/{i:032x}") for i in range(pad // one + 1)]
        self.send_json(200, {"Tasks": tasks})


class KeepAliveIntrospection(IntrospectionHandler):
    """`--keep-alive` (the storm bench): a drain asks /v1/tasks every 20-40 ms, and for 200 Python
    agents on two cores a new connection and thread per request cost more than the answers. Not
    the default: a kept-alive connection outlives a killed agent on the server side (FIN_WAIT_2,
    up to tcp_fin_timeout), and a restarted agent then cannot bind its fixed port."""
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.agent.introspection is not self.server:
            # Closed (a simulated agent death): a kept-alive connection dies with it, unanswered.
            self.close_connection = True
            return
        super().do_GET()


class AdminHandler(_JsonHandler):
    def do_GET(self):
        if self.path.rstrip("/") != "/_admin/state":
            return self.send_json(404, {"error": self.path})
        agent = self.agent
        self.send_json(200, {"registered": agent.arn is not None, "cluster": agent.cluster,
                             "container_instance_arn": agent.arn, "status": agent.status,
                             "introspection": agent.introspection is not None,
                             "tasks": agent.task_list()})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            return self.send_json(400, {"error": "body is not JSON"})
        path = self.path.rstrip("/")
        agent = self.agent
        if path == "/_admin/tasks":
            if agent.arn is None:
                return self.send_json(409, {"error": "not registered yet"})
            try:
                arns = agent.start_tasks(body.get("family", "app"), body.get("kind", "service"),
                                         int(body.get("count", 1)))
            except Exception as err:
                return self.send_json(400, {"error": str(err)})
            return self.send_json(200, {"tasks": arns})
        if path == "/_admin/introspection":
            if body.get("enabled", False):
                if agent.arn is None:
                    return self.send_json(409, {"error": "not registered yet"})
                agent.open_introspection()
            else:
                agent.close_introspection()
            return self.send_json(200, {"introspection": agent.introspection is not None})
        if path == "/_admin/oversize":
            agent.oversize_tasks = int(body.get("bytes", 0))
            return self.send_json(200, {"oversize_tasks": agent.oversize_tasks})
        if path == "/_admin/exit":
            self.send_json(200, {"exiting": int(body.get("code", 1))})
            self.wfile.flush()
            os._exit(int(body.get("code", 1)))
        self.send_json(404, {"error": path})


# --- main ---------------------------------------------------------------------------------------


def _env_float(name: str, default):
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return None if raw == "never" else float(raw)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=os.environ.get("FAKE_ECS_CONFIG"),
                   help="ecs.config file to read (in addition to the environment)")
    p.add_argument("--port", type=int,
                   default=int(os.environ.get("FAKE_ECS_INTROSPECTION_PORT", 51678)),
                   help="introspection port on 127.0.0.1, opened after registering (51678)")
    p.add_argument("--admin-port", type=int,
                   default=int(os.environ.get("FAKE_ECS_ADMIN_PORT", 51680)),
                   help="admin API port on 127.0.0.1, open from the start (51680)")
    p.add_argument("--register-delay", type=float,
                   default=_env_float("FAKE_ECS_REGISTER_DELAY", 0.0),
                   help="seconds to wait before registering")
    p.add_argument("--never-register", action="store_true",
                   default=os.environ.get("FAKE_ECS_NEVER_REGISTER") == "1",
                   help="stay up but never register (introspection never opens)")
    p.add_argument("--cluster-override", default=os.environ.get("FAKE_ECS_CLUSTER_OVERRIDE"),
                   help="register into this cluster instead of ECS_CLUSTER")
    p.add_argument("--stop-delay", default=_env_float("FAKE_ECS_STOP_DELAY", 1.0),
                   type=lambda v: None if v == "never" else float(v),
                   help="seconds after DRAINING before service tasks stop, or 'never' (1.0)")
    p.add_argument("--instance-id", default=os.environ.get("FAKE_ECS_INSTANCE_ID"),
                   help="EC2 instance id (else from IMDS at AWS_EC2_METADATA_SERVICE_ENDPOINT)")
    p.add_argument("--keep-alive", action="store_true",
                   help="HTTP/1.1 keep-alive on the introspection port (the storm bench)")
    p.add_argument("--poll-interval", type=float, default=0.2,
                   help="seconds between ECS polls (DescribeContainerInstances, DescribeTasks)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s fake-ecs-agent %(levelname)s %(message)s")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    args = parse_args(argv)
    settings = load_settings(dict(os.environ), args.config)
    required = os.environ.get("FAKE_ECS_REQUIRE_FILE")
    if required and not os.path.exists(required):
        # What a node's bootstrap step prepares (a mount, a CA bundle): the agent must find it.
        log.error("FAKE_ECS_REQUIRE_FILE %s is missing: the node was not prepared", required)
        return 1
    cluster = settings.get("ECS_CLUSTER", "")
    if not cluster:
        log.error("ECS_CLUSTER is not set: refusing to register (the real agent would join "
                  "'default')")
        return EXIT_TERMINAL
    try:
        attributes = parse_attributes(settings.get("ECS_INSTANCE_ATTRIBUTES"))
    except ValueError as err:
        log.error("Invalid format for ECS_INSTANCE_ATTRIBUTES. Expected a json hash: %s", err)
        return EXIT_CONFIG
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if args.instance_id:
        identity = {"instanceId": args.instance_id, "region": region or "us-east-1"}
    else:
        identity = identity_from_imds(
            os.environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://169.254.169.254"))
    if settings.get("ECS_WARM_POOLS_CHECK", "").lower() == "true":
        # Agents from 1.89 exit terminally when the path answers 404 (amazon-ecs-agent#4487,
        # #4644); ecs.service's RestartPreventExitStatus=5 then keeps them down for good.
        endpoint = os.environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://169.254.169.254")
        state = target_lifecycle_state(endpoint)
        if state is None:
            log.error("Could not determine target lifecycle of instance: 404 from IMDS")
            return EXIT_TERMINAL
        while state != "InService":
            log.info("warm pools check: target lifecycle state %s; waiting", state)
            time.sleep(0.5)
            state = target_lifecycle_state(endpoint)
    agent = Agent(args, cluster, attributes, identity, region or identity.get("region"))
    serve(args.admin_port, AdminHandler, agent)
    log.info("admin API on 127.0.0.1:%d; cluster %s", args.admin_port, agent.cluster)
    if args.never_register:
        log.info("--never-register: staying unregistered")
    else:
        time.sleep(args.register_delay)
        agent.register()
        agent.open_introspection()
        threading.Thread(target=agent.poll_forever, daemon=True).start()
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
