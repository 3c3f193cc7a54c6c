"""The `aia-engine` command: dev, worker, beat, migrate, run, status, cancel, retry, reconcile, agents."""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from aia_engine.errors import EngineError
from aia_engine.settings import Settings, get_settings

SERVICES_FILE = "services.json"
WORKER_QUEUES = "aia.high,aia.default,aia.low"


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except EngineError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.details:
            print(json.dumps(exc.details, indent=2, default=str), file=sys.stderr)
        return 2
    except ValidationError as exc:
        print(f"error: invalid input:\n{exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="aia-engine",
        description="AIA Engine: staged agent workflows on Celery, durable in PostgreSQL.",
        epilog="Services come from DATABASE_URL and REDIS_URL; `dev` starts embedded ones when unset.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    dev = sub.add_parser(
        "dev", help="run everything locally (embedded PostgreSQL/Redis when no URLs)"
    )
    dev.add_argument(
        "--data-dir", type=Path, help="where embedded data lives (default AIA_DATA_DIR or .aia)"
    )
    dev.add_argument("--concurrency", "-c", type=int, default=None, help="worker processes")
    dev.add_argument("--port", type=int, default=None, help="API port (default API_PORT, 8000)")
    dev.set_defaults(func=cmd_dev)

    worker = sub.add_parser("worker", help="run a Celery worker for workflow stages")
    worker.add_argument("--concurrency", "-c", type=int, default=None)
    worker.add_argument("--queues", "-Q", default=WORKER_QUEUES)
    worker.add_argument("--hostname", "-n", default=None)
    worker.add_argument("--loglevel", "-l", default="INFO")
    worker.set_defaults(func=cmd_worker)

    beat = sub.add_parser("beat", help="run celery beat (outbox relay and reconciler schedules)")
    beat.add_argument("--loglevel", "-l", default="INFO")
    beat.set_defaults(func=cmd_beat)

    migrate = sub.add_parser("migrate", help="apply database migrations (alembic upgrade head)")
    migrate.set_defaults(func=cmd_migrate)

    run = sub.add_parser("run", help="submit a task or workflow from a JSON file")
    run.add_argument(
        "file", type=Path, help="JSON body as for POST /tasks/orchestrate or /tasks/submit"
    )
    run.add_argument(
        "--wait", action="store_true", help="follow stage progress and print the results"
    )
    run.add_argument(
        "--timeout", type=float, default=600.0, help="seconds --wait waits (default 600)"
    )
    run.set_defaults(func=cmd_run)

    for name, helptext, func in (
        ("status", "show a task's status, stages and results", cmd_status),
        ("cancel", "cancel a task's whole workflow", cmd_cancel),
        ("retry", "re-run a failed or cancelled task from its failure", cmd_retry),
    ):
        cmd = sub.add_parser(name, help=helptext)
        cmd.add_argument("task_id")
        cmd.set_defaults(func=func)

    serve = sub.add_parser("serve", help="run the HTTP API (uvicorn)")
    serve.add_argument("--host", default=None, help="default API_HOST")
    serve.add_argument("--port", type=int, default=None, help="default API_PORT")
    serve.add_argument(
        "--workers", type=int, default=None, help="uvicorn processes (default AIA_API_WORKERS)"
    )
    serve.set_defaults(func=cmd_serve)

    clients = sub.add_parser("clients", help="manage API clients (OAuth2 client credentials)")
    csub = clients.add_subparsers(dest="clients_command", metavar="ACTION", required=True)
    create = csub.add_parser("create", help="create a client; prints its id and secret once")
    create.add_argument("--name", required=True)
    create.add_argument(
        "--tier", default="developer", choices=["free", "developer", "business", "enterprise"]
    )
    create.add_argument(
        "--scopes", default="read write", help='space-separated: "read write admin"'
    )
    create.add_argument("--json", action="store_true", help="print JSON (for scripts)")
    create.set_defaults(func=cmd_clients_create)
    csub.add_parser("list", help="list clients (never their secrets)").set_defaults(
        func=cmd_clients_list
    )
    for name, helptext, func in (
        ("disable", "disable a client: its tokens stop working", cmd_clients_disable),
        ("enable", "enable a disabled client", cmd_clients_enable),
        ("rotate-secret", "issue a new secret; the old one stops working", cmd_clients_rotate),
    ):
        c = csub.add_parser(name, help=helptext)
        c.add_argument("client_id")
        c.set_defaults(func=func)

    rec = sub.add_parser("reconcile", help="relay the outbox and re-dispatch stuck workflows once")
    rec.set_defaults(func=cmd_reconcile)

    agents = sub.add_parser("agents", help="list the registered agents")
    agents.set_defaults(func=cmd_agents)
    return p


