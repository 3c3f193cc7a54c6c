"""`aia-engine` commands on tasks: run, status, cancel, retry, reconcile, agents."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from typing import Any

from aia_engine.settings import Settings
from cli.common import resolved_settings


def _runtime() -> tuple[Settings, Any, Any, Any]:
    from aia_engine.db.session import make_engine, make_sessions
    from aia_engine.publishing import PublishGate
    from workers.app import use_redis
    from workers.dispatch import CeleryPublisher

    settings = resolved_settings()
    app = use_redis(settings.require_redis_url())
    sessions = make_sessions(make_engine(settings, pool_size=1))
    return settings, sessions, CeleryPublisher.from_settings(settings, app), PublishGate(0.0)


def cmd_run(args: argparse.Namespace) -> int:
    from aia_engine.tasks.models import TaskRequest
    from aia_engine.tasks.submit import submit_task
    from workflows.spec import load_json_strict

    try:
        body = load_json_strict(args.file.read_bytes())
    except OSError as exc:
        raise RuntimeError(f"cannot read {args.file}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise RuntimeError(f"{args.file} is not valid JSON: {exc}") from exc
    settings, sessions, publisher, gate = _runtime()
    accepted = submit_task(
        sessions,
        TaskRequest.model_validate(body),
        settings=settings,
        publisher=publisher,
        gate=gate,
    )
    print(json.dumps(accepted.to_dict(), indent=2))
    if not args.wait:
        return 0
    return _follow(settings, sessions, accepted.task_id, timeout=args.timeout)


def _follow(settings: Settings, sessions: Any, task_id: str, *, timeout: float) -> int:
    from aia_engine.tasks.queries import get_task
    from aia_engine.tasks.wait import TaskWaiter, WaitTimeout

    seen: dict[str, tuple[str, float]] = {}
    deadline = time.monotonic() + timeout
    with TaskWaiter.from_settings(settings) as waiter:
        while True:
            view = get_task(sessions, task_id)
            for stage in view["stages"]:
                key = (stage["status"], stage["progress"])
                if seen.get(stage["name"]) != key:
                    seen[stage["name"]] = key
                    print(
                        f"  [{view['progress']:5.1f}%] {stage['name']:<20} {stage['agent']:<26} "
                        f"{stage['status']:<10} {stage['progress']:5.1f}%",
                        flush=True,
                    )
            if view["status"] in ("completed", "failed", "cancelled"):
                break
            if time.monotonic() > deadline:
                print(
                    f"timed out after {timeout:g}s; the task goes on: aia-engine status {task_id}",
                    file=sys.stderr,
                )
                return 3
            # Progress twice a second; the end as soon as the task's notification comes.
            with contextlib.suppress(WaitTimeout):
                waiter.wait([task_id], timeout=0.5)
    print(f"task {task_id} {view['status']}")
    print(json.dumps(view.get("results") or view.get("error"), indent=2))
    return 0 if view["status"] == "completed" else 1


def cmd_status(args: argparse.Namespace) -> int:
    from aia_engine.tasks.queries import get_task

    if args.task_id:
        _, sessions, _, _ = _runtime()
        print(json.dumps(get_task(sessions, args.task_id), indent=2))
        return 0
    from aia_engine.clock import utcnow
    from aia_engine.redis.connect import sync_client
    from cli.status import render, system_status

    settings, sessions, publisher, _ = _runtime()
    client = sync_client(settings.require_redis_url(), timeout=5)
    status = system_status(sessions, client, publisher.app, now=utcnow(), timeout_s=args.timeout)
    print(json.dumps(status, indent=2) if args.json else render(status))
    return 0 if status["stage_workers"] else 1


def cmd_cancel(args: argparse.Namespace) -> int:
    from aia_engine.tasks.control import cancel_task

    _, sessions, publisher, _ = _runtime()
    print(json.dumps(cancel_task(sessions, publisher, args.task_id), indent=2))
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    from aia_engine.tasks.control import retry_task

    _, sessions, publisher, gate = _runtime()
    print(json.dumps(retry_task(sessions, publisher, gate, args.task_id)[0], indent=2))
    return 0


def cmd_reconcile(_args: argparse.Namespace) -> int:
    from aia_engine.publishing import relay_outbox
    from aia_engine.stages.reconcile import reconcile

    settings, sessions, publisher, _ = _runtime()
    relayed = relay_outbox(sessions, publisher, settings)
    print(f"outbox relay: {relayed.published} published, {relayed.failed} failed")
    report = reconcile(sessions, publisher, settings)
    print(f"reconciler: {report.summary()}")
    for task_id, stages in report.redispatched.items():
        print(f"  re-dispatched {task_id}: {', '.join(stages)}")
    for task_id, stages in report.expired_leases.items():
        print(f"  lease expired (its worker is gone) {task_id}: {', '.join(stages)}")
    for task_id in report.settled:
        print(f"  settled {task_id}")
    for task_id in report.failed:
        print(f"  could not publish {task_id} (the broker refused; the next run tries again)")
    return 0


def cmd_agents(_args: argparse.Namespace) -> int:
    from aia_engine.agents import describe_agents

    for name, description in describe_agents().items():
        print(f"{name:<28} {description}")
    return 0
