"""Auto Scaling instance refresh on top of moto's in-process state (moto 5.2.1 has none of it).

Start/Describe/Cancel/RollbackInstanceRefresh are added to moto's AutoScalingResponse by
`install()`, like lifecycle.py's CompleteLifecycleAction. A refresh replaces instances in batches
that honour MinHealthyPercentage/MaxHealthyPercentage, pauses at checkpoints, launches replacements
from the DesiredConfiguration through the group's lifecycle hooks (Pending:Wait) and terminates the
old ones through them (Terminating:Wait), and rolls back (by API or AutoRollback) by the same
engine with the previous configuration as its target.

Nothing moves by itself between events: `step_all()` runs after every request the harness serves
(calllog.HarnessApp), on `advance(seconds)` of the harness clock, and every TICK seconds from a
background thread (lifecycle timeouts, real-time warm-up). Time-based rules (InstanceWarmup,
CheckpointDelay, BakeTime) read CLOCK, which tests advance: no test waits for real time.

State table of one refresh (→ next status):

    Pending            first step                               → InProgress
    InProgress         all replaced, ready, BakeTime > 0         → Baking
                       all replaced, ready (or last checkpoint   → Successful (group takes the
                       < 100 % reached and its delay passed)        DesiredConfiguration)
                       a replacement left service unready        → Failed, or with AutoRollback
                       (launch hook ABANDON, heartbeat timeout)     → RollbackInProgress
                       CancelInstanceRefresh                     → Cancelling (in-flight work)
                                                                   or Cancelled
                       RollbackInstanceRefresh                   → RollbackInProgress
    Baking             BakeTime passed                           → Successful
    RollbackInProgress all back on the previous configuration    → RollbackSuccessful
                       a rollback replacement left service       → RollbackFailed
                       CancelInstanceRefresh                     → Cancelling / Cancelled
    Cancelling         no launch or termination in flight        → Cancelled

Everything holds lifecycle.LOCK (taken by the WSGI wrapper around every request).
"""

from __future__ import annotations

import datetime
import math
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field

from moto.autoscaling.exceptions import AutoscalingClientError, ValidationError
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult

from . import lifecycle

ACTIVE = ("Pending", "InProgress", "Baking", "Cancelling", "RollbackInProgress")
ROLLING_BACK_ALLOWED = ("Pending", "InProgress", "Baking")
TERMINATING = ("Terminating", "Terminating:Wait", "Terminating:Proceed")
FLOATING_VERSIONS = ("$latest", "$default")
SSM_IMAGE_PREFIX = "resolve:ssm:"
TICK = 0.2  # seconds between background steps


class InstanceRefreshInProgress(AutoscalingClientError):
    code = "InstanceRefreshInProgress"


class ActiveInstanceRefreshNotFound(AutoscalingClientError):
    code = "ActiveInstanceRefreshNotFound"


class IrreversibleInstanceRefresh(AutoscalingClientError):
    code = "IrreversibleInstanceRefresh"


class Clock:
    """Real monotonic time plus whatever the tests added with advance()."""

    def __init__(self):
        self.offset = 0.0

    def now(self) -> float:
        return time.monotonic() + self.offset


CLOCK = Clock()


@dataclass(frozen=True)
class Config:
    """A launch template as a refresh targets it: id, the version as given, and that version's
    number and image when the refresh began."""

    template_id: str
    template_name: str
    version: str  # as given: "3", "$Latest", "$Default"
    number: int
    image_id: str

    def spec(self) -> dict:
        return {"LaunchTemplateId": self.template_id, "LaunchTemplateName": self.template_name,
                "Version": self.version}

    def matches(self, state) -> bool:
        tags = {t["key"]: t["value"] for t in state.instance.get_tags()}
        return (tags.get("aws:ec2launchtemplate:id") == self.template_id
                and tags.get("aws:ec2launchtemplate:version") == str(self.number))

    def floating(self) -> bool:
        return self.version.lower() in FLOATING_VERSIONS


@dataclass
class Phase:
    """One pass over the group towards `target`: the refresh itself, or its rollback."""

    target: Config
    old: list[str]  # instances to replace, in order
    total: int  # replacements this pass makes (old plus any missing capacity)
    new: list[str] = field(default_factory=list)  # launched by this pass
    in_service_at: dict[str, float] = field(default_factory=dict)
    ready: set[str] = field(default_factory=set)  # in service and warmed up
    terminations: int = 0  # old instances sent into termination