def resolved_settings(base: Settings | None = None) -> Settings:
    """Settings, completed from a running `aia-engine dev`'s services file when URLs are unset."""
    settings = base or get_settings()
    if settings.database_url and settings.redis_url:
        return settings
    path = settings.data_dir / SERVICES_FILE
    if not path.exists():
        raise RuntimeError(
            "DATABASE_URL and REDIS_URL are not set and no `aia-engine dev` is running here; "
            "start `aia-engine dev` or set both URLs"
        )
    found = json.loads(path.read_text())
    return settings.model_copy(
        update={
            "database_url": settings.database_url or found["database_url"],
            "redis_url": settings.redis_url or found["redis_url"],
        }
    )


def _child_env(settings: Settings) -> dict[str, str]:
    import os

    env = dict(os.environ)
    env["DATABASE_URL"] = settings.require_database_url()
    env["REDIS_URL"] = settings.require_redis_url()
    return env


def _celery(*args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "workers.app", *args]


def cmd_dev(args: argparse.Namespace) -> int:
    from aia_engine.db.migrate import upgrade
    from aia_engine.embedded import start_embedded

    settings = get_settings()
    data_dir = args.data_dir or settings.data_dir
    services = None
    if not (settings.database_url and settings.redis_url):
        print(f"starting embedded PostgreSQL and Redis in {data_dir} ...", flush=True)
        services = start_embedded(data_dir)
        settings = settings.model_copy(
            update={
                "database_url": settings.database_url or services.database_url,
                "redis_url": settings.redis_url or services.redis_url,
            }
        )
        settings = Settings.model_validate(settings.model_dump())
        (data_dir / SERVICES_FILE).write_text(
            json.dumps({"database_url": settings.database_url, "redis_url": settings.redis_url})
        )
    print("applying migrations ...", flush=True)
    upgrade(settings)
    env = _child_env(settings)
    # One signing key for every process of this dev run (a random one unless JWT_SECRET_KEY is set).
    env["JWT_SECRET_KEY"] = settings.jwt_secret_key.get_secret_value()
    concurrency = str(args.concurrency or settings.worker_concurrency)
    port = args.port or settings.api_port
    children = [
        subprocess.Popen(_celery("worker", "-Q", WORKER_QUEUES, "-c", concurrency, "-l", "INFO",
                                 "-n", "dev-worker@%h"), env=env),
        subprocess.Popen(_celery("beat", "-l", "INFO", "-s", str(data_dir / "celerybeat-schedule")), env=env),
        subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "api.app:app_from_env",
                          "--host", settings.api_host, "--port", str(port)], env=env),
    ]  # fmt: skip
    print(
        f"AIA Engine dev is up: database {settings.database_url}, broker {settings.redis_url}\n"
        f"  API: http://{settings.api_host}:{port} (human docs at /docs)\n"
        "  API credentials: aia-engine clients create --name me\n"
        "  submit from a file: aia-engine run examples/complex_analysis.json --wait\n"
        "  stop with Ctrl-C",
        flush=True,
    )
    return _supervise(children, services, data_dir)


