"""A WSGI wrapper around moto's app: logs every AWS call and serves the harness admin routes.

Wrapping the WSGI app (not BaseResponse.call_action) is what catches S3, whose responses do not go
through call_action. The wrapper also serialises requests with lifecycle.LOCK: moto is not
thread-safe and the lifecycle timers mutate the same objects.
"""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
from urllib.parse import parse_qsl

from . import admin, lifecycle

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
    of moto's answer. A rule matches on service and, if given, action (as in the call log)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._rules: list[dict] = []

    def add(self, rule: dict) -> dict:
        if not rule.get("service"):
            raise ValueError("a fault needs a service")
        if not rule.get("status") and not rule.get("delay"):
            raise ValueError("a fault needs a status or a delay")
        rule = {"service": rule["service"], "action": rule.get("action"),
                "count": rule.get("count"), "status": rule.get("status"),
                "code": rule.get("code") or "InternalError",
                "message": rule.get("message") or "injected by the ecs-boot harness",
                "delay": float(rule.get("delay") or 0), "hits": 0}
        with self._lock:
            self._rules.append(rule)
        return dict(rule)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self._rules]

    def take(self, service: str, action: str) -> dict | None:
        with self._lock:
            for rule in self._rules:
                if rule["service"] != service or rule["action"] not in (None, action):
                    continue
                if rule["count"] is not None and rule["hits"] >= rule["count"]:
                    continue
                rule["hits"] += 1
                return dict(rule)
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

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_harness"):
            return admin.handle(self, environ, start_response)
        body = _read_body(environ)
        if not path.startswith("/moto-api"):
            service, action, params = describe_call(environ, body)
            fault = self.faults.take(service, action)
            if fault and fault["delay"]:
                time.sleep(fault["delay"])  # outside the lock: other calls go on meanwhile
            if fault and fault["status"]:
                status, headers, data = error_response(service, environ, fault)
                start_response(status, headers)
                self.log.add({"time": time.time(), "service": service, "action": action,
                              "params": params, "status": int(fault["status"]),
                              "source": classify_source(environ.get("HTTP_USER_AGENT", "")),
                              "fault": fault["code"]})
                return [data]
        status_holder = []

        def recording_start_response(status, headers, exc_info=None):
            status_holder.append(int(status.split()[0]))
            return start_response(status, headers, exc_info)

        with lifecycle.LOCK:
            # Materialise the response inside the lock: moto may do its work lazily.
            response = list(self.moto_app(environ, recording_start_response))
            if path == "/moto-api/reset" and environ.get("REQUEST_METHOD") == "POST":
                lifecycle.reset()
                self.log.clear()
                self.faults.clear()
        if not path.startswith("/moto-api"):
            self.log.add({
                "time": time.time(),
                "service": service,
                "action": action,
                "params": params,
                "status": status_holder[0] if status_holder else None,
                "source": classify_source(environ.get("HTTP_USER_AGENT", "")),
            })
        return response