@dataclass
class Refresh:
    id: str
    region: str
    asg: str
    preferences: dict
    desired: dict | None
    previous: Config
    phase: Phase
    strategy: str = "Rolling"
    status: str = "Pending"
    reason: str | None = None
    start_time: datetime.datetime = field(default_factory=lambda: _utcnow())
    end_time: datetime.datetime | None = None
    checkpoint: int = 0  # index of the next checkpoint in CheckpointPercentages
    paused_until: float | None = None
    bake_until: float | None = None
    wait_for_transitions: bool = True
    refresh_phase: Phase | None = None  # kept for PercentageComplete during a rollback
    rollback: dict | None = None  # RollbackReason, RollbackStartTime, ...


_refreshes: list[Refresh] = []
_ticker: threading.Thread | None = None


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _group(region: str, asg: str):
    return lifecycle.backend(region).autoscaling_groups.get(asg)


def _config(group, template_id: str | None = None, template_name: str | None = None,
            version: str | None = None) -> Config:
    ec2 = group.autoscaling_backend.ec2_backend
    if template_id or template_name:
        template = (ec2.get_launch_template(template_id) if template_id
                    else ec2.get_launch_template_by_name(template_name))
    else:
        template = group.ec2_launch_template
        version = group.provided_launch_template_version or group.launch_template_version
    if template is None:
        raise ValidationError("The harness's instance refresh needs a group with a launch "
                              "template (launch configurations and mixed instances policies "
                              "are not emulated)")
    version = str(version or "$Default")
    resolved = template.get_version(version)
    return Config(template.id, template.name, version, int(resolved.number),
                  str(resolved.image_id or ""))


def _state_map(group) -> dict:
    return {s.instance.id: s for s in group.instance_states}


def _live(state) -> bool:
    return state is not None and state.lifecycle_state in lifecycle.CAPACITY_STATES


# --- preferences ------------------------------------------------------------------------------


def _preferences(group, given: dict | None) -> dict:
    """Validated preferences with AWS's defaults filled in (API defaults, not the console's)."""
    p = dict(given or {})
    if "MaxHealthyPercentage" in p and "MinHealthyPercentage" not in p:
        raise ValidationError("MinHealthyPercentage is required when MaxHealthyPercentage is set")
    low, high = int(p.get("MinHealthyPercentage", 90)), int(p.get("MaxHealthyPercentage", 100))
    if not 0 <= low <= 100 or not 100 <= high <= 200:
        raise ValidationError("MinHealthyPercentage must be 0-100 and MaxHealthyPercentage "
                              "100-200")
    if high - low > 100:
        raise ValidationError("The difference between MaxHealthyPercentage and "
                              "MinHealthyPercentage cannot be greater than 100")
    if low == 100 and high == 100:
        raise ValidationError("MinHealthyPercentage and MaxHealthyPercentage cannot both be 100")
    checkpoints = [int(c) for c in p.get("CheckpointPercentages") or []]
    if checkpoints != sorted(set(checkpoints)) or any(not 1 <= c <= 100 for c in checkpoints):
        raise ValidationError("CheckpointPercentages must be unique, ascending, 1-100")
    if "CheckpointDelay" in p and not checkpoints:
        raise ValidationError("CheckpointDelay requires CheckpointPercentages")
    warmup = p.get("InstanceWarmup")
    if warmup is None:
        warmup = group.default_instance_warmup or group.health_check_period or 0
    return {**p, "MinHealthyPercentage": low, "MaxHealthyPercentage": high,
            "CheckpointPercentages": checkpoints,
            "CheckpointDelay": int(p.get("CheckpointDelay", 3600)) if checkpoints else None,
            "InstanceWarmup": int(warmup), "SkipMatching": bool(p.get("SkipMatching", False)),
            "AutoRollback": bool(p.get("AutoRollback", False)),
            "BakeTime": int(p.get("BakeTime", 0))}


def irreversible_reason(refresh_desired: dict | None, previous: Config,
                        desired: Config | None) -> str | None:
    """Why AWS refuses to roll this refresh back, or None (RollbackInstanceRefresh docs)."""
    if not refresh_desired:
        return "the instance refresh has no desired configuration"
    for what, config in (("desired configuration", desired), ("group", previous)):
        if config.floating():
            return f"the {what} uses the launch template version {config.version}"
        if config.image_id.startswith(SSM_IMAGE_PREFIX):
            return (f"the {what}'s launch template takes its image id from a Systems Manager "
                    "parameter")
    return None