def _supervise(children: list[subprocess.Popen[bytes]], services: Any, data_dir: Path) -> int:
    stop = False

    def _on_signal(signum: int, _frame: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    code = 0
    try:
        while not stop:
            for child in children:
                if child.poll() is not None:
                    print(
                        f"a child process exited with {child.returncode}; stopping", file=sys.stderr
                    )
                    stop, code = True, 1
            time.sleep(0.5)
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
        if services is not None:
            services.stop()
            (data_dir / SERVICES_FILE).unlink(missing_ok=True)
    return code


def cmd_worker(args: argparse.Namespace) -> int:
    settings = resolved_settings()
    argv = [
        "worker",
        "-Q",
        args.queues,
        "-c",
        str(args.concurrency or settings.worker_concurrency),
        "-l",
        args.loglevel,
    ]
    if args.hostname:
        argv += ["-n", args.hostname]
    return subprocess.call(_celery(*argv), env=_child_env(settings))


def cmd_beat(args: argparse.Namespace) -> int:
    settings = resolved_settings()
    return subprocess.call(_celery("beat", "-l", args.loglevel), env=_child_env(settings))


def cmd_migrate(_args: argparse.Namespace) -> int:
    from aia_engine.db.migrate import upgrade

    upgrade(resolved_settings())
    print("database is at the latest migration")
    return 0


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
    return _follow(sessions, accepted.task_id, timeout=args.timeout)


def _follow(sessions: Any, task_id: str, *, timeout: float) -> int:
    from aia_engine.tasks.queries import get_task

    seen: dict[str, tuple[str, float]] = {}
    deadline = time.monotonic() + timeout
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
        time.sleep(0.5)
    print(f"task {task_id} {view['status']}")
    print(json.dumps(view.get("results") or view.get("error"), indent=2))
    return 0 if view["status"] == "completed" else 1


def cmd_status(args: argparse.Namespace) -> int:
    from aia_engine.tasks.queries import get_task

    _, sessions, _, _ = _runtime()
    print(json.dumps(get_task(sessions, args.task_id), indent=2))
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    from aia_engine.tasks.control import cancel_task

    _, sessions, publisher, _ = _runtime()
    print(json.dumps(cancel_task(sessions, publisher, args.task_id), indent=2))
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    from aia_engine.tasks.control import retry_task

    _, sessions, publisher, gate = _runtime()
    print(json.dumps(retry_task(sessions, publisher, gate, args.task_id), indent=2))
    return 0


def cmd_reconcile(_args: argparse.Namespace) -> int:
    from aia_engine.publishing import relay_outbox
    from aia_engine.reconcile import reconcile

    settings, sessions, publisher, _ = _runtime()
    relayed = relay_outbox(sessions, publisher, settings)
    print(f"outbox relay: {relayed.published} published, {relayed.failed} failed")
    report = reconcile(sessions, publisher, settings)
    print(f"reconciler: {report.summary()}")
    for task_id, stages in report.redispatched.items():
        print(f"  re-dispatched {task_id}: {', '.join(stages)}")
    for task_id in report.settled:
        print(f"  settled {task_id}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    settings = resolved_settings()
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "api.app:app_from_env",
        "--host",
        args.host or settings.api_host,
        "--port",
        str(args.port or settings.api_port),
        "--workers",
        str(args.workers or settings.api_workers),
        "--timeout-graceful-shutdown",
        "30",
    ]
    return subprocess.call(argv, env=_child_env(settings))


def _sessions() -> Any:
    from aia_engine.db.session import make_engine, make_sessions

    return make_sessions(make_engine(resolved_settings(), pool_size=1))


def cmd_clients_create(args: argparse.Namespace) -> int:
    from aia_engine.auth.clients import create_client

    client = create_client(_sessions(), name=args.name, tier=args.tier, scopes=args.scopes)
    record = {
        "client_id": client.client_id,
        "client_secret": client.client_secret,
        "name": client.name,
        "tier": client.tier,
        "scopes": " ".join(client.scopes),
    }
    if args.json:
        print(json.dumps(record))
    else:
        for key, value in record.items():
            print(f"{key:<14} {value}")
        print(
            "\nStore the secret now: it is shown only once (rotate it with `clients rotate-secret`)."
        )
    return 0


def cmd_clients_list(_args: argparse.Namespace) -> int:
    from aia_engine.auth.clients import list_clients

    rows = list_clients(_sessions())
    if not rows:
        print("no clients yet; create one with: aia-engine clients create --name NAME")
    for row in rows:
        state = "active" if row["active"] else "DISABLED"
        print(
            f"{row['client_id']:<26} {state:<9} {row['tier']:<11} {row['scopes']:<18} {row['name']}"
        )
    return 0


def cmd_clients_disable(args: argparse.Namespace) -> int:
    from aia_engine.auth.clients import set_active

    set_active(_sessions(), args.client_id, False)
    print(f"client {args.client_id} disabled")
    return 0


def cmd_clients_enable(args: argparse.Namespace) -> int:
    from aia_engine.auth.clients import set_active

    set_active(_sessions(), args.client_id, True)
    print(f"client {args.client_id} enabled")
    return 0


def cmd_clients_rotate(args: argparse.Namespace) -> int:
    from aia_engine.auth.clients import rotate_secret

    print(f"client_secret  {rotate_secret(_sessions(), args.client_id)}")
    print("The old secret no longer works. Store this one now: it is shown only once.")
    return 0


def cmd_agents(_args: argparse.Namespace) -> int:
    from aia_engine.agents import describe_agents

    for name, description in describe_agents().items():
        print(f"{name:<28} {description}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
