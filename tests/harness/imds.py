"""A fake IMDSv2 on 127.0.0.1 with fault injection, usable from Python and over HTTP.

moto's built-in IMDS cannot be used: its token PUT lacks the TTL header that aws-config's Rust
client requires, and it has no tags, identity document or lifecycle paths (docs/aws-facts.md
§1-§4, §10).

Control it with the FakeImds methods, or with JSON POSTs to /_admin/... on the same port (README).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
TAGS_PREFIX = "/latest/meta-data/tags/instance"
ROLE_PREFIX = "/latest/meta-data/iam/security-credentials/"

DEFAULT_IDENTITY = {
    "instanceId": "i-0123456789abcdef0",
    "region": "us-east-1",
    "availabilityZone": "us-east-1a",
    "instanceType": "t3.micro",
    "accountId": "123456789012",
    "imageId": "ami-12c6146b",
    "privateIp": "10.0.0.10",
    "architecture": "x86_64",
}


class _QuietServer(ThreadingHTTPServer):
    """Clients (ecs-boot timing out, a killed process) may reset connections mid-request; that
    is their right and not worth a traceback in the test output."""

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@dataclass
class Fault:
    status: int
    remaining: int
    path_prefix: str = ""


class FakeImds:
    def __init__(self, identity: dict | None = None, tags: dict | None = None,
                 moto_url: str | None = None, port: int = 0):
        self._lock = threading.Lock()
        self.identity = {**DEFAULT_IDENTITY, **(identity or {})}
        self.tags: dict[str, str] = dict(tags or {})
        self.tags_enabled = True
        self._tags_visible_at = 0.0  # time.monotonic() before which tags paths 404
        self.target_lifecycle_state: str | None = None
        # meta-data/instance-life-cycle ("on-demand", "spot"); None: 404, as before it existed
        self.life_cycle: str | None = None
        self.spot_action: dict | None = None
        self.rebalance: dict | None = None
        # The instance profile's role and its credentials (meta-data/iam/security-credentials/),
        # as EC2 serves them to the SDK's IMDS credentials provider; None: no role, 404.
        self.role: tuple[str, dict] | None = None
        self._faults: list[Fault] = []
        self._delay = (0.0, "")  # (seconds, path prefix)
        self._oversize = (0, "")  # (bytes of padding, path prefix)
        self._tokens: dict[str, float] = {}  # token -> expiry (monotonic)
        self.requests: list[dict] = []  # {"method", "path", "status"}, admin routes excluded
        self.token_puts = 0
        self.moto_url = moto_url  # for mirror_instance over the admin API
        self._port = port
        self._server: ThreadingHTTPServer | None = None

    # --- lifecycle of the server -------------------------------------------------------------

    def start(self) -> "FakeImds":
        handler = type("Handler", (_Handler,), {"imds": self})
        self._server = _QuietServer(("127.0.0.1", self._port), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        """The value for AWS_EC2_METADATA_SERVICE_ENDPOINT."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def admin_url(self) -> str:
        return f"{self.url}/_admin"

    # --- control -----------------------------------------------------------------------------

    def set_identity(self, **fields) -> None:
        with self._lock:
            self.identity.update(fields)

    def set_tags(self, tags: dict, enabled: bool = True, visible_after: float = 0.0) -> None:
        """Replace the instance tags. visible_after: seconds from now during which tags 404."""
        with self._lock:
            self.tags = dict(tags)
            self.tags_enabled = enabled
            self._tags_visible_at = time.monotonic() + visible_after

    def set_tags_enabled(self, enabled: bool) -> None:
        with self._lock:
            self.tags_enabled = enabled

    def set_role(self, name: str, access_key: str, secret: str, token: str) -> None:
        """Serve `name`'s temporary credentials, valid for six hours."""
        creds = {"Code": "Success", "LastUpdated": _iso_in(0), "Type": "AWS-HMAC",
                 "AccessKeyId": access_key, "SecretAccessKey": secret, "Token": token,
                 "Expiration": _iso_in(6 * 3600)}
        with self._lock:
            self.role = (name, creds)

    def set_target_lifecycle_state(self, state: str | None) -> None:
        with self._lock:
            self.target_lifecycle_state = state

    def set_spot_action(self, action: str | None, at: str | None = None) -> None:
        with self._lock:
            self.spot_action = None if action is None else {
                "action": action, "time": at or _iso_in(120)}

    def set_rebalance(self, notice_time: str | None = "now") -> None:
        with self._lock:
            self.rebalance = None if notice_time is None else {
                "noticeTime": _iso_in(0) if notice_time == "now" else notice_time}

    def fail_next(self, count: int, status: int = 500, path_prefix: str = "") -> None:
        """The next `count` requests whose path starts with path_prefix get `status`."""
        with self._lock:
            self._faults.append(Fault(status, count, path_prefix))

    def set_delay(self, seconds: float, path_prefix: str = "") -> None:
        with self._lock:
            self._delay = (seconds, path_prefix)

    def set_oversize(self, nbytes: int, path_prefix: str = "") -> None:
        """JSON answers under path_prefix grow a "padding" field of `nbytes` bytes (still valid
        JSON, so only a size cap on the client can refuse them)."""
        with self._lock:
            self._oversize = (int(nbytes), path_prefix)

    def invalidate_tokens(self) -> None:
        """Every issued token becomes invalid: the next GET gets 401 and must re-fetch."""
        with self._lock:
            self._tokens.clear()

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._delay = (0.0, "")
            self._oversize = (0, "")

    def reset_log(self) -> None:
        with self._lock:
            self.requests.clear()
            self.token_puts = 0

    def mirror_instance(self, ec2, instance_id: str) -> None:
        """Copy identity and EC2 tags (aws:autoscaling:groupName included) of a moto instance."""
        reservation = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]
        inst = reservation["Instances"][0]
        az = inst["Placement"]["AvailabilityZone"]
        self.set_identity(
            instanceId=inst["InstanceId"], availabilityZone=az, region=ec2.meta.region_name,
            instanceType=inst["InstanceType"], imageId=inst["ImageId"],
            privateIp=inst.get("PrivateIpAddress", "10.0.0.10"),
            architecture=inst.get("Architecture", "x86_64"),
            accountId=reservation.get("OwnerId", DEFAULT_IDENTITY["accountId"]),
        )
        self.set_tags({t["Key"]: t["Value"] for t in inst.get("Tags", [])})

    # --- request side (called by the handler) ------------------------------------------------

    def _take_fault(self, path: str) -> int | None:
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and path.startswith(fault.path_prefix):
                    fault.remaining -= 1
                    return fault.status
            return None

    def _delay_for(self, path: str) -> float:
        seconds, prefix = self._delay
        return seconds if seconds > 0 and path.startswith(prefix) else 0.0

    def _issue_token(self, ttl: int) -> str:
        token = "AQAEA" + secrets.token_urlsafe(40)
        with self._lock:
            self.token_puts += 1
            self._tokens[token] = time.monotonic() + ttl
        return token

    def _token_valid(self, token: str | None) -> bool:
        with self._lock:
            return bool(token) and self._tokens.get(token, 0) > time.monotonic()

    def _lookup(self, path: str) -> "str | _Padded | None":
        """The text/plain body for a metadata path, or None for 404."""
        text = self._lookup_plain(path)
        nbytes, prefix = self._oversize
        if text is not None and nbytes and path.startswith(prefix) and text.startswith("{"):
            return _Padded(text[:-1].rstrip() + ', "padding": "', nbytes, '"}')
        return text

    def _lookup_plain(self, path: str) -> str | None:
        with self._lock:
            ident = dict(self.identity)
            if path == "/latest/dynamic/instance-identity/document":
                return json.dumps({**ident, "pendingTime": "2024-01-01T00:00:00Z",
                                   "version": "2017-09-30"}, indent=2)
            if path.startswith(TAGS_PREFIX):
                if not self.tags_enabled or time.monotonic() < self._tags_visible_at:
                    return None
                if path.rstrip("/") == TAGS_PREFIX:
                    return "\n".join(self.tags)
                return self.tags.get(path[len(TAGS_PREFIX) + 1:])
            if path.startswith(ROLE_PREFIX) and self.role:
                name, creds = self.role
                rest = path[len(ROLE_PREFIX):]
                return name if rest == "" else json.dumps(creds) if rest == name else None
            simple = {
                "/latest/meta-data/instance-id": ident["instanceId"],
                "/latest/meta-data/instance-type": ident["instanceType"],
                "/latest/meta-data/ami-id": ident["imageId"],
                "/latest/meta-data/local-ipv4": ident["privateIp"],
                "/latest/meta-data/placement/region": ident["region"],
                "/latest/meta-data/placement/availability-zone": ident["availabilityZone"],
                "/latest/meta-data/autoscaling/target-lifecycle-state":
                    self.target_lifecycle_state,
                "/latest/meta-data/instance-life-cycle": self.life_cycle,
                "/latest/meta-data/spot/instance-action":
                    json.dumps(self.spot_action) if self.spot_action else None,
                "/latest/meta-data/events/recommendations/rebalance":
                    json.dumps(self.rebalance) if self.rebalance else None,
            }
            return simple.get(path)

    def _log(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self.requests.append({"method": method, "path": path, "status": status})


def _iso_in(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + seconds))