# --- API --------------------------------------------------------------------------------------


def start(region: str, asg: str, strategy: str | None, desired: dict | None,
          preferences: dict | None) -> Refresh:
    group = _group(region, asg)
    if group is None:
        raise ValidationError(f"AutoScalingGroup name not found - {asg}")
    if any(r.asg == asg and r.region == region and r.status in ACTIVE for r in _refreshes):
        raise InstanceRefreshInProgress(f"An Instance Refresh is already in progress and blocks "
                                        f"the execution of this Instance Refresh for {asg}.")
    if strategy not in (None, "Rolling"):
        raise ValidationError(f"The harness emulates only the Rolling strategy, not {strategy}")
    if desired and set(desired) - {"LaunchTemplate"}:
        raise ValidationError("The harness emulates DesiredConfiguration.LaunchTemplate only")
    prefs = _preferences(group, preferences)
    previous = _config(group)
    target = previous
    if desired:
        spec = desired["LaunchTemplate"]
        target = _config(group, spec.get("LaunchTemplateId"), spec.get("LaunchTemplateName"),
                         spec.get("Version"))
    if prefs["AutoRollback"]:
        if not desired:  # AWS's words (terraform-provider-aws#29830)
            raise ValidationError("The request isn't valid. The AutoRollback parameter cannot be "
                                  "set to true when the DesiredConfiguration parameter is empty. "
                                  "Set AutoRollback to false or specify a desired configuration "
                                  "and try again.")
        why = irreversible_reason(desired, previous, target)
        if why:
            raise ValidationError(f"The request isn't valid. AutoRollback is not supported: "
                                  f"{why}")
    states = [s for s in group.instance_states if _live(s)]
    if prefs["SkipMatching"]:
        states = [s for s in states if not target.matches(s)]
    old = [s.instance.id for s in states]
    refresh = Refresh(id=str(uuid.uuid4()), region=region, asg=asg, preferences=prefs,
                      desired=desired, previous=previous, phase=Phase(target, old, len(old)),
                      strategy="Rolling")
    _refreshes.append(refresh)
    _ensure_ticker()
    return refresh


def _active(region: str, asg: str, statuses=ACTIVE) -> Refresh:
    for refresh in reversed(_refreshes):
        if refresh.region == region and refresh.asg == asg and refresh.status in statuses:
            return refresh
    raise ActiveInstanceRefreshNotFound(f"No in progress or pending Instance Refresh found for "
                                        f"Auto Scaling group {asg}")


def cancel(region: str, asg: str, wait_for_transitions: bool = True) -> Refresh:
    refresh = _active(region, asg, ("Pending", "InProgress", "Baking", "RollbackInProgress"))
    refresh.status = "Cancelling"
    refresh.wait_for_transitions = wait_for_transitions
    refresh.reason = "Cancellation requested"
    _step(refresh)
    return refresh


def rollback(region: str, asg: str, reason: str = "Rollback requested by user") -> Refresh:
    refresh = _active(region, asg, ROLLING_BACK_ALLOWED)
    why = irreversible_reason(refresh.desired, refresh.previous,
                              refresh.phase.target if refresh.desired else None)
    if why:
        raise IrreversibleInstanceRefresh(f"Cannot roll back: {why}")
    _begin_rollback(refresh, reason)
    return refresh


def describe(region: str, asg: str, ids: list[str] | None = None) -> list[Refresh]:
    """Newest first, like AWS."""
    return [r for r in reversed(_refreshes)
            if r.region == region and r.asg == asg and (not ids or r.id in ids)]


# --- the engine -------------------------------------------------------------------------------


def step_all() -> None:
    with lifecycle.LOCK:
        for refresh in list(_refreshes):
            if refresh.status in ACTIVE:
                try:
                    _step(refresh)
                except Exception as err:  # noqa: BLE001 - an emulator bug must show, not hang
                    traceback.print_exc()
                    _end(refresh, "Failed", f"harness error: {type(err).__name__}: {err}")


def advance(seconds: float) -> None:
    """Move the harness clock forward (warm-up, checkpoint delay, bake time) and step."""
    with lifecycle.LOCK:
        CLOCK.offset += float(seconds)
        step_all()


