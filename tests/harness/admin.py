"""Harness admin routes under /_harness on moto's port, for shell demos and other processes.

JSON in, JSON out. The routes are listed in README.md; MotoServer has in-process equivalents.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

from . import lifecycle, refresh

REGION = "us-east-1"


def _json(start_response, status: int, body) -> list[bytes]:
    data = json.dumps(body).encode()
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}
    start_response(f"{status} {reason.get(status, 'Error')}",
                   [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def _body(environ) -> dict:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    return json.loads(raw) if raw.strip() else {}


def _lifecycle_get(query: dict) -> tuple[int, dict]:
    region = query.get("region", REGION)
    state = lifecycle.find_state(region, query.get("asg", ""), query.get("instance", ""))
    if state is None:
        return 404, {"error": "no such instance in that group"}
    return 200, {
        "asg": state.auto_scaling_group_name,
        "instance": state.instance.id,
        "state": state.lifecycle_state,
        "actions": lifecycle.actions(state.instance.id),
    }


def _missing(body: dict, *keys: str) -> tuple[int, dict] | None:
    absent = [k for k in keys if not body.get(k)]
    return (400, {"error": f"missing {', '.join(absent)}"}) if absent else None


def _lifecycle_set(body: dict) -> tuple[int, dict]:
    region = body.get("region", REGION)
    if error := _missing(body, "asg", "instance", "state"):
        return error
    try:
        lifecycle.set_state(region, body["asg"], body["instance"], body["state"])
    except KeyError as err:
        return 404, {"error": err.args[0]}
    except ValueError as err:
        return 400, {"error": str(err)}
    return _lifecycle_get({"region": region, "asg": body["asg"], "instance": body["instance"]})


def _complete(body: dict) -> tuple[int, dict]:
    """Complete an action as if someone else (an operator, ECS managed draining) had."""
    if error := _missing(body, "asg", "hook"):
        return error
    try:
        action = lifecycle.complete(
            body.get("region", REGION), body["asg"], body["hook"], body.get("result", "CONTINUE"),
            instance_id=body.get("instance"), token=body.get("token"), source="admin")
    except lifecycle.NoActiveAction as err:
        return 400, {"error": str(err)}
    return 200, action.describe()


def _advance(body: dict) -> tuple[int, dict]:
    try:
        seconds = float(body.get("seconds", 0))
    except (TypeError, ValueError):
        return 400, {"error": "seconds must be a number"}
    if seconds < 0:
        return 400, {"error": "the clock only moves forward"}
    refresh.advance(seconds)
    return 200, {"offset": refresh.CLOCK.offset, "refreshes": refresh.refreshes(
        body.get("asg"), body.get("region", REGION))}


def _add_fault(app, body: dict) -> tuple[int, dict]:
    try:
        return 200, app.faults.add(body)
    except ValueError as err:
        return 400, {"error": str(err)}


def _add_throttle(app, body: dict) -> tuple[int, dict]:
    try:
        return 200, app.throttles.add(body)
    except ValueError as err:
        return 400, {"error": str(err)}


def _add_hold(app, body: dict) -> tuple[int, dict]:
    try:
        return 200, app.holds.add(body).describe()
    except ValueError as err:
        return 400, {"error": str(err)}


def _release_hold(app, body: dict) -> tuple[int, dict]:
    hold = app.holds.get(int(body.get("id") or 0))
    if hold is None:
        return 404, {"error": f"no hold {body.get('id')}"}
    hold.release()
    return 200, hold.describe()


def handle(app, environ, start_response):
    method = environ.get("REQUEST_METHOD", "GET")
    path = environ.get("PATH_INFO", "")[len("/_harness"):].rstrip("/") or "/"
    query = dict(parse_qsl(environ.get("QUERY_STRING", "")))
    try:
        body = _body(environ) if method in ("POST", "PUT") else {}
    except ValueError:
        return _json(start_response, 400, {"error": "body is not JSON"})
    with lifecycle.LOCK:
        routes = {
            ("GET", "/health"): lambda: (200, {"ok": True}),
            ("GET", "/calls"): lambda: (200, {"calls": app.log.entries(
                service=query.get("service"), action=query.get("action"),
                source=query.get("source"))}),
            ("DELETE", "/calls"): lambda: (app.log.clear(), (200, {"ok": True}))[1],
            ("GET", "/lifecycle"): lambda: _lifecycle_get(query),
            ("POST", "/lifecycle"): lambda: _lifecycle_set(body),
            ("POST", "/lifecycle/complete"): lambda: (_complete(body), refresh.step_all())[0],
            ("GET", "/lifecycle/actions"): lambda: (200, {
                "actions": lifecycle.actions(query.get("instance"))}),
            ("GET", "/completions"): lambda: (200, {"completions": lifecycle.completions()}),
            ("POST", "/reset"): lambda: (lifecycle.reset(), refresh.reset(), app.log.clear(),
                                         app.faults.clear(), app.holds.clear(),
                                         app.throttles.clear(), (200, {"ok": True}))[6],
            ("GET", "/refresh"): lambda: (200, {"refreshes": refresh.refreshes(
                query.get("asg"), query.get("region", REGION))}),
            ("POST", "/refresh/advance"): lambda: _advance(body),
            ("GET", "/faults"): lambda: (200, {"faults": app.faults.rules()}),
            ("POST", "/faults"): lambda: _add_fault(app, body),
            ("DELETE", "/faults"): lambda: (app.faults.clear(), (200, {"ok": True}))[1],
            ("GET", "/throttles"): lambda: (200, {"throttles": app.throttles.rules()}),
            ("POST", "/throttles"): lambda: _add_throttle(app, body),
            ("DELETE", "/throttles"): lambda: (app.throttles.clear(), (200, {"ok": True}))[1],
            ("GET", "/holds"): lambda: (200, {"holds": [h.describe() for h in app.holds.all()]}),
            ("POST", "/holds"): lambda: _add_hold(app, body),
            ("POST", "/holds/release"): lambda: _release_hold(app, body),
            ("DELETE", "/holds"): lambda: (app.holds.clear(), (200, {"ok": True}))[1],
        }
        route = routes.get((method, path))
        if route is None:
            known = any(p == path for _, p in routes)
            return _json(start_response, 405 if known else 404, {"error": f"{method} {path}"})
        status, payload = route()
    return _json(start_response, status, payload)
