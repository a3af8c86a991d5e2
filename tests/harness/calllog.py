"""A WSGI wrapper around moto's app: logs every AWS call and serves the harness admin routes.

Wrapping the WSGI app (not BaseResponse.call_action) is what catches S3, whose responses do not go
through call_action. The wrapper also serialises requests with lifecycle.LOCK: moto is not
thread-safe and the lifecycle timers mutate the same objects.
"""

from __future__ import annotations

import html
import io
import json
import logging
import re
import threading
import time
import uuid
from urllib.parse import parse_qsl

from . import admin, lifecycle, refresh
from .throttle import Throttles

log = logging.getLogger(__name__)

# Query-protocol keys that say nothing about the call.
_NOISE = {"Action", "Version"}


def classify_source(user_agent: str) -> str:
    """Who made the call: the fake ECS agent, the harness itself, or the client under test."""
    if "fake-ecs-agent" in user_agent:
        return "fake-ecs-agent"
    if "ecs-boot-harness" in user_agent:
        return "harness"
    return "client"


def _service(environ) -> str:
    # SigV4: "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/autoscaling/aws4_request, ..."
    auth = environ.get("HTTP_AUTHORIZATION", "")
    try:
        return auth.split(",")[0].split()[1].split("/")[3]
    except IndexError:
        return "unknown"


def _access_key(environ) -> str | None:
    """The access key ID a SigV4 request was signed with (an ID, not a secret): which
    credentials a client used, e.g. the instance role's from IMDS."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    try:
        return auth.split("Credential=", 1)[1].split("/", 1)[0]
    except IndexError:
        return None


def _s3_call(method: str, path: str, query: str) -> tuple[str, dict]:
    bucket, _, key = path.lstrip("/").partition("/")
    if not bucket:
        return "ListBuckets", {}
    params = {"Bucket": bucket, **({"Key": key} if key else {})}
    if key:
        action = {"GET": "GetObject", "HEAD": "HeadObject", "PUT": "PutObject",
                  "DELETE": "DeleteObject"}.get(method, method)
    elif method == "GET":
        action = "ListObjectsV2" if "list-type=2" in query else "ListObjects"
    else:
        action = {"PUT": "CreateBucket", "HEAD": "HeadBucket",
                  "DELETE": "DeleteBucket"}.get(method, method)
    return action, params


def describe_call(environ, body: bytes) -> tuple[str, str, dict]:
    """(service, action, params) for one request, across the query, JSON and REST protocols."""
    service = _service(environ)
    method = environ.get("REQUEST_METHOD", "GET")
    target = environ.get("HTTP_X_AMZ_TARGET")
    content_type = environ.get("CONTENT_TYPE", "")
    if service == "s3":
        action, params = _s3_call(method, environ.get("PATH_INFO", ""),
                                  environ.get("QUERY_STRING", ""))
        return service, action, params
    if target:  # JSON protocol (SSM, ECS): "AmazonSSM.GetParameter"
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            params = {}
        return service, target.rsplit(".", 1)[-1], params if isinstance(params, dict) else {}
    if content_type.startswith("application/x-www-form-urlencoded"):  # query (ASG, EC2)
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        return service, form.get("Action", "unknown"), {
            k: v for k, v in form.items() if k not in _NOISE
        }
    return service, f"{method} {environ.get('PATH_INFO', '')}", {}


class CallLog:
    def __init__(self):
        self._lock = threading.Lock()
        self._entries: list[dict] = []

    def add(self, entry: dict) -> None:
        with self._lock:
            self._entries.append(entry)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def entries(self, service=None, action=None, source=None) -> list[dict]:
        with self._lock:
            return [
                e for e in self._entries
                if service in (None, e["service"]) and action in (None, e["action"])
                and source in (None, e["source"])
            ]


class Faults:
    """Injected AWS faults (`POST /_harness/faults`): the next `count` matching calls (every one
    when count is None) wait `delay` seconds, then, if `status` is set, get that AWS error instead
    of moto's answer. A rule matches on service and, if given, action (as in the call log) and
    source ("client", "fake-ecs-agent", "harness"; as classify_source says)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._rules: list[dict] = []

    def add(self, rule: dict) -> dict:
        if not rule.get("service"):
            raise ValueError("a fault needs a service")
        if not rule.get("status") and not rule.get("delay") and not rule.get("stream_bytes"):
            raise ValueError("a fault needs a status, a delay or stream_bytes")
        rule = {"service": rule["service"], "action": rule.get("action"),
                "source": rule.get("source"),
                "count": rule.get("count"), "status": rule.get("status"),
                "code": rule.get("code") or "InternalError",
                "message": rule.get("message") or "injected by the ecs-boot harness",
                "delay": float(rule.get("delay") or 0),
                "stream_bytes": int(rule.get("stream_bytes") or 0), "sent": 0, "hits": 0}
        with self._lock:
            self._rules.append(rule)
        return dict(rule)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self._rules]

    def take(self, service: str, action: str, source: str | None = None) -> dict | None:
        with self._lock:
            for rule in self._rules:
                if rule["service"] != service or rule["action"] not in (None, action):
                    continue
                if rule["source"] not in (None, source):
                    continue
                if rule["count"] is not None and rule["hits"] >= rule["count"]:
                    continue
                rule["hits"] += 1
                return rule  # the live rule: a stream counts what it sent into it
        return None


