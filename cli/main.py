"""The `aia-engine` command: dev, worker, beat, migrate, run, status, cancel, retry, reconcile,
clients, task-types, datasets, batch, kg, agents."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from aia_engine.errors import EngineError
from aia_engine.settings import Settings, get_settings
from cli import batch, catalog, clients, kg, tasks
from cli.common import SERVICES_FILE, resolved_settings
from workflows.compiler import STAGE_QUEUES

WORKER_QUEUES = ",".join(STAGE_QUEUES)
WEBHOOK_QUEUE = "aia.webhooks"
EMBEDDING_QUEUE = "aia.embeddings"
WEBHOOK_CONCURRENCY = 16


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

    worker = sub.add_parser(
        "worker",
        help="run a Celery worker for workflow stages (or, with --webhooks, for deliveries)",
    )
    worker.add_argument("--concurrency", "-c", type=int, default=None)
    worker.add_argument("--queues", "-Q", default=None, help=f"default {WORKER_QUEUES}")
    worker.add_argument(
        "--webhooks",
        action="store_true",
        help=f"deliver webhooks: queue {WEBHOOK_QUEUE}, a thread pool "
        f"(default {WEBHOOK_CONCURRENCY} threads; deliveries wait on the network)",
    )
    worker.add_argument(
        "--hostname",
        "-n",
        default=None,
        help="node name (default aia-stages-PID@HOST, or aia-webhooks-PID@HOST)",
    )
    worker.add_argument("--loglevel", "-l", default="INFO")
    worker.set_defaults(func=cmd_worker)

    flower = sub.add_parser(
        "flower",
        help="run Flower, the Celery monitor (logins from AIA_FLOWER_BASIC_AUTH; "
        "history kept in AIA_FLOWER_DB)",
    )
    flower.add_argument("--address", default=None, help="default AIA_FLOWER_ADDRESS (127.0.0.1)")
    flower.add_argument("--port", type=int, default=None, help="default AIA_FLOWER_PORT (5555)")
    flower.set_defaults(func=cmd_flower)

    beat = sub.add_parser(
        "beat",
        help="run celery beat: outbox relay, reconciler, webhook retries, the event pump "
        "and system alerts (run exactly one)",
    )
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
    run.set_defaults(func=tasks.cmd_run)

    status = sub.add_parser(
        "status",
        help="without TASK_ID: workers, queue depths per priority, tasks by status, the "
        "oldest waiting task (exit 1 when no worker takes stages); with it: that task",
    )
    status.add_argument("task_id", nargs="?")
    status.add_argument("--json", action="store_true", help="print JSON (for scripts)")
    status.add_argument(
        "--timeout", type=float, default=2.0, help="seconds to wait for workers to answer"
    )
    status.set_defaults(func=tasks.cmd_status)

    for name, helptext, func in (
        ("cancel", "cancel a task's whole workflow", tasks.cmd_cancel),
        ("retry", "re-run a failed or cancelled task from its failure", tasks.cmd_retry),
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

    clients_parser = sub.add_parser(
        "clients", help="manage API clients (OAuth2 client credentials)"
    )
    csub = clients_parser.add_subparsers(dest="clients_command", metavar="ACTION", required=True)
    create = csub.add_parser("create", help="create a client; prints its id and secret once")
    create.add_argument("--name", required=True)
    create.add_argument(
        "--tier", default="developer", choices=["free", "developer", "business", "enterprise"]
    )
    create.add_argument(
        "--scopes", default="read write", help='space-separated: "read write admin"'
    )
    create.add_argument("--json", action="store_true", help="print JSON (for scripts)")
    create.set_defaults(func=clients.cmd_clients_create)
    csub.add_parser("list", help="list clients (never their secrets)").set_defaults(
        func=clients.cmd_clients_list
    )
    for name, helptext, func in (
        ("disable", "disable a client: its tokens stop working", clients.cmd_clients_disable),
        ("enable", "enable a disabled client", clients.cmd_clients_enable),
        (
            "rotate-secret",
            "issue a new secret; the old one stops working",
            clients.cmd_clients_rotate,
        ),
    ):
        c = csub.add_parser(name, help=helptext)
        c.add_argument("client_id")
        c.set_defaults(func=func)

    key = sub.add_parser("webhook-key", help="print a new AIA_WEBHOOK_ENCRYPTION_KEY")
    key.set_defaults(func=cmd_webhook_key)

    rec = sub.add_parser(
        "reconcile",
        help="relay the outbox and re-dispatch stuck workflows once, saying what was done",
    )
    rec.set_defaults(func=tasks.cmd_reconcile)

    batch.add_parser(sub)
    catalog.add_parsers(sub)
    kg.add_parser(sub)

    agents = sub.add_parser("agents", help="list the registered agents")
    agents.set_defaults(func=tasks.cmd_agents)
    return p


def _child_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env["DATABASE_URL"] = settings.require_database_url()
    env["REDIS_URL"] = settings.require_redis_url()
    return env


def _celery(*args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "workers.app", *args]


def cmd_dev(args: argparse.Namespace) -> int:
    from cli.devlock import claim_dev

    settings = get_settings()
    data_dir = args.data_dir or settings.data_dir
    port = args.port or settings.api_port
    # Before anything starts: one dev per data directory, and a port the API can listen on.
    lock = claim_dev(data_dir, settings.api_host, port)
    try:
        return _dev(args, settings, data_dir, port)
    finally:
        lock.release()  # only once everything this dev started has stopped


def _dev(args: argparse.Namespace, settings: Settings, data_dir: Path, port: int) -> int:
    from aia_engine.db.migrate import upgrade
    from aia_engine.embedded import start_embedded

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
    env["AIA_WEBHOOK_ENCRYPTION_KEY"] = settings.webhook_encryption_key.get_secret_value()
    concurrency = str(args.concurrency or settings.worker_concurrency)
    children = [
        subprocess.Popen(_celery("worker", "-Q", WORKER_QUEUES, "-c", concurrency, "-l", "INFO",
                                 "-n", "dev-worker@%h"), env=env),
        subprocess.Popen(_celery("worker", "-Q", WEBHOOK_QUEUE, "-P", "threads",
                                 "-c", str(WEBHOOK_CONCURRENCY), "-l", "INFO",
                                 "-n", "dev-webhooks@%h"), env=env),
        subprocess.Popen(_celery("worker", "-Q", EMBEDDING_QUEUE, "-c", "1", "-l", "INFO",
                                 "-n", "dev-embeddings@%h"), env=env),
        subprocess.Popen(_celery("beat", "-l", "INFO", "-s", str(data_dir / "celerybeat-schedule")), env=env),
        subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "api.app:app_from_env",
                          "--host", settings.api_host, "--port", str(port), "--no-access-log"],
                         env=env),
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


def cmd_webhook_key(_args: argparse.Namespace) -> int:
    from aia_engine.webhooks.crypto import new_key

    print(new_key())
    return 0


def _exec(argv: list[str], env: dict[str, str]) -> int:
    """Become `argv`, so a process manager's SIGTERM reaches Celery or uvicorn themselves
    (warm shutdown, request draining) rather than a parent that would not pass it on."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe(argv[0], argv, env)