def _step(refresh: Refresh) -> None:
    group = _group(refresh.region, refresh.asg)
    if group is None:  # deleted under the refresh (e.g. terraform destroy with force_delete)
        _end(refresh, "Cancelled", "The Auto Scaling group was deleted")
        return
    now = CLOCK.now()
    if refresh.status == "Pending":
        refresh.status, refresh.reason = "InProgress", None
    if refresh.status == "Baking":
        if now >= refresh.bake_until:
            _succeed(refresh, group)
        return
    _track_new(refresh, group, now)
    if refresh.status == "Cancelling":
        if not refresh.wait_for_transitions or not _in_flight(refresh.phase, group):
            _end(refresh, "Cancelled", refresh.reason)
        return
    if refresh.status in ("InProgress", "RollbackInProgress"):
        _advance_phase(refresh, group, now)


def _track_new(refresh: Refresh, group, now: float) -> None:
    """Warm-up bookkeeping; a replacement that leaves service before it is ready fails the
    pass (a launch hook ABANDON or heartbeat timeout terminates it)."""
    phase, states = refresh.phase, _state_map(group)
    for iid in phase.new:
        state = states.get(iid)
        if iid in phase.ready:
            continue
        if not _live(state):
            _fail(refresh, f"Instance {iid} failed to launch: it was terminated before it "
                           "came into service (lifecycle action ABANDON or timeout)")
            return
        if state.lifecycle_state == "InService":
            phase.in_service_at.setdefault(iid, now)
            if now >= phase.in_service_at[iid] + refresh.preferences["InstanceWarmup"]:
                phase.ready.add(iid)


def _in_flight(phase: Phase, group) -> list[str]:
    states = _state_map(group)
    going = [i for i in phase.old
             if states.get(i) is not None and states[i].lifecycle_state in TERMINATING]
    coming = [i for i in phase.new if i not in phase.ready and _live(states.get(i))]
    return going + coming


def _checkpoint_limit(refresh: Refresh) -> tuple[int, int | None]:
    """How many replacements this pass may start before the next checkpoint, and its %."""
    checkpoints = refresh.preferences["CheckpointPercentages"]
    total = refresh.phase.total
    if refresh.status != "InProgress" or refresh.checkpoint >= len(checkpoints):
        return total, None
    percent = checkpoints[refresh.checkpoint]
    return max(1, math.ceil(total * percent / 100 - 1e-9)), percent


def _advance_phase(refresh: Refresh, group, now: float) -> None:
    phase, prefs = refresh.phase, refresh.preferences
    if refresh.paused_until is not None:
        if now < refresh.paused_until:
            return
        refresh.paused_until, refresh.reason = None, None
    limit, checkpoint = _checkpoint_limit(refresh)
    in_flight = _in_flight(phase, group)
    if len(phase.ready) >= limit and not in_flight and checkpoint is not None:
        refresh.checkpoint += 1
        last = refresh.checkpoint >= len(prefs["CheckpointPercentages"])
        if checkpoint < 100:
            refresh.paused_until = now + prefs["CheckpointDelay"]
            refresh.reason = (f"Waiting at checkpoint {checkpoint}% for "
                              f"{prefs['CheckpointDelay']}s")
            if last:
                refresh.phase.total = len(phase.ready)  # nothing after the last checkpoint
            return
        limit, checkpoint = _checkpoint_limit(refresh)
    _start_replacements(refresh, group, limit)
    states = _state_map(group)
    old_live = [i for i in phase.old if _live(states.get(i))]
    done = len(phase.new) >= phase.total and not _in_flight(phase, group)
    if done and (not old_live or len(phase.ready) >= phase.total):
        if refresh.status == "RollbackInProgress":
            _end(refresh, "RollbackSuccessful", "The rollback restored the previous "
                                                "configuration")
        elif prefs["BakeTime"] > 0:
            refresh.status, refresh.bake_until = "Baking", now + prefs["BakeTime"]
        else:
            _succeed(refresh, group)


