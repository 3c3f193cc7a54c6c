"""Vector storage and nearest(), on both storage paths: the embedded PostgreSQL (pgvector 0.8,
HNSW), started here whatever DATABASE_URL says, and the test PostgreSQL without the extension
(numpy exact scan). Same ids and scores within 1e-4, tenancy, filters, a cache that follows
re-embeddings and deletions, and migration 0019 up and down on a server with the extension.

Vectors are test data (tests/random_vectors.py: seeded random unit vectors per
text, no ties), embedded in this process by the same step the worker runs."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import make_url

from aia_engine.db.migrate import alembic_config
from aia_engine.db.session import Sessions, make_engine, make_sessions
from aia_engine.graph import embedding_marks, store
from aia_engine.search import indexing
from aia_engine.search.store import Hit, has_vector_column, nearest
from aia_engine.search.store import Path as SearchPath
from aia_engine.search.texts import entity_text, text_hash
from aia_engine.settings import Settings
from tests.integration.conftest import Services
from tests.integration.test_migrations import schema
from tests.random_vectors import RandomEncoder

ENCODER = RandomEncoder()
WORDS = ["alpha", "beta", "gamma", "delta", "tech", "finance", "retail", "blue", "green"]


class Embedded:
    def __init__(self, server: Any, admin_url: str) -> None:
        self.server, self.admin_url = server, admin_url

    def new_database(self) -> str:
        name = f"aia_search_{secrets.token_hex(4)}"
        plain = make_url(self.admin_url).set(drivername="postgresql")
        with psycopg.connect(plain.render_as_string(hide_password=False), autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def embedded_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Embedded]:
    """The embedded PostgreSQL of `aia-engine dev` (it ships pgvector), started for this
    module: never skipped (CI runs it like everything else)."""
    from aia_engine.embedded import start_postgres

    url, server = start_postgres(Path(tmp_path_factory.mktemp("pgvector")) / "embedded")
    try:
        yield Embedded(server, url)
    finally:
        server.cleanup()  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def pgvector_sessions(embedded_pg: Embedded) -> Iterator[Sessions]:
    url = embedded_pg.new_database()
    command.upgrade(alembic_config(url), "head")
    engine = make_engine(Settings(database_url=url), pool_size=2)
    yield make_sessions(engine)
    engine.dispose()


def node(i: int, prefix: str = "n") -> dict[str, Any]:
    rng = np.random.default_rng(i)
    return {
        "node_id": f"{prefix}{i}",
        "type": "customer" if i % 2 else "product",
        "properties": {"name": " ".join(rng.choice(WORDS, 3)) + f" {prefix}{i}", "tier": i % 3},
    }


def embed_all(sessions: Sessions, client_id: str) -> None:
    settings = Settings(search_embed_batch=256)
    remaining = True
    while remaining:
        _, remaining = indexing.embed_client(
            sessions, client_id, settings, encoder=ENCODER, texts=(entity_text, text_hash)
        )


def populate(sessions: Sessions, client_id: str, n: int, prefix: str = "n") -> None:
    items = [node(i, prefix) for i in range(n)]
    for start in range(0, n, 1000):
        store.upsert_nodes(sessions, client_id, items[start : start + 1000])
    embed_all(sessions, client_id)


def oracle(
    items: list[dict[str, Any]], q: np.ndarray, limit: int, keep: Any = lambda item: True
) -> list[tuple[str, float]]:
    """Brute force over the items' vectors (the encoder's, from their texts)."""
    kept = [item for item in items if keep(item)]
    vectors = ENCODER.encode([entity_text(i["type"], i["properties"]) for i in kept])
    scores = vectors @ (q / np.linalg.norm(q))
    order = np.argsort(-scores)[:limit]
    return [(kept[i]["node_id"], float(scores[i])) for i in order]


def same(hits: list[Hit], expected: list[tuple[str, float]]) -> None:
    assert [h.node_id for h in hits] == [e[0] for e in expected]
    assert np.allclose([h.score for h in hits], [e[1] for e in expected], atol=1e-4, rtol=0)


FILTERS: list[tuple[dict[str, Any], Any]] = [
    ({}, lambda item: True),
    ({"entity_types": ["customer"]}, lambda item: item["type"] == "customer"),
    ({"property_filters": {"tier": 1}}, lambda item: item["properties"]["tier"] == 1),
    (
        {"entity_types": ["product"], "property_filters": {"tier": 2}},
        lambda item: item["type"] == "product" and item["properties"]["tier"] == 2,
    ),
]


def queries(items: list[dict[str, Any]], count: int) -> list[np.ndarray]:
    """Half random directions, half near a stored vector (as real queries are)."""
    rng = np.random.default_rng(99)
    out = []
    stored = ENCODER.encode([entity_text(i["type"], i["properties"]) for i in items[:count]])
    for k in range(count):
        noise = rng.standard_normal(384).astype(np.float32)
        out.append(noise if k % 2 else stored[k] + 0.05 * noise / np.linalg.norm(noise))
    return out


def test_pgvector_and_numpy_answer_the_same_ids_and_scores(pgvector_sessions: Sessions) -> None:
    sessions = pgvector_sessions
    populate(sessions, "A", 800)
    populate(sessions, "B", 60, prefix="b")
    items = [node(i) for i in range(800)]
    with sessions.begin() as session:
        assert has_vector_column(session)
        filled = session.execute(
            text("SELECT count(*) FROM kg_embeddings WHERE vec IS NOT NULL AND client_id = 'A'")
        ).scalar()
    assert filled == 800
    for q in queries(items, 12):
        for filters, keep in FILTERS:
            with sessions.begin() as session:
                # ef_search above the client's size: HNSW visits every reachable vector.
                pg = nearest(session, "A", q, limit=10, threshold=-1.0, path="pgvector",
                             ef_search=1000, **filters)  # fmt: skip
                exact = nearest(session, "A", q, limit=10, threshold=-1.0, path="numpy", **filters)
            expected = oracle(items, q, 10, keep)
            same(pg, expected)
            same(exact, expected)


def test_threshold_and_the_default_path_on_pgvector(pgvector_sessions: Sessions) -> None:
    sessions = pgvector_sessions
    populate(sessions, "T", 100, prefix="t")
    target = node(5, "t")
    q = ENCODER.encode([entity_text(target["type"], target["properties"])])[0]
    with sessions.begin() as session:
        hits = nearest(session, "T", q, limit=5, threshold=0.5)  # auto: pgvector here
    assert [h.node_id for h in hits] == ["t5"] and hits[0].score == pytest.approx(1.0, abs=1e-5)


def test_tenancy_on_both_paths(pgvector_sessions: Sessions, services: Services) -> None:
    for sessions in (pgvector_sessions, services.sessions):
        populate(sessions, "tenant-a", 40, prefix="a")
        populate(sessions, "tenant-b", 40, prefix="b")
        own = node(3, "a")
        q = ENCODER.encode([entity_text(own["type"], own["properties"])])[0]
        with sessions.begin() as session:
            paths: list[SearchPath] = ["numpy"]
            if has_vector_column(session):
                paths.append("pgvector")
            for path in paths:
                theirs = nearest(session, "tenant-b", q, limit=100, threshold=-1.0, path=path)
                mine = nearest(session, "tenant-a", q, limit=100, threshold=-1.0, path=path)
                assert len(theirs) == 40 and all(h.node_id.startswith("b") for h in theirs)
                assert mine[0].node_id == "a3" and len(mine) == 40
                assert nearest(session, "nobody", q, limit=5, threshold=-1.0, path=path) == []


def test_without_the_extension_numpy_is_exact_and_follows_changes(services: Services) -> None:
    sessions = services.sessions
    client = f"np-{secrets.token_hex(3)}"
    populate(sessions, client, 500)
    items = [node(i) for i in range(500)]
    with sessions.begin() as session:
        assert not has_vector_column(session)  # the system PostgreSQL has no pgvector
    for q in queries(items, 6):
        for filters, keep in FILTERS:
            with sessions.begin() as session:
                hits = nearest(session, client, q, limit=10, threshold=-1.0, **filters)
            same(hits, oracle(items, q, 10, keep))

    # The cached matrix follows a re-embedding (new text) and a deletion.
    changed = {**items[7], "properties": {"name": "entirely new words", "tier": 0}}
    store.upsert_nodes(sessions, client, [changed])
    with sessions.begin() as session:
        status = embedding_marks.entity_status(session, client, "n7")
    assert status is not None and status["status"] == "pending"
    embed_all(sessions, client)
    q_new = ENCODER.encode([entity_text("customer", changed["properties"])])[0]
    with sessions.begin() as session:
        top = nearest(session, client, q_new, limit=1, threshold=-1.0)
    assert top[0].node_id == "n7" and top[0].score == pytest.approx(1.0, abs=1e-5)
    store.delete_nodes(sessions, client, ["n7"])
    with sessions.begin() as session:
        after = nearest(session, client, q_new, limit=500, threshold=-1.0)
    assert "n7" not in {h.node_id for h in after} and len(after) == 499


def test_migration_0019_goes_down_and_up_where_pgvector_exists(embedded_pg: Embedded) -> None:
    url = embedded_pg.new_database()
    config = alembic_config(url)
    command.upgrade(config, "head")
    fresh = schema(url)
    assert any("USING hnsw (vec vector_cosine_ops)" in line for line in fresh)
    assert "column kg_embeddings.vec USER-DEFINED" in fresh
    command.downgrade(config, "0018")
    down = schema(url)
    assert not [line for line in down if "kg_embedding" in line or "vector" in line]
    command.downgrade(config, "base")
    assert not [line for line in schema(url) if "alembic_version" not in line]
    command.upgrade(config, "head")
    assert schema(url) == fresh