def cmd_worker(args: argparse.Namespace) -> int:
    settings = resolved_settings()
    if args.webhooks:
        queues = args.queues or WEBHOOK_QUEUE
        concurrency = args.concurrency or WEBHOOK_CONCURRENCY
        pool = ["-P", "threads"]
    else:
        queues = args.queues or WORKER_QUEUES
        concurrency = args.concurrency or settings.worker_concurrency
        pool = []
    # A name of its own by default, so several workers on one machine stay apart in Flower.
    kind = "webhooks" if args.webhooks else "stages"
    hostname = args.hostname or f"aia-{kind}-{os.getpid()}@%h"
    argv = ["worker", "-Q", queues, "-c", str(concurrency), *pool, "-l", args.loglevel]
    argv += ["-n", hostname]
    return _exec(_celery(*argv), _child_env(settings))


def cmd_beat(args: argparse.Namespace) -> int:
    settings = resolved_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    schedule = str(settings.data_dir / "celerybeat-schedule")
    return _exec(_celery("beat", "-l", args.loglevel, "-s", schedule), _child_env(settings))


def cmd_flower(args: argparse.Namespace) -> int:
    settings = resolved_settings()
    logins = settings.flower_basic_auth.get_secret_value()
    if not logins:
        raise RuntimeError(
            "Flower needs a login: set AIA_FLOWER_BASIC_AUTH=user:password "
            "(it can revoke and terminate tasks, so it never runs open)"
        )
    db = settings.flower_db or settings.data_dir / "flower.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    env = _child_env(settings)
    env["FLOWER_BASIC_AUTH"] = logins  # in the environment, not on a command line `ps` shows
    argv = _celery(
        "flower",
        f"--address={args.address or settings.flower_address}",
        f"--port={args.port or settings.flower_port}",
        "--persistent=True",
        f"--db={db}",
        f"--state_save_interval={int(settings.flower_state_save_interval_s * 1000)}",
        f"--max_tasks={settings.flower_max_tasks}",
    )
    return _exec(argv, env)


def cmd_migrate(_args: argparse.Namespace) -> int:
    from aia_engine.db.migrate import upgrade

    upgrade(resolved_settings())
    print("database is at the latest migration")
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
        str(int(settings.api_shutdown_timeout_s)),
        "--no-access-log",  # the API logs each request itself, with its request and client ids
    ]
    return _exec(argv, _child_env(settings))


if __name__ == "__main__":
    sys.exit(main())