def _start_replacements(refresh: Refresh, group, limit: int) -> None:
    """Launch and terminate as far as the healthy percentages and the checkpoint allow.

    Healthy = InService and warmed up. Launches keep the group at or under MaxHealthyPercentage
    of desired; terminations keep healthy at or over MinHealthyPercentage, except that with
    nothing in flight one replacement always proceeds (AWS replaces at least one at a time)."""
    phase, prefs = refresh.phase, refresh.preferences
    desired = group.desired_capacity or 0
    min_count = math.ceil(desired * prefs["MinHealthyPercentage"] / 100 - 1e-9)
    max_count = max(desired, math.floor(desired * prefs["MaxHealthyPercentage"] / 100 + 1e-9))
    while True:
        states = _state_map(group)
        live = [s for s in group.instance_states if _live(s)]
        coming = {i for i in phase.new if i not in phase.ready}
        healthy = [s for s in live if s.lifecycle_state == "InService"
                   and s.instance.id not in coming]
        old_live = [i for i in phase.old if _live(states.get(i))]
        idle = not _in_flight(phase, group)
        if len(phase.new) < min(phase.total, limit) and len(live) < max_count:
            _launch(refresh, group)
        elif old_live and phase.terminations < limit and (len(healthy) - 1 >= min_count or idle):
            _terminate(states[old_live[0]])
            phase.terminations += 1
        else:
            return


def _launch(refresh: Refresh, group) -> None:
    """One replacement from the pass's target configuration, through the launch hooks."""
    target = refresh.phase.target  # moto_ext tags the instance with target.number
    ec2 = group.autoscaling_backend.ec2_backend
    saved = (group.ec2_launch_template, group.launch_template_version,
             group.provided_launch_template_version)
    before = {id(s) for s in group.instance_states}
    try:
        group.ec2_launch_template = ec2.get_launch_template(target.template_id)
        group.launch_template_version = group.provided_launch_template_version = \
            str(target.number)
        group.replace_autoscaling_group_instances(1, group.get_propagated_tags())
    finally:
        (group.ec2_launch_template, group.launch_template_version,
         group.provided_launch_template_version) = saved
    refresh.phase.new += [s.instance.id for s in group.instance_states if id(s) not in before]


def _terminate(state) -> None:
    if not lifecycle.begin_wait(state, "Terminating:Wait"):
        lifecycle.terminate(state)


def _fail(refresh: Refresh, reason: str) -> None:
    if refresh.status == "Cancelling":
        return  # a cancelled refresh no longer judges its replacements
    if refresh.status == "RollbackInProgress":
        _end(refresh, "RollbackFailed", reason)
    elif refresh.preferences["AutoRollback"]:
        _begin_rollback(refresh, f"Instance refresh failed: {reason}")
    else:
        _end(refresh, "Failed", reason)


def _begin_rollback(refresh: Refresh, reason: str) -> None:
    group = _group(refresh.region, refresh.asg)
    previous = refresh.previous
    live = [s for s in group.instance_states if _live(s)]
    old = [s.instance.id for s in live if not previous.matches(s)]
    missing = max(0, (group.desired_capacity or 0) - len(live))
    refresh.refresh_phase = refresh.phase
    refresh.phase = Phase(previous, old, len(old) + missing)
    refresh.status, refresh.reason = "RollbackInProgress", reason
    refresh.paused_until = refresh.bake_until = None
    refresh.rollback = {"RollbackReason": reason[:1023], "RollbackStartTime": _utcnow(),
                        "InstancesToUpdateOnRollback": len(old) + missing}
    _step(refresh)


def _succeed(refresh: Refresh, group) -> None:
    if refresh.desired:  # AWS updates the group once the refresh succeeds
        target = refresh.phase.target
        group.ec2_launch_template = group.autoscaling_backend.ec2_backend.get_launch_template(
            target.template_id)
        group.launch_template_version = target.version
        group.provided_launch_template_version = target.version
    _end(refresh, "Successful", None)


def _end(refresh: Refresh, status: str, reason: str | None) -> None:
    refresh.status, refresh.reason, refresh.end_time = status, reason, _utcnow()
    refresh.paused_until = None


# --- reporting --------------------------------------------------------------------------------


