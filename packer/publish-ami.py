#!/usr/bin/env python3
"""Hand a finished Packer build over to Terraform and the AMI pipeline.

Packer runs this on the build host as its last post-processor (shell-local), right after the
manifest post-processor wrote manifest.json. It

1. reads this run's builds from the manifest (builds whose packer_run_uuid is last_run_uuid),
2. writes each region's AMI id to the SSM parameter ECS_BOOT_AMI_PARAMETER in that region
   (the build region and every ami_regions copy; data type aws:ec2:image, overwritten by every
   new build): the Terraform module reads it as its ami_ssm_parameter,
3. writes the manifest of this run to ECS_BOOT_MANIFEST_S3_URI (s3://BUCKET/KEY), when set, for
   the AMI pipeline's source.

Nothing is written unless the whole manifest checks out: a build without an AMI id is refused
with the reason, and the exit status is non-zero (Packer then fails the build).

Environment (set by the template): ECS_BOOT_MANIFEST, ECS_BOOT_AMI_PARAMETER,
ECS_BOOT_MANIFEST_S3_URI (optional), ECS_BOOT_PUBLISH ("false" skips everything). Credentials and
endpoints come from the standard AWS variables (AWS_PROFILE, AWS_ENDPOINT_URL, ...). Needs boto3.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

AMI_ID = re.compile(r"^ami-[0-9a-f]{8,17}$")
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]$")
PARAMETER = re.compile(r"^(/[A-Za-z0-9_.-]+){1,15}$")
S3_URI = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(\S*[^/\s])$")
# A manifest of a normal build is a few KiB; anything this big is not Packer's.
MAX_MANIFEST_BYTES = 1024 * 1024


class Refused(Exception):
    """The manifest or the settings cannot be published; nothing was written."""


@dataclass(frozen=True)
class Image:
    region: str
    ami_id: str


@dataclass(frozen=True)
class Plan:
    parameter: str
    images: list[Image]
    description: str
    manifest: dict
    s3_uri: str | None


def parse_artifact_id(artifact_id: object, source: str) -> list[Image]:
    """The amazon-ebs artifact id is REGION:AMI[,REGION:AMI...], one pair per region copy."""
    if not isinstance(artifact_id, str) or not artifact_id.strip():
        raise Refused(f"{source}: artifact_id is missing or empty: the build produced no AMI id")
    images = []
    for pair in artifact_id.split(","):
        region, _, ami_id = pair.strip().partition(":")
        if not REGION.match(region) or not AMI_ID.match(ami_id):
            raise Refused(f"{source}: artifact_id entry {pair.strip()[:80]!r} is not REGION:ami-ID: no AMI id")
        images.append(Image(region, ami_id))
    if len({image.region for image in images}) != len(images):
        raise Refused(f"{source}: artifact_id names a region twice")
    return images


def this_runs_builds(manifest: object, path: str) -> list[dict]:
    if not isinstance(manifest, dict) or not isinstance(manifest.get("builds"), list):
        raise Refused(f"{path}: not a Packer manifest (no builds list)")
    run = manifest.get("last_run_uuid")
    builds = [b for b in manifest["builds"] if isinstance(b, dict) and b.get("packer_run_uuid") == run]
    if not run or not builds:
        raise Refused(f"{path}: no build of the last run (last_run_uuid {str(run)[:40]!r})")
    return builds


def prepare(env: dict[str, str]) -> Plan | None:
    """Everything to write, checked before anything is written; None when publishing is off."""
    if env.get("ECS_BOOT_PUBLISH", "true").lower() == "false":
        return None
    path = env.get("ECS_BOOT_MANIFEST", "")
    if not path:
        raise Refused("ECS_BOOT_MANIFEST is not set: the manifest post-processor's output file")
    parameter = env.get("ECS_BOOT_AMI_PARAMETER", "")
    if not PARAMETER.match(parameter):
        raise Refused(f"ECS_BOOT_AMI_PARAMETER {parameter[:80]!r} is not an SSM parameter path such as /ecs-boot/ami/x86_64")
    s3_uri = env.get("ECS_BOOT_MANIFEST_S3_URI") or None
    if s3_uri and not S3_URI.match(s3_uri):
        raise Refused(f"ECS_BOOT_MANIFEST_S3_URI {s3_uri[:80]!r} is not s3://BUCKET/KEY")

    try:
        raw = Path(path).read_bytes()[: MAX_MANIFEST_BYTES + 1]
    except OSError as err:
        raise Refused(f"{path}: cannot read the manifest: {err.strerror}") from None
    if len(raw) > MAX_MANIFEST_BYTES:
        raise Refused(f"{path}: larger than {MAX_MANIFEST_BYTES} bytes: not a Packer manifest")
    try:
        manifest = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise Refused(f"{path}: not JSON ({type(err).__name__} at position {getattr(err, 'pos', '?')})") from None

    builds = this_runs_builds(manifest, path)
    if len(builds) != 1:
        raise Refused(f"{path}: {len(builds)} builds in the last run; the template makes one per run")
    (build,) = builds
    images = parse_artifact_id(build.get("artifact_id"), f"{path}: build {str(build.get('name'))[:40]!r}")
    custom = build.get("custom_data") if isinstance(build.get("custom_data"), dict) else {}
    description = "ecs-boot {} ({}) {} {}, published by packer/publish-ami.py".format(
        *(str(custom.get(key, "?"))[:64] for key in ("ecs_boot_version", "git_commit", "base_os", "architecture"))
    )
    this_run = {**manifest, "builds": builds}
    return Plan(parameter, images, description[:1024], this_run, s3_uri)


def publish(publication: Plan) -> None:
    import boto3  # only here: prepare() and the tests of refusals need no AWS SDK

    session = boto3.session.Session()
    for image in publication.images:
        ssm = session.client("ssm", region_name=image.region)
        # aws:ec2:image: SSM checks the id names an AMI, and launch templates may resolve it.
        version = ssm.put_parameter(
            Name=publication.parameter, Value=image.ami_id, Type="String", DataType="aws:ec2:image",
            Overwrite=True, Description=publication.description,
        )["Version"]
        print(f"publish-ami: {image.region}: {publication.parameter} = {image.ami_id} (version {version})")
    if publication.s3_uri:
        bucket, key = S3_URI.match(publication.s3_uri).groups()
        # Any region reaches the bucket (botocore follows S3's region redirect); the configured
        # one first, since Packer sorts the artifact's regions by name, not build region first.
        s3 = session.client("s3", region_name=session.region_name or publication.images[0].region)
        body = (json.dumps(publication.manifest, indent=2) + "\n").encode()
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
        print(f"publish-ami: manifest written to {publication.s3_uri}")


def main() -> int:
    try:
        publication = prepare(dict(os.environ))
    except Refused as err:
        print(f"publish-ami: refused: {err}", file=sys.stderr)
        return 2
    if publication is None:
        print("publish-ami: ECS_BOOT_PUBLISH=false: nothing published")
        return 0
    try:
        publish(publication)
    except Exception as err:  # botocore's errors: report them in one line, not a traceback
        print(f"publish-ami: failed: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
