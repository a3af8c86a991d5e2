#!/usr/bin/env python3
"""Run moto (with the harness extensions) and the fake IMDS in the foreground, for shell users.

    python3 tests/harness/up.py --dir /tmp/h --world demo &
    while [ ! -e /tmp/h/ready ]; do sleep 0.1; done
    . /tmp/h/env          # AWS_ENDPOINT_URL, AWS_EC2_METADATA_SERVICE_ENDPOINT, ...
    jq . /tmp/h/world.json

Writes DIR/env (shell-sourceable), DIR/world.json (with --world) and finally DIR/ready.
SIGTERM or SIGINT stops both servers and removes DIR/ready.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # make `harness` importable

from harness.imds import FakeImds  # noqa: E402
from harness.moto_ext import REGION, MotoServer  # noqa: E402
from harness.world import build_world, follow_lifecycle, trust_dropin  # noqa: E402


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dir", required=True, type=Path, help="where to write env, ready, world.json")
    p.add_argument("--moto-port", type=int, default=0, help="0 = any free port")
    p.add_argument("--imds-port", type=int, default=0, help="0 = any free port")
    p.add_argument("--world", metavar="NAME",
                   help="build a simulated launch named NAME (bucket, cluster, ASG, instance)")
    p.add_argument("--creds", choices=["s3", "ssm", "none"], default="s3",
                   help="where the world keeps registry credentials")
    p.add_argument("--heartbeat", type=int, default=30, help="lifecycle hook HeartbeatTimeout")
    p.add_argument("--default-result", choices=["ABANDON", "CONTINUE"], default="ABANDON",
                   help="launch hook DefaultResult")
    p.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE",
                   help="extra instance tag (world) or IMDS tag (no world); repeatable")
    p.add_argument("--instance-id", help="IMDS instance id when no --world is given")
    return p.parse_args(argv)


def write_env(path: Path, values: dict) -> None:
    lines = [f"export {k}={shlex.quote(str(v))}" for k, v in values.items()]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)


def main(argv=None) -> int:
    args = parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    ready = args.dir / "ready"
    ready.unlink(missing_ok=True)
    tags = dict(t.split("=", 1) for t in args.tag)

    moto = MotoServer(args.moto_port).start()
    imds = FakeImds(moto_url=moto.url, port=args.imds_port,
                    identity={"instanceId": args.instance_id} if args.instance_id else None,
                    tags=None if args.world else tags).start()
    if args.world:
        world = build_world(moto.url, imds, name=args.world,
                            creds=None if args.creds == "none" else args.creds,
                            heartbeat_timeout=args.heartbeat, default_result=args.default_result,
                            tags=tags)
        follow_lifecycle(imds, world.instance_id)
        (args.dir / "world.json").write_text(world.to_json() + "\n")
        # The trusted settings a launch template's user data would write into config.d.
        (args.dir / "user-data.toml").write_text(trust_dropin([world]))

    write_env(args.dir / "env", {
        "AWS_ENDPOINT_URL": moto.url,
        "AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "HARNESS_ADMIN_URL": moto.admin_url,
        "IMDS_ADMIN_URL": imds.admin_url,
    })
    ready.write_text(f"{os.getpid()}\n")
    print(f"harness up: moto {moto.url}, imds {imds.url}", flush=True)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    ready.unlink(missing_ok=True)
    imds.stop()
    moto.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
