"""``/metrics`` of a server that runs as several worker processes (``npcbridge serve --workers``).

A scrape reaches one worker, whichever accepted the connection, and that worker answers for all
of them: every series of every worker, each with a ``worker`` label (``"0"`` .. ``"N-1"``), so
``sum without (worker) (...)`` gives the server's totals and nothing is counted twice. Each
worker writes its own series to the workers' shared folder once a second
(:data:`PUBLISH_EVERY_S`); the answering worker renders its own fresh and reads the others'
files, so another worker's figures are at most about a second old. A worker that restarts
starts its counters at zero again, which Prometheus reads as a counter reset.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from ..process import write_private_file

PUBLISH_EVERY_S = 1.0


class _Families:
    """A collector that yields already-built metric families."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        """The families, as given."""
        return iter(self.families)


class WorkerMetrics:
    """One worker's part in the shared ``/metrics``: publishing its series, merging everyone's."""

    def __init__(self, folder: Path, index: int) -> None:
        self.folder = folder
        self.index = index
        self._task: asyncio.Task[None] | None = None

    def _file(self, index: int) -> Path:
        return self.folder / f"worker-{index}.prom"

    def publish(self, body: bytes) -> None:
        """Write this worker's series (atomically: readers never see half a file)."""
        write_private_file(self._file(self.index), body)

    def start(self, render: Callable[[], bytes]) -> None:
        """Publish ``render()`` now and then every :data:`PUBLISH_EVERY_S` seconds."""
        self.publish(render())
        self._task = asyncio.create_task(self._publish_every(render), name="metrics-publish")

    async def stop(self) -> None:
        """Stop publishing."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _publish_every(self, render: Callable[[], bytes]) -> None:
        while True:
            await asyncio.sleep(PUBLISH_EVERY_S)
            with contextlib.suppress(OSError):  # the folder is gone: the supervisor ends
                self.publish(render())

    def merged(self, own: bytes) -> bytes:
        """Every worker's series (``own`` for this one), each labelled with its worker."""
        bodies = {self.index: own}
        for file in self.folder.glob("worker-*.prom"):
            index = int(file.stem.partition("-")[2])
            if index != self.index:
                with contextlib.suppress(OSError):
                    bodies[index] = file.read_bytes()
        families: dict[str, Metric] = {}
        for index, body in sorted(bodies.items()):
            for family in text_string_to_metric_families(body.decode()):
                into = families.get(family.name)
                if into is None:
                    into = families[family.name] = Metric(
                        family.name, family.documentation, family.type, family.unit
                    )
                into.samples.extend(
                    Sample(s.name, {**s.labels, "worker": str(index)}, s.value, s.timestamp)
                    for s in family.samples
                )
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Families(list(families.values())))  # type: ignore[arg-type]
        return generate_latest(registry)
