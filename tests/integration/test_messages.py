"""Ready-made one-stage messages are the messages Celery itself writes, and workers run them."""

from __future__ import annotations

import base64
import json
from typing import Any

import redis
from celery import Celery

from tests.integration.conftest import Engine, Services, _empty_redis_db, noop, workflow
from workers.dispatch import CeleryPublisher
from workflows.spec import parse_workflow

IDS = ("id", "root_id")


def _normalised(raw: bytes) -> dict[str, Any]:
    message = json.loads(raw)
    message["body"] = json.loads(base64.b64decode(message["body"]))
    for key in IDS:
        message["headers"][key] = "<id>"
    message["headers"]["origin"] = "<origin>"
    message["properties"]["correlation_id"] = message["properties"]["delivery_tag"] = "<id>"
    return message


def test_ready_made_message_equals_celerys(services: Services) -> None:
    url = _empty_redis_db(services.redis_url)
    app = Celery("aia_messages_test", set_as_current=False)
    app.config_from_object("celeryconfig")
    app.conf.update(broker_url=url, result_backend=f"workers.results:EngineRedisBackend+{url}")
    publisher = CeleryPublisher.from_settings(services.settings, app)
    spec = parse_workflow({"only": {"agent": "noop", "timeout_s": 12}})
    client = redis.Redis.from_url(url)
    try:
        publisher.publish("task_a", spec, priority="high")  # through Celery's send_task
        publisher.publish_many([("task_a", spec, "high")])  # ready-made
        celerys, ours = (_normalised(m) for m in reversed(client.lrange("aia.high", 0, -1)))
    finally:
        client.flushdb()
    assert ours == celerys
    assert ours["headers"]["timelimit"] == [14.0, 12.0] and ours["body"][1] == {
        "task_id": "task_a",
        "stage": "only",
    }
    # Logs and Flower name the stage and agent; the message body carries ids only.
    assert ours["headers"]["shadow"] == "aia.run_stage[only:noop]"
    assert ours["headers"]["kwargsrepr"] == (
        "{'task_id': 'task_a', 'stage': 'only', 'agent': 'noop'}"
    )


def test_batches_of_one_stage_tasks_run_to_completion(engine: Engine, worker: Any) -> None:
    from aia_engine.publishing import PublishGate, PublishPipeline

    gate = PublishGate(0.5)
    pipeline = gate.pipeline = PublishPipeline(engine.sessions, engine.publisher, gate)
    mine = Engine(engine.services, engine.publisher, gate)
    ids = [mine.submit(workflow({"one": noop(echo=i)})) for i in range(40)]
    pipeline.close()
    for i, task_id in enumerate(ids):
        view = engine.wait(task_id)
        assert view["status"] == "completed" and view["results"]["one"]["echo"] == i
