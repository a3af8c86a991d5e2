"""Shared steps for the launch and termination suites: boot a simulated instance with ecs-boot
and the fake ECS agent, and read what ecs-boot recorded."""
import json
import os
import signal

from harness.procs import free_port, wait_for


def boot_config(port: int, extra: str = "") -> str:
    return (f'[ecs_agent]\nintrospection_url = "http://127.0.0.1:{port}"\n'
            f'registration_timeout = "20s"\n[tags]\nwait = "5s"\n'
            f'[drain]\npoll_interval = "200ms"\n{extra}')


def status(ecs_boot) -> dict:
    out = ecs_boot.run("status", "--json", timeout=20)
    return json.loads(out.stdout)


def wait_state(ecs_boot, predicate, timeout=30, what="ecs-boot state"):
    def check():
        if not ecs_boot.state_file.exists():
            return None
        try:
            s = json.loads(ecs_boot.state_file.read_text())
        except ValueError:
            return None
        return s if predicate(s) else None
    return wait_for(check, timeout=timeout, what=what)


# System containers of test runs carry their own label value, so a test's drain or reconcile never
# stops or removes containers of a simulated instance sharing the engine.
CONTAINER_SCOPE = f"pytest-{os.getpid()}"


def spawn_run(ecs_boot):
    return ecs_boot.spawn("run", "--container-scope", CONTAINER_SCOPE)


def start_instance(ecs_boot, fake_agent, extra_config="", agent=True, **agent_opts):
    """ecs-boot run, then (once ecs.config exists, as ecs.service would) the fake agent."""
    port = free_port()
    ecs_boot.write_config(boot_config(port, extra_config))
    proc = spawn_run(ecs_boot)
    wait_for(lambda: ecs_boot.ecs_config.exists() or proc.poll() is not None, timeout=20,
             what="ecs.config written")
    fa = fake_agent(ecs_boot.ecs_config, port=port, **agent_opts) if agent and proc.poll() is None else None
    return proc, fa


def never_registering_boot(ecs_boot, fake_agent, extra_config=""):
    """A boot whose ECS agent never registers (3 s allowed): ecs.config is written, then the
    launch fails and ecs-boot ABANDONs. Returns the `ecs-boot run` process."""
    port = free_port()
    config = boot_config(port, extra_config).replace(
        'registration_timeout = "20s"', 'registration_timeout = "3s"')
    ecs_boot.write_config(config)
    proc = spawn_run(ecs_boot)
    wait_for(lambda: ecs_boot.ecs_config.exists() or proc.poll() is not None, timeout=20,
             what="ecs.config written")
    fake_agent(ecs_boot.ecs_config, port=port, never_register=True)
    return proc


def stop(proc, timeout=15):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout)


def client_calls(moto, action):
    return [c for c in moto.calls(source="client") if c["action"] == action]
