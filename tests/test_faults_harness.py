"""The fault matrix's instruments, tested on their own: if one of these is blind, a matrix row
built on it can pass without proving anything.

The call log (refused calls with their error), held and dropped answers, a streamed answer with
no Content-Length, the oversize knobs of the fakes, the syscall-trace readers and the pause shim.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from harness import fstrace
from harness.shim import Pause
from harness.world import LAUNCH_HOOK

TTL = "X-aws-ec2-metadata-token-ttl-seconds"


def client_under_test(moto, service, attempts: int = 1):
    """Logged as source "client", like ecs-boot; no retries unless asked."""
    return boto3.client(service, endpoint_url=moto.url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=Config(retries={"total_max_attempts": attempts},
                                      s3={"addressing_style": "path"}))


def complete(asg_client, world, result="CONTINUE"):
    return asg_client.complete_lifecycle_action(
        AutoScalingGroupName=world.asg, LifecycleHookName=LAUNCH_HOOK,
        InstanceId=world.instance_id, LifecycleActionResult=result)


def test_call_log_keeps_a_refused_second_completion_with_its_error(moto, world):
    asg = client_under_test(moto, "autoscaling")
    complete(asg, world)
    with pytest.raises(ClientError):
        complete(asg, world)
    calls = moto.calls(action="CompleteLifecycleAction", source="client")
    assert [(c["status"], c["accepted"]) for c in calls] == [(200, True), (400, False)]
    assert calls[0]["error"] is None
    assert calls[1]["error"]["code"] == "ValidationError"
    assert "No active Lifecycle Action" in calls[1]["error"]["message"]
    assert calls[1]["params"]["LifecycleActionResult"] == "CONTINUE"


def test_call_log_records_injected_json_errors(moto, world):
    moto._admin("POST", "/faults", {"service": "ssm", "action": "GetParameter",
                                   "status": 400, "code": "AccessDeniedException"})
    with pytest.raises(ClientError):
        client_under_test(moto, "ssm").get_parameter(Name="/x")
    call = moto.calls(action="GetParameter")[-1]
    assert (call["accepted"], call["error"]["code"]) == (False, "AccessDeniedException")


def test_held_answer_comes_after_moto_acted(moto, world):
    asg = client_under_test(moto, "autoscaling")
    hold = moto.hold("autoscaling", "CompleteLifecycleAction")
    answered = threading.Event()
    thread = threading.Thread(target=lambda: (complete(asg, world), answered.set()))
    thread.start()
    call = hold.wait_arrived(10)
    assert call["accepted"] and call["held"]
    # Auto Scaling has acted, the client has heard nothing.
    assert moto.lifecycle_state(world.asg, world.instance_id) == "InService"
    time.sleep(0.3)
    assert not answered.is_set()
    hold.release()
    thread.join(10)
    assert answered.is_set()


def test_dropped_call_never_reaches_moto(moto, world):
    asg = client_under_test(moto, "autoscaling")
    hold = moto.hold("autoscaling", "CompleteLifecycleAction", when="drop")
    errors = []
    thread = threading.Thread(target=lambda: errors.append(
        pytest.raises(ClientError, complete, asg, world)))
    thread.start()
    hold.wait_arrived(10)
    hold.release()
    thread.join(10)
    assert errors
    assert moto.lifecycle_state(world.asg, world.instance_id) == "Pending:Wait"
    assert moto.calls(action="CompleteLifecycleAction")[-1]["fault"] == "dropped"


def test_streamed_answer_has_no_content_length_and_counts_what_went_out(moto, world):
    bucket, key = world.registry_auth[len("s3://"):].split("/", 1)
    moto._admin("POST", "/faults", {"service": "s3", "action": "GetObject",
                                   "stream_bytes": 4 * 1024 * 1024})
    answer = client_under_test(moto, "s3").get_object(Bucket=bucket, Key=key)
    assert "content-length" not in answer["ResponseMetadata"]["HTTPHeaders"]
    first = answer["Body"].read(65536)
    answer["Body"].close()
    assert first.startswith(b'{"auths"')
    time.sleep(0.5)
    sent = moto.app.faults.rules()[0]["sent"]
    assert 0 < sent < 4 * 1024 * 1024  # the client stopped early, and the harness knows


def test_imds_oversize_pads_json_answers_only(imds):
    h = {"X-aws-ec2-metadata-token": requests.put(imds.url + "/latest/api/token",
                                                  headers={TTL: "60"}).text}
    imds.set_oversize(1024 * 1024, path_prefix="/latest/dynamic")
    doc = requests.get(imds.url + "/latest/dynamic/instance-identity/document", headers=h)
    assert len(doc.content) > 1024 * 1024 and doc.json()["instanceId"]
    iid = requests.get(imds.url + "/latest/meta-data/instance-id", headers=h)
    assert iid.text == imds.identity["instanceId"]
    imds.clear_faults()
    assert len(requests.get(imds.url + "/latest/dynamic/instance-identity/document",
                            headers=h).content) < 4096


def test_fake_agent_oversize_tasks(fake_agent, world):
    agent = fake_agent(env={"ECS_CLUSTER": world.cluster}, wait_registered=True)
    agent.set_oversize_tasks(256 * 1024)
    tasks = agent.tasks()
    assert len(tasks) > 100 and all(t["KnownStatus"] == "RUNNING" for t in tasks)


WRITER = """
import os, sys
d = sys.argv[1]
def atomic(name, data):
    fd = os.open(f"{d}/.{name}.tmp", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, data); os.fsync(fd); os.close(fd)
    os.rename(f"{d}/.{name}.tmp", f"{d}/{name}")
    dfd = os.open(d, os.O_RDONLY); os.fsync(dfd); os.close(dfd)
