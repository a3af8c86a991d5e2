"""Account-level API rate limits, emulated: a token bucket per rule, shared by every caller.

AWS throttles each account per API (and region) with token buckets: a steady refill `rate` per
second and a `burst` of tokens that may be spent at once. For SSM Run Command (SendCommand,
ListCommandInvocations, GetCommandInvocation) and for the Auto Scaling and ECS calls ecs-boot
makes, AWS publishes no fixed figure (docs/aws-facts.md); the rates here are the harness's,
stated by whoever sets them (`bench/fleet_status.py --throttle`, the storm bench, a test).

A call beyond its bucket is refused before moto sees it, as AWS does: HTTP 400 with the
service's throttling code (`ThrottlingException` for the JSON protocols SSM and ECS, `Throttling`
"Rate exceeded" for Auto Scaling's query protocol). The call log records it with
`fault="throttled"`, so a test can count what was refused.

A rule: {"service": "ssm", "action": "SendCommand" (optional: every action of the service),
"rate": 5.0 (tokens per second), "burst": 10 (default: max(1, rate)), "source": "client"
(optional, as calllog.classify_source says)}. Rules match in order; the first whose service,
action and source fit decides.
"""

from __future__ import annotations

import threading
import time

# The code each protocol's SDKs classify as throttling (smithy's retry classifiers know both).
THROTTLING_CODE = {"autoscaling": "Throttling", "ec2": "RequestLimitExceeded"}
DEFAULT_CODE = "ThrottlingException"


class TokenBucket:
    def __init__(self, rate: float, burst: float, clock=time.monotonic):
        if rate <= 0:
            raise ValueError("rate must be > 0 tokens per second")
        if burst < 1:
            raise ValueError("burst must be ≥ 1")
        self.rate, self.burst, self._clock = float(rate), float(burst), clock
        self._tokens = float(burst)
        self._at = clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        """Spend one token if there is one; False means: throttle this call."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False


class Throttles:
    def __init__(self, clock=time.monotonic):
        self._lock = threading.Lock()
        self._rules: list[dict] = []
        self._clock = clock

    def add(self, rule: dict) -> dict:
        if not rule.get("service"):
            raise ValueError("a throttle needs a service")
        try:
            rate = float(rule["rate"])
        except (KeyError, TypeError, ValueError):
            raise ValueError("a throttle needs a rate (tokens per second)") from None
        burst = float(rule.get("burst") or max(1.0, rate))
        entry = {"service": rule["service"], "action": rule.get("action"),
                 "source": rule.get("source"), "rate": rate, "burst": burst,
                 "allowed": 0, "throttled": 0,
                 "bucket": TokenBucket(rate, burst, self._clock)}
        with self._lock:
            self._rules.append(entry)
        return _public(entry)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[dict]:
        with self._lock:
            return [_public(r) for r in self._rules]

    def refuse(self, service: str, action: str, source: str | None = None) -> dict | None:
        """The error rule for a call its bucket refuses, or None (let it through)."""
        with self._lock:
            rule = next((r for r in self._rules if r["service"] == service
                         and r["action"] in (None, action) and r["source"] in (None, source)),
                        None)
            if rule is None:
                return None
            if rule["bucket"].take():
                rule["allowed"] += 1
                return None
            rule["throttled"] += 1
        code = THROTTLING_CODE.get(service, DEFAULT_CODE)
        return {"status": 400, "code": code, "message": "Rate exceeded"}


def _public(rule: dict) -> dict:
    return {k: v for k, v in rule.items() if k != "bucket"}


def parse_rates(specs: list[str], defaults: dict[str, tuple[float, float]]
                ) -> dict[str, tuple[float, float]]:
    """Command-line rates, `KEY=RATE[/BURST]` each (KEY: an API or a service), over `defaults`;
    `none` alone: no throttling. Burst defaults to max(1, rate)."""
    if specs == ["none"]:
        return {}
    rates = dict(defaults)
    for spec in specs:
        key, _, value = spec.partition("=")
        rate, _, burst = value.partition("/")
        rates[key] = (float(rate), float(burst or max(1.0, float(rate))))
    return rates
