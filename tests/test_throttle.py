"""The harness's account-level rate limits (harness/throttle.py): a token bucket per rule, the
service's throttling error beyond it, every refused call in the call log."""

from __future__ import annotations

import json
import urllib.request

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from harness.throttle import Throttles, TokenBucket


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_bucket_spends_its_burst_then_refills_at_its_rate():
    clock = FakeClock()
    bucket = TokenBucket(rate=2, burst=3, clock=clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    clock.now += 0.4  # 0.8 of a token: still nothing
    assert not bucket.take()
    clock.now += 0.1  # one whole token
    assert bucket.take() and not bucket.take()
    clock.now += 60  # never more than the burst
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


def test_rules_match_service_action_and_source_in_order():
    clock = FakeClock()
    t = Throttles(clock=clock)
    t.add({"service": "ssm", "action": "SendCommand", "rate": 1, "burst": 1})
    t.add({"service": "ssm", "rate": 1, "burst": 2, "source": "client"})
    assert t.refuse("ssm", "SendCommand", "client") is None
    assert t.refuse("ssm", "SendCommand", "client")["code"] == "ThrottlingException"
    # Other SSM actions share the second bucket; the harness's own calls match no rule.
    assert t.refuse("ssm", "GetCommandInvocation", "client") is None
    assert t.refuse("ssm", "ListCommandInvocations", "client") is None
    assert t.refuse("ssm", "ListCommandInvocations", "client") is not None
    assert t.refuse("ssm", "ListCommandInvocations", "harness") is None
    assert t.refuse("ecs", "ListTasks", "client") is None
    assert [(r["allowed"], r["throttled"]) for r in t.rules()] == [(1, 1), (2, 1)]


@pytest.mark.parametrize("rule", [{"rate": 1}, {"service": "ssm"}, {"service": "ssm", "rate": 0},
                                  {"service": "ssm", "rate": 1, "burst": 0.5}])
def test_a_rule_without_a_service_or_a_positive_rate_is_refused(rule):
    with pytest.raises(ValueError):
        Throttles().add(rule)


def test_moto_answers_throttling_beyond_the_rate_and_logs_it(moto, world):
    # One attempt each: botocore would retry a throttled call by itself.
    config = Config(retries={"total_max_attempts": 1, "mode": "standard"})
    ssm, asg = (boto3.client(s, endpoint_url=moto.url, region_name="us-east-1",
                             aws_access_key_id="testing", aws_secret_access_key="testing",
                             config=config) for s in ("ssm", "autoscaling"))
    # A rate so low the bucket cannot refill within the test: exactly `burst` calls pass.
    moto.throttle("ssm", rate=0.001, burst=2, action="ListCommandInvocations")
    moto.throttle("autoscaling", rate=0.001, burst=1)
    ssm.list_command_invocations()
    ssm.list_command_invocations()
    with pytest.raises(ClientError) as err:
        ssm.list_command_invocations()
    assert err.value.response["Error"]["Code"] == "ThrottlingException"
    ssm.get_parameters(Names=["nothing"])  # another action: no rule, not throttled
    asg.describe_auto_scaling_groups()
    with pytest.raises(ClientError) as err:
        asg.describe_auto_scaling_groups()
    assert err.value.response["Error"]["Code"] == "Throttling"

    calls = moto.calls(service="ssm", action="ListCommandInvocations")
    assert [c.get("fault") for c in calls] == [None, None, "throttled"]
    assert calls[-1]["error"]["code"] == "ThrottlingException" and not calls[-1]["accepted"]
    assert [(r["allowed"], r["throttled"]) for r in moto.throttles()] == [(2, 1), (1, 1)]

    # Over HTTP for other processes, and gone after a reset.
    with urllib.request.urlopen(moto.admin_url + "/throttles") as resp:
        assert len(json.load(resp)["throttles"]) == 2
    moto.reset()
    assert moto.throttles() == []
    ssm.list_command_invocations()
    ssm.list_command_invocations()
    ssm.list_command_invocations()
