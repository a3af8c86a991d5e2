"""Test harness for ecs-boot: moto with lifecycle hooks, a fake IMDSv2, a fake ECS agent.

Import with tests/ on sys.path: `from harness.moto_ext import MotoServer`. See README.md.
"""
