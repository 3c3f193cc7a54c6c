"""The order a worker takes its queues in: weighted by priority, never starving any.

kombu's Redis transport asks its queue-order strategy for the list of queues to `BRPOP` (Redis
answers from the first non-empty one) and tells it which queue a message came from. Celery's
choices are round-robin (high work waits behind a low backlog, one turn in three) and strict
order (a steady stream of high work starves low work forever). This strategy leads each fetch
with a queue chosen by smooth weighted round-robin over `AIA_QUEUE_WEIGHTS` (6:3:1 by default)
and lists the others by priority after it: with work in every queue, high gets 6 fetches in
10, medium 3 and low 1; a queue that is empty hands its turn to the next by priority.

Selected by `broker_transport_options["queue_order_strategy"]` in `celeryconfig.py`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from workflows.compiler import PRIORITY_QUEUES

RANK = ("high", "medium", "low")


def leader_schedule(weights: Mapping[str, int]) -> list[str]:
    """One period of smooth weighted round-robin (nginx's): each name `weight` times, spread out.

    >>> "".join(n[0] for n in leader_schedule({"h": 6, "m": 3, "l": 1}))
    'hmhhmhlhmh'
    """
    names = [n for n, w in weights.items() if w > 0]
    total = sum(weights[n] for n in names)
    current = dict.fromkeys(names, 0)
    schedule = []
    for _ in range(total):
        for n in names:
            current[n] += weights[n]
        best = max(names, key=lambda n: current[n])
        current[best] -= total
        schedule.append(best)
    return schedule


def queue_weights(priority_weights: Mapping[str, int]) -> dict[str, int]:
    return {PRIORITY_QUEUES[p]: priority_weights.get(p, 1) for p in RANK}


class WeightedPriorityCycle:
    """kombu queue-order strategy (the interface of `kombu.utils.scheduling.round_robin_cycle`)."""

    def __init__(self, it: Iterable[str] | None = None) -> None:
        from aia_engine.settings import get_settings

        self.weights = queue_weights(get_settings().queue_weights)
        self.items: list[str] = list(it) if it is not None else []
        self._pos = 0
        self._schedule: list[str] = []
        self.update(self.items)

    def update(self, it: Iterable[str]) -> None:
        self.items[:] = list(it)
        # Queues the weights do not name (a custom queue) count once and come after.
        present = {q: self.weights.get(q, 1) for q in self.items}
        self._schedule = leader_schedule(present)
        order = sorted(self.items, key=self._rank)
        # Each fetch asks for one of these lists (kombu calls `consume` before every BRPOP).
        self._orders = {lead: [lead] + [q for q in order if q != lead] for lead in order}
        self._pos = 0

    def _rank(self, queue: str) -> tuple[int, str]:
        known = list(self.weights)
        return (known.index(queue) if queue in known else len(known), queue)

    def consume(self, n: int) -> list[str]:
        if not self._schedule:
            return self.items[:n]
        return self._orders[self._schedule[self._pos % len(self._schedule)]][:n]

    def rotate(self, last_used: str) -> str:
        self._pos += 1
        return last_used