def _percent(done: int, total: int) -> int:
    return 100 if total == 0 else min(100, done * 100 // total)


def to_api(refresh: Refresh) -> dict:
    """The InstanceRefresh shape of DescribeInstanceRefreshes."""
    refreshed = refresh.refresh_phase or refresh.phase
    if refresh.rollback:
        group = _group(refresh.region, refresh.asg)
        states = _state_map(group) if group else {}
        still_new = [i for i in refreshed.ready if _live(states.get(i))]
        done, total = len(still_new), refreshed.total
    else:
        done, total = len(refreshed.ready), refreshed.total
    out = {
        "InstanceRefreshId": refresh.id, "AutoScalingGroupName": refresh.asg,
        "Status": refresh.status, "StartTime": refresh.start_time,
        "PercentageComplete": _percent(done, total),
        "InstancesToUpdate": max(0, total - done), "Strategy": refresh.strategy,
        "Preferences": {k: v for k, v in refresh.preferences.items()
                        if v is not None and not (k == "CheckpointPercentages" and not v)},
    }
    if refresh.reason:
        out["StatusReason"] = refresh.reason[:1023]
    if refresh.end_time:
        out["EndTime"] = refresh.end_time
    if refresh.desired:
        out["DesiredConfiguration"] = refresh.desired
    if refresh.rollback:
        phase = refresh.phase
        out["RollbackDetails"] = {
            **refresh.rollback,
            "PercentageCompleteOnRollback": _percent(len(phase.ready), phase.total),
            "InstancesToUpdateOnRollback": max(0, phase.total - len(phase.ready)),
        }
    return out


def details(refresh: Refresh) -> dict:
    """to_api() plus the emulator's bookkeeping, for the admin route (JSON-safe)."""
    api = to_api(refresh)
    phase = refresh.phase
    group = _group(refresh.region, refresh.asg)
    for key in ("StartTime", "EndTime"):
        if key in api:
            api[key] = api[key].isoformat()
    if "RollbackDetails" in api:
        api["RollbackDetails"]["RollbackStartTime"] = \
            api["RollbackDetails"]["RollbackStartTime"].isoformat()
    return {**api, "harness": {
        "target": phase.target.spec() | {"number": phase.target.number},
        "previous": refresh.previous.spec() | {"number": refresh.previous.number},
        "replacing": list(phase.old), "launched": list(phase.new),
        "ready": sorted(phase.ready),
        "in_flight": _in_flight(phase, group) if group else [],
        "checkpoint_seconds_left": None if refresh.paused_until is None
        else max(0.0, round(refresh.paused_until - CLOCK.now(), 3)),
    }}


def refreshes(asg: str | None = None, region: str = "us-east-1") -> list[dict]:
    with lifecycle.LOCK:
        return [details(r) for r in reversed(_refreshes)
                if r.region == region and asg in (None, r.asg)]


def reset() -> None:
    with lifecycle.LOCK:
        _refreshes.clear()
        CLOCK.offset = 0.0


def _ensure_ticker() -> None:
    global _ticker
    if _ticker is not None and _ticker.is_alive():
        return

    def loop():
        while True:
            time.sleep(TICK)
            try:
                step_all()
            except Exception:  # noqa: BLE001 - a bad step must not kill the ticker
                pass

    _ticker = threading.Thread(target=loop, name="instance-refresh-ticker", daemon=True)
    _ticker.start()


# --- moto AutoScalingResponse methods ----------------------------------------------------------


def start_instance_refresh(self):
    refresh = start(self.region, self._get_param("AutoScalingGroupName"),
                    self._get_param("Strategy"), self._get_param("DesiredConfiguration"),
                    self._get_param("Preferences"))
    return ActionResult({"InstanceRefreshId": refresh.id})


def describe_instance_refreshes(self):
    found = describe(self.region, self._get_param("AutoScalingGroupName"),
                     self._get_param("InstanceRefreshIds"))
    return ActionResult({"InstanceRefreshes": [to_api(r) for r in found]})


def cancel_instance_refresh(self):
    wait = self._get_param("WaitForTransitioningInstances")
    refresh = cancel(self.region, self._get_param("AutoScalingGroupName"),
                     True if wait is None else bool(wait))
    return ActionResult({"InstanceRefreshId": refresh.id})


def rollback_instance_refresh(self):
    refresh = rollback(self.region, self._get_param("AutoScalingGroupName"))
    return ActionResult({"InstanceRefreshId": refresh.id})


def install() -> None:
    AutoScalingResponse.start_instance_refresh = start_instance_refresh
    AutoScalingResponse.describe_instance_refreshes = describe_instance_refreshes
    AutoScalingResponse.cancel_instance_refresh = cancel_instance_refresh
    AutoScalingResponse.rollback_instance_refresh = rollback_instance_refresh