class _Padded:
    """An oversized JSON answer, streamed in 64 KiB chunks instead of built whole: a 256 MiB
    answer built as one string took longer than the client's timeout on a loaded machine, so the
    test saw a timeout where it meant to see the size cap."""

    CHUNK = 64 * 1024

    def __init__(self, head: str, nbytes: int, tail: str):
        self.head, self.nbytes, self.tail = head.encode(), nbytes, tail.encode()

    def __len__(self) -> int:
        return len(self.head) + self.nbytes + len(self.tail)

    def chunks(self):
        yield self.head
        left = self.nbytes
        block = b"x" * self.CHUNK
        while left > 0:
            yield block[:min(left, self.CHUNK)]
            left -= self.CHUNK
        yield self.tail


class _Handler(BaseHTTPRequestHandler):
    # Headers and body go out in two writes; with Nagle on, a client reusing its connection
    # (as aws-config's does) waits ~40 ms for the delayed ACK on every request after the first.
    disable_nagle_algorithm = True
    imds: FakeImds
    protocol_version = "HTTP/1.1"  # keep-alive, like the real service; SDKs pool connections

    def log_message(self, *args):  # the request log is kept in FakeImds.requests instead
        pass

    def _send(self, status: int, body: "str | _Padded" = "", headers: dict | None = None,
              content_type: str = "text/plain") -> None:
        chunks = body.chunks() if isinstance(body, _Padded) else [body.encode()]
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body) if isinstance(body, _Padded)
                                              else len(chunks[0])))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command == "HEAD":
            return
        try:
            for chunk in chunks:
                self.wfile.write(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # a client that stops at its size cap hangs up mid-body: that is the point

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _metadata(self) -> None:
        path = self.path.split("?", 1)[0]
        self._read_body()  # drain it, so the next request on this keep-alive connection parses
        status, text, headers = self._answer(path)
        self.imds._log(self.command, path, status)
        self._send(status, text, headers)

    def _answer(self, path: str) -> tuple[int, str, dict]:
        imds = self.imds
        delay = imds._delay_for(path)
        if delay:
            time.sleep(delay)
        fault = imds._take_fault(path)
        if fault is not None:
            return fault, "", {}
        if self.command == "PUT":
            if path != "/latest/api/token":
                return 403, "", {}  # versioned token paths are refused "by design"
            if self.headers.get("X-Forwarded-For"):
                return 403, "", {}
            try:
                ttl = int(self.headers.get(TTL_HEADER, ""))
            except ValueError:
                return 400, "", {}
            if not 1 <= ttl <= 21600:
                return 400, "", {}
            return 200, imds._issue_token(ttl), {TTL_HEADER: str(ttl)}
        if self.command not in ("GET", "HEAD"):
            return 405, "", {}
        if not imds._token_valid(self.headers.get(TOKEN_HEADER)):
            return 401, "", {}
        text = imds._lookup(path)
        return (404, "", {}) if text is None else (200, text, {})

    def do_GET(self):
        if self.path.startswith("/_admin"):
            return _admin(self)
        self._metadata()

    do_HEAD = do_PUT = do_DELETE = do_PATCH = _metadata

    def do_POST(self):
        if self.path.startswith("/_admin"):
            return _admin(self)
        self._metadata()


def _admin(handler: _Handler) -> None:
    """JSON admin API; see README.md for the routes."""
    imds = handler.imds
    path = handler.path.split("?", 1)[0].rstrip("/")
    try:
        body = json.loads(handler._read_body() or b"{}")
    except ValueError:
        return handler._send(400, '{"error": "body is not JSON"}', content_type="application/json")
    if handler.command == "GET" and path == "/_admin/log":
        return handler._send(200, json.dumps({"requests": imds.requests,
                                              "token_puts": imds.token_puts}),
                             content_type="application/json")
    if handler.command == "GET" and path == "/_admin/state":
        return handler._send(200, json.dumps({
            "identity": imds.identity, "tags": imds.tags, "tags_enabled": imds.tags_enabled,
            "target_lifecycle_state": imds.target_lifecycle_state,
            "spot_action": imds.spot_action, "rebalance": imds.rebalance}),
            content_type="application/json")
    actions = {
        "/_admin/identity": lambda: imds.set_identity(**body),
        "/_admin/tags": lambda: imds.set_tags(body.get("tags", imds.tags),
                                              enabled=body.get("enabled", True),
                                              visible_after=body.get("visible_after", 0)),
        "/_admin/target-lifecycle-state": lambda: imds.set_target_lifecycle_state(
            body.get("state")),
        "/_admin/life-cycle": lambda: setattr(imds, "life_cycle", body.get("value")),
        "/_admin/spot": lambda: imds.set_spot_action(body.get("action"), body.get("time")),
        "/_admin/rebalance": lambda: imds.set_rebalance(body.get("noticeTime")),
        "/_admin/faults": lambda: imds.fail_next(int(body.get("count", 1)),
                                                 int(body.get("status", 500)),
                                                 body.get("path_prefix", "")),
        "/_admin/delay": lambda: imds.set_delay(float(body.get("seconds", 0)),
                                                body.get("path_prefix", "")),
        "/_admin/oversize": lambda: imds.set_oversize(int(body.get("bytes", 0)),
                                                      body.get("path_prefix", "")),
        "/_admin/clear-faults": imds.clear_faults,
        "/_admin/invalidate-tokens": imds.invalidate_tokens,
        "/_admin/reset-log": imds.reset_log,
        "/_admin/mirror": lambda: _mirror(imds, body),
    }
    action = actions.get(path)
    if handler.command != "POST" or action is None:
        return handler._send(404, json.dumps({"error": f"{handler.command} {path}"}),
                             content_type="application/json")
    try:
        action()
    except (TypeError, ValueError, KeyError) as err:
        return handler._send(400, json.dumps({"error": str(err)}), content_type="application/json")
    handler._send(200, '{"ok": true}', content_type="application/json")


def _mirror(imds: FakeImds, body: dict) -> None:
    from .moto_ext import make_client  # boto3 only needed for this route

    endpoint = body.get("endpoint") or imds.moto_url
    if not endpoint:
        raise ValueError("no moto endpoint: pass 'endpoint' or start FakeImds with moto_url")
    imds.mirror_instance(make_client("ec2", endpoint, body.get("region", "us-east-1")),
                         body["instance_id"])