def no_fsync(name, data):
    fd = os.open(f"{d}/.{name}.tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, data); os.close(fd)
    os.rename(f"{d}/.{name}.tmp", f"{d}/{name}")
def in_place(name, data):
    fd = os.open(f"{d}/{name}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, data); os.fsync(fd); os.close(fd)
atomic("good", b"good\\n"); no_fsync("lazy", b"lazy\\n"); in_place("naive", b"naive\\n")
"""


@pytest.fixture
def traced_writer(tmp_path):
    if not shutil.which("strace"):
        pytest.skip("no strace (apt-get install strace)")
    trace = tmp_path / "trace"
    data = tmp_path / "d"
    data.mkdir()
    (data / "naive").write_bytes(b"old\n")
    subprocess.run([*fstrace.STRACE_ARGV, "-o", str(trace), sys.executable, "-c", WRITER,
                    str(data)], check=True)
    return fstrace.parse(trace.read_text()), data


def test_trace_tells_atomic_durable_writes_from_the_rest(traced_writer):
    ops, d = traced_writer
    assert fstrace.atomic_write_problems(ops, str(d / "good")) == []
    lazy = fstrace.atomic_write_problems(ops, str(d / "lazy"))
    assert any("not fsynced" in p for p in lazy)
    assert any("directory not fsynced" in p for p in lazy)
    naive = fstrace.atomic_write_problems(ops, str(d / "naive"))
    assert any("opened for writing" in p for p in naive)


def test_power_loss_keeps_only_fsynced_data(traced_writer):
    ops, d = traced_writer
    image = fstrace.power_loss_image(ops, {str(d / "naive"): b"old\n"})
    assert image[str(d / "good")] == b"good\n"
    assert image[str(d / "lazy")] == b""        # renamed into place, data never synced
    assert image[str(d / "naive")] == b"naive\n"  # fsynced in place
    assert image[str(d / ".good.tmp")] is None


def test_shim_pauses_a_process_at_open_and_at_rename(tmp_path):
    if not shutil.which("gcc"):
        pytest.skip("no gcc (apt-get install gcc)")
    (tmp_path / "d").mkdir()
    for op in ("open", "rename"):
        pause = Pause(tmp_path, op, "good")
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path / "d")],
                                env={"PATH": "/usr/bin:/bin", **pause.env})
        where = pause.wait(proc, timeout=20)
        assert where.startswith(op) and "good" in where
        assert not (tmp_path / "d" / "good").exists()  # stopped before the file is in place
        pause.resume()
        assert proc.wait(20) == 0
        assert (tmp_path / "d" / "good").read_bytes() == b"good\n"
        (tmp_path / "d" / "good").unlink()
        (tmp_path / "d" / "naive").unlink(missing_ok=True)
