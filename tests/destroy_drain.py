"""What a drained `terraform destroy` looks like at the emulator: the order of the calls
(DestroyOrder), and a stand-in for ecs-boot where no instance runs it (StandInDrainer).

A drained destroy (terraform/README.md "terraform destroy") shows, in the log's order: the drain's
UpdateAutoScalingGroup to capacity 0; for each instance UpdateContainerInstancesState DRAINING and
CompleteLifecycleAction CONTINUE on the terminate hook; only then DeleteLifecycleHook, the role's
DeleteRolePolicy calls, DeleteCapacityProvider and DeleteCluster. Indexes are positions in the
log (calls are logged as moto answers them, under one lock); None means the call never came.

    order = DestroyOrder(moto.calls(), {"asg": ..., "terminate_hook": ..., "role_name": ...,
                                        "cluster": ...})
    assert order.scaled_to_zero() < order.terminate_completed("i-...") < order.deletions()[...]
"""

from __future__ import annotations

import threading
import time

from harness import lifecycle
from harness.tf_fleet import forget_terminated

# The module's inline policies on the instance role (terraform/iam.tf).
ROLE_POLICIES = ("ecs-instance", "ssm-instance", "ecs-boot", "host-logs")


class DestroyOrder:
    def __init__(self, calls: list[dict], out: dict):
        self.calls = [c for c in calls if c["accepted"]]
        self.out = out

    def _first(self, service: str, action: str, match=lambda params: True) -> int | None:
        return next((i for i, c in enumerate(self.calls)
                     if c["service"] == service and c["action"] == action and match(c["params"])),
                    None)

    def scaled_to_zero(self) -> int | None:
        """The drain's (or the provider's) UpdateAutoScalingGroup to desired capacity 0."""
        return self._first("autoscaling", "UpdateAutoScalingGroup", lambda p: (
            p.get("AutoScalingGroupName") == self.out["asg"] and p.get("DesiredCapacity") == "0"))

    def draining(self, container_instance_arn: str) -> int | None:
        short = container_instance_arn.rsplit("/", 1)[-1]
        return self._first("ecs", "UpdateContainerInstancesState", lambda p: (
            p.get("status") == "DRAINING"
            and ({container_instance_arn, short} & set(p.get("containerInstances") or []))))

    def terminate_completed(self, instance_id: str, result: str = "CONTINUE") -> int | None:
        return self._first("autoscaling", "CompleteLifecycleAction", lambda p: (
            p.get("AutoScalingGroupName") == self.out["asg"]
            and p.get("LifecycleHookName") == self.out["terminate_hook"]
            and p.get("InstanceId") == instance_id and p.get("LifecycleActionResult") == result))

    def deletions(self) -> dict[str, int | None]:
        """What the draining instances use, and where it was deleted (the first policy counts,
        and every policy must have been deleted)."""
        policies = {name: self._first("iam", "DeleteRolePolicy", lambda p, n=name: (
            p.get("RoleName") == self.out["role_name"] and p.get("PolicyName") == n))
            for name in ROLE_POLICIES}
        cluster = self.out["cluster"]
        return {
            "the terminate hook": self._first("autoscaling", "DeleteLifecycleHook", lambda p: (
                p.get("LifecycleHookName") == self.out["terminate_hook"])),
            "the instance role's policies": (None if None in policies.values()
                                             else min(policies.values())),
            "the capacity provider": self._first("ecs", "DeleteCapacityProvider"),
            "the cluster": self._first("ecs", "DeleteCluster", lambda p: (
                str(p.get("cluster", "")).rsplit("/", 1)[-1] == cluster)),
        }

    def summary(self) -> list[tuple]:
        """The calls that matter here, with their index, for failure messages."""
        keep = {"UpdateAutoScalingGroup", "SetInstanceProtection", "UpdateContainerInstancesState",
                "CompleteLifecycleAction", "DeleteLifecycleHook", "DeleteRolePolicy",
                "DeleteCapacityProvider", "DeleteCluster", "DeleteAutoScalingGroup"}
        return [(i, c["action"], c["params"].get("InstanceId") or c["params"].get("PolicyName")
                 or c["params"].get("LifecycleHookName") or c["params"].get("status"))
                for i, c in enumerate(self.calls) if c["action"] in keep]


class StandInDrainer:
    """Completes every terminate lifecycle action of one group with CONTINUE through the API,
    `delay` seconds after it began, as ecs-boot would after its drain; and drops terminated
    instances from the group, as AWS does (the harness keeps them for tests to read).

        with StandInDrainer(moto, "web") as drainer:
            root.destroy()
        assert drainer.completed == [...]
    """

    def __init__(self, moto, asg: str, delay: float = 0.5):
        self.asg, self.delay = asg, delay
        self.client = moto.client("autoscaling")
        self.completed: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        seen: dict[str, float] = {}
        while not self._stop.is_set():
            for action in lifecycle.actions():
                if action["asg"] != self.asg or action["wait_state"] != "Terminating:Wait":
                    continue
                first = seen.setdefault(action["token"], time.monotonic())
                if time.monotonic() - first < self.delay:
                    continue
                self.client.complete_lifecycle_action(
                    AutoScalingGroupName=self.asg, LifecycleHookName=action["hook"],
                    InstanceId=action["instance"], LifecycleActionResult="CONTINUE")
                self.completed.append(action["instance"])
            forget_terminated(self.asg)
            time.sleep(0.1)

    def __enter__(self) -> "StandInDrainer":
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