def error_response(service: str, environ, rule: dict) -> tuple[str, list, bytes]:
    """An AWS error in the service's protocol: REST-XML (S3), JSON (SSM, ECS) or query XML."""
    status, code, message = int(rule["status"]), rule["code"], rule["message"]
    request_id = str(uuid.uuid4())
    reason = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 429: "Too Many Requests",
              500: "Internal Server Error", 503: "Service Unavailable"}.get(status, "Error")
    if service == "s3":
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
                f"<Message>{message}</Message><RequestId>{request_id}</RequestId></Error>")
        ctype = "application/xml"
    elif environ.get("HTTP_X_AMZ_TARGET"):
        body = json.dumps({"__type": code, "message": message})
        ctype = "application/x-amz-json-1.1"
    else:
        kind = "Sender" if status < 500 else "Receiver"
        body = (f"<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code>"
                f"<Message>{message}</Message></Error><RequestId>{request_id}</RequestId>"
                "</ErrorResponse>")
        ctype = "text/xml"
    data = body.encode()
    headers = [("Content-Type", ctype), ("Content-Length", str(len(data))),
               ("x-amzn-RequestId", request_id), ("x-amz-request-id", request_id)]
    if environ.get("HTTP_X_AMZ_TARGET"):
        headers.append(("x-amzn-ErrorType", code))
    return f"{status} {reason}", headers, data


def error_of(status: int | None, data: bytes) -> dict | None:
    """{"code", "message"} of an AWS error answer (query XML, S3 XML or JSON), None if accepted."""
    if status is None or status < 400:
        return None
    text = data[:8192].decode("utf-8", "replace")
    code = re.search(r"<Code>(.*?)</Code>", text, re.S)
    message = re.search(r"<Message>(.*?)</Message>", text, re.S)
    if code:
        return {"code": code.group(1).strip(),
                "message": html.unescape(message.group(1).strip()) if message else ""}
    try:
        body = json.loads(text)
    except ValueError:
        return {"code": f"HTTP {status}", "message": text[:200]}
    if not isinstance(body, dict):
        return {"code": f"HTTP {status}", "message": ""}
    code = str(body.get("__type") or body.get("code") or f"HTTP {status}").rsplit("#", 1)[-1]
    return {"code": code, "message": str(body.get("message") or body.get("Message") or "")}


