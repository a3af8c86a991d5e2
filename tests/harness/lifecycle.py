"""Auto Scaling lifecycle hooks on top of moto's in-process state.

moto 5.2.1 stores hooks but never uses them: every instance is InService, terminations are
immediate and CompleteLifecycleAction does not exist (docs/aws-facts.md §10). This module keeps the
pending lifecycle actions (one per instance and hook, like AWS), their heartbeat timers and a log
of completions, and moves moto's InstanceState objects through the Wait states.

Everything that touches moto state holds LOCK: the WSGI wrapper in calllog.py takes it around
every request, and the timer threads take it too, so a timeout never races a request.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

from moto.autoscaling.models import autoscaling_backends
from moto.core import DEFAULT_ACCOUNT_ID

LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
WAIT_TRANSITIONS = {
    "Pending:Wait": LAUNCHING,
    "Warmed:Pending:Wait": LAUNCHING,
    "Terminating:Wait": TERMINATING,
}
# States that count towards desired capacity (moto only counts InService, which would make it
# launch extra instances while one waits on its launch hook).
CAPACITY_STATES = {"Pending", "Pending:Wait", "Pending:Proceed", "InService"}

LOCK = threading.RLock()

Listener = Callable[[str, str, str], None]  # (asg, instance_id, new lifecycle state)


class NoActiveAction(Exception):
    """Raised for the AWS 400 ValidationError 'No active Lifecycle Action found ...'."""


@dataclass
class Action:
    region: str
    asg: str
    instance_id: str
    hook: str
    transition: str
    wait_state: str
    heartbeat_timeout: float
    default_result: str
    token: str = field(default_factory=lambda: str(uuid.uuid4()))
    deadline: float = 0.0
    timer: threading.Timer | None = None

    def describe(self) -> dict:
        return {
            "asg": self.asg,
            "instance": self.instance_id,
            "hook": self.hook,
            "transition": self.transition,
            "wait_state": self.wait_state,
            "token": self.token,
            "heartbeat_timeout": self.heartbeat_timeout,
            "default_result": self.default_result,
            "seconds_left": max(0.0, round(self.deadline - time.monotonic(), 3)),
        }


_actions: dict[str, Action] = {}  # by token
_completions: list[dict] = []
_listeners: list[Listener] = []


def backend(region: str):
    return autoscaling_backends[DEFAULT_ACCOUNT_ID][region]


def hooks_for(backend_, asg: str, transition: str) -> list:
    return [
        h
        for h in backend_.lifecycle_hooks.values()
        if h.auto_scaling_group_name == asg and h.lifecycle_transition == transition
    ]


def find_state(region: str, asg: str, instance_id: str):
    group = backend(region).autoscaling_groups.get(asg)
    for state in group.instance_states if group else []:
        if state.instance.id == instance_id:
            return state
    return None


def add_listener(listener: Listener) -> None:
    """Called on every lifecycle state change the harness makes (e.g. to update fake IMDS)."""
    with LOCK:
        _listeners.append(listener)


def _set(state, new_state: str) -> None:
    state.lifecycle_state = new_state
    for listener in list(_listeners):
        listener(state.auto_scaling_group_name, state.instance.id, new_state)


def _arm(action: Action) -> None:
    if action.timer:
        action.timer.cancel()
    action.deadline = time.monotonic() + action.heartbeat_timeout
    action.timer = threading.Timer(action.heartbeat_timeout, _on_timeout, (action.token,))
    action.timer.daemon = True
    action.timer.start()


def _on_timeout(token: str) -> None:
    with LOCK:
        action = _actions.get(token)
        if action is not None and action.deadline <= time.monotonic() + 0.01:
            _finish(action, action.default_result, source="timeout")


def begin_wait(state, wait_state: str) -> bool:
    """Put an instance into a Wait state with one action per matching hook.

    Returns False (and changes nothing) when the group has no hook for that transition, which is
    when AWS skips the Wait state altogether.
    """
    group = state.auto_scaling_group
    region = group.region
    hooks = hooks_for(backend(region), group.name, WAIT_TRANSITIONS[wait_state])
    if not hooks:
        return False
    with LOCK:
        _cancel_instance(state.instance.id)
        for hook in hooks:
            action = Action(
                region=region,
                asg=group.name,
                instance_id=state.instance.id,
                hook=hook.name,
                transition=hook.lifecycle_transition,
                wait_state=wait_state,
                heartbeat_timeout=float(hook.heartbeat_timeout),
                default_result=hook.default_result,
            )
            _actions[action.token] = action
            _arm(action)
        _set(state, wait_state)
    return True


def _match(region, asg, hook, instance_id, token) -> Action:
    for action in _actions.values():
        if action.region != region or action.asg != asg or action.hook != hook:
            continue
        if (token and action.token == token) or (not token and action.instance_id == instance_id):
            return action
    what = f"token {token}" if token else f"instance ID {instance_id}"
    raise NoActiveAction(f"No active Lifecycle Action found with {what}")


def complete(region, asg, hook, result, instance_id=None, token=None, source="api") -> Action:
    """CompleteLifecycleAction. Raises NoActiveAction when nothing is waiting."""
    with LOCK:
        action = _match(region, asg, hook, instance_id, token)
        _finish(action, result, source)
        return action


def heartbeat(region, asg, hook, instance_id=None, token=None) -> Action:
    """RecordLifecycleActionHeartbeat: restart the timer for a full HeartbeatTimeout."""
    with LOCK:
        action = _match(region, asg, hook, instance_id, token)
        _arm(action)
        return action


def _finish(action: Action, result: str, source: str) -> None:
    if action.timer:
        action.timer.cancel()
    _actions.pop(action.token, None)
    _completions.append(
        {
            "asg": action.asg,
            "instance": action.instance_id,
            "hook": action.hook,
            "transition": action.transition,
            "result": result,
            "source": source,  # "api", "timeout" or "admin"
            "time": time.time(),
        }
    )
    state = find_state(action.region, action.asg, action.instance_id)
    if state is None:
        return
    if result == "ABANDON":
        # ABANDON ends the instance (launch) or skips the remaining hooks (terminate).
        terminate(state)
        return
    if any(a.instance_id == action.instance_id for a in _actions.values()):
        return  # other hooks still running in parallel; AWS waits for all of them
    if action.wait_state == "Pending:Wait":
        _set(state, "InService")
    elif action.wait_state == "Warmed:Pending:Wait":
        pool = state.auto_scaling_group.warm_pool
        _set(state, f"Warmed:{pool.pool_state if pool else 'Stopped'}")
    else:
        terminate(state)


def terminate(state) -> None:
    """End an instance: Terminated in the group, terminated in EC2.

    The state stays in the group (excluded from capacity) so tests can still read "Terminated";
    AWS drops it after a while. No replacement is launched: with a small heartbeat timeout and
    DefaultResult=ABANDON that would loop forever in a test.
    """
    with LOCK:
        _cancel_instance(state.instance.id)
        state.auto_scaling_group.autoscaling_backend.ec2_backend.terminate_instances(
            [state.instance.id]
        )
        _set(state, "Terminated")


def set_state(region: str, asg: str, instance_id: str, new_state: str) -> None:
    """Admin: force a lifecycle state. Wait states start fresh actions (a hook must exist)."""
    with LOCK:
        state = find_state(region, asg, instance_id)
        if state is None:
            raise KeyError(f"instance {instance_id} is not in group {asg}")
        if new_state in WAIT_TRANSITIONS:
            if not begin_wait(state, new_state):
                raise ValueError(f"group {asg} has no {WAIT_TRANSITIONS[new_state]} hook")
        elif new_state == "Terminated":
            terminate(state)
        else:
            _cancel_instance(instance_id)
            _set(state, new_state)


def _cancel_instance(instance_id: str) -> None:
    for token, action in list(_actions.items()):
        if action.instance_id == instance_id:
            if action.timer:
                action.timer.cancel()
            del _actions[token]


def actions(instance_id: str | None = None) -> list[dict]:
    with LOCK:
        return [
            a.describe() for a in _actions.values() if instance_id in (None, a.instance_id)
        ]


def completions() -> list[dict]:
    with LOCK:
        return list(_completions)


def reset() -> None:
    """Forget everything; called on moto reset so no timer fires into a fresh test."""
    with LOCK:
        for action in _actions.values():
            if action.timer:
                action.timer.cancel()
        _actions.clear()
        _completions.clear()
        _listeners.clear()