class Hold:
    """One held call (`Holds.add`): `arrived` is set once the matching request reached the
    harness (for `when="after"`: moto has already answered it, the answer waits), and the
    answer goes out only after `release()` (or after `limit` seconds, so nothing hangs)."""

    def __init__(self, hold_id: int, service: str, action: str, when: str, params: dict,
                 limit: float):
        self.id, self.service, self.action, self.when = hold_id, service, action, when
        self.params, self.limit = params, limit
        self.arrived = threading.Event()
        self.released = threading.Event()
        self.call: dict | None = None

    def matches(self, service: str, action: str, params: dict) -> bool:
        return (self.service == service and self.action == action
                and all(params.get(k) == v for k, v in self.params.items()))

    def wait_arrived(self, timeout: float) -> dict:
        if not self.arrived.wait(timeout):
            raise TimeoutError(f"no {self.action} call arrived within {timeout}s")
        return self.call

    def release(self) -> None:
        self.released.set()

    def describe(self) -> dict:
        return {"id": self.id, "service": self.service, "action": self.action,
                "when": self.when, "params": self.params, "arrived": self.arrived.is_set(),
                "released": self.released.is_set(), "call": self.call}


class Holds:
    """Calls whose answer the harness holds back (`POST /_harness/holds`), one call each: the
    window where a client may die after the service acted but before it heard so."""

    def __init__(self):
        self._lock = threading.Lock()
        self._holds: list[Hold] = []
        self._next = 1

    def add(self, rule: dict) -> Hold:
        if not rule.get("service") or not rule.get("action"):
            raise ValueError("a hold needs a service and an action")
        when = rule.get("when") or "after"
        if when not in ("before", "after", "drop"):
            raise ValueError('"when" is "after" (moto acted, the answer waits), "before" (moto '
                             'acts on release) or "drop" (moto never sees it: lost on the way)')
        with self._lock:
            hold = Hold(self._next, rule["service"], rule["action"], when,
                        dict(rule.get("params") or {}), float(rule.get("limit") or 120))
            self._next += 1
            self._holds.append(hold)
        return hold

    def take(self, service: str, action: str, params: dict) -> Hold | None:
        with self._lock:
            for hold in self._holds:
                if hold.call is None and hold.matches(service, action, params):
                    hold.call = {}  # taken; filled in when it arrives
                    return hold
        return None

    def get(self, hold_id: int) -> Hold | None:
        with self._lock:
            return next((h for h in self._holds if h.id == hold_id), None)

    def all(self) -> list[Hold]:
        with self._lock:
            return list(self._holds)

    def clear(self) -> None:
        with self._lock:
            for hold in self._holds:
                hold.release()
            self._holds.clear()


def _stream(rule: dict, total: int):
    """An answer body of `total` bytes sent in chunks with no Content-Length; counts what went
    out in rule["sent"] (a client that stops reading early shows up as a small count)."""
    chunk = b"x" * 65536
    yield b'{"auths": {}, "pad": "'
    rule["sent"] = 0
    while rule["sent"] < total:
        yield chunk
        rule["sent"] += len(chunk)


def _read_body(environ) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length <= 0:
        return b""  # e.g. a chunked S3 upload: leave the stream to moto untouched
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)  # moto reads it again
    return body


class HarnessApp:
    def __init__(self, moto_app):
        self.moto_app = moto_app
        self.log = CallLog()
        self.faults = Faults()
        self.holds = Holds()
        self.throttles = Throttles()

    def _entry(self, environ, service, action, params, status, data=b"", **extra) -> dict:
        entry = {"time": time.time(), "service": service, "action": action, "params": params,
                 "status": status, "accepted": status is not None and status < 400,
                 "error": error_of(status, data),
                 "source": classify_source(environ.get("HTTP_USER_AGENT", "")),
                 "access_key": _access_key(environ),
                 # Whether temporary credentials' token came along (never the token itself).
                 "session_token": bool(environ.get("HTTP_X_AMZ_SECURITY_TOKEN")), **extra}
        self.log.add(entry)
        return entry

    def _moto_crashed(self, environ, start_response, service, action, params, e) -> list[bytes]:
        """moto raised instead of answering: werkzeug would log a traceback nobody reads and the
        client would retry blind. AWS answers 500 InternalFailure; the call log keeps the cause
        (`moto_errors()` lists them, and the Terraform harness prints them when a run fails)."""
        log.exception("moto raised on %s:%s", service, action)
        rule = {"status": 500, "code": "InternalFailure", "message": "moto raised (harness)"}
        status, headers, data = error_response(service, environ, rule)
        start_response(status, headers)
        self._entry(environ, service, action, params, 500, data, fault="moto-raised",
                    exception=f"{type(e).__name__}: {e}"[:500])
        return [data]

    def moto_errors(self) -> list[dict]:
        """Calls moto raised on (see `_moto_crashed`)."""
        return [c for c in self.log.entries() if c.get("fault") == "moto-raised"]

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_harness"):
            return admin.handle(self, environ, start_response)
        body = _read_body(environ)
        aws_call = not path.startswith("/moto-api")
        hold = None
        if aws_call:
            service, action, params = describe_call(environ, body)
            hold = self.holds.take(service, action, params)
            if hold and hold.when in ("before", "drop"):
                hold.call = {"service": service, "action": action, "params": params}
                hold.arrived.set()
                hold.released.wait(hold.limit)
                if hold.when == "drop":
                    rule = {"status": 503, "code": "ServiceUnavailable",
                            "message": "dropped by the ecs-boot harness before moto saw it"}
                    status, headers, data = error_response(service, environ, rule)
                    start_response(status, headers)
                    self._entry(environ, service, action, params, 503, data, fault="dropped")
                    return [data]
            source = classify_source(environ.get("HTTP_USER_AGENT", ""))
            refused = self.throttles.refuse(service, action, source)
            if refused:  # over the account's rate: AWS answers before doing anything
                status, headers, data = error_response(service, environ, refused)
                start_response(status, headers)
                self._entry(environ, service, action, params, 400, data, fault="throttled")
                return [data]
            fault = self.faults.take(service, action, source)
            if fault and fault["delay"]:
                time.sleep(fault["delay"])  # outside the lock: other calls go on meanwhile
            if fault and fault["status"]:
                status, headers, data = error_response(service, environ, fault)
                start_response(status, headers)
                self._entry(environ, service, action, params, int(fault["status"]), data,
                            fault=fault["code"])
                return [data]
            if fault and fault["stream_bytes"]:
                start_response("200 OK", [("Content-Type", "application/octet-stream")])
                self._entry(environ, service, action, params, 200, fault="stream")
                return _stream(fault, fault["stream_bytes"])
        status_holder = []

        def recording_start_response(status, headers, exc_info=None):
            status_holder.append(int(status.split()[0]))
            return start_response(status, headers, exc_info)

        with lifecycle.LOCK:
            # Materialise the response inside the lock: moto may do its work lazily.
            try:
                response = list(self.moto_app(environ, recording_start_response))
            except Exception as e:  # a moto bug: answer as AWS would, and make it visible
                if not aws_call or status_holder:
                    raise
                return self._moto_crashed(environ, start_response, service, action, params, e)
            refresh.step_all()  # a completed hook or a scaling call may let a refresh move on
            if path == "/moto-api/reset" and environ.get("REQUEST_METHOD") == "POST":
                lifecycle.reset()
                refresh.reset()
                self.log.clear()
                self.faults.clear()
                self.holds.clear()
                self.throttles.clear()
        if aws_call:
            entry = self._entry(environ, service, action, params,
                                status_holder[0] if status_holder else None,
                                b"".join(response), **({"held": True} if hold else {}))
            if hold and hold.when == "after":
                # moto has acted; the client hears nothing until the test releases the answer.
                hold.call = entry
                hold.arrived.set()
                hold.released.wait(hold.limit)
        return response
