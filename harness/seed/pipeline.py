"""Generate and encode the tables on a background thread while the loader streams them to PostgreSQL.

numpy releases the GIL for most of its work, so on two cores generation and COPY-encoding of the next
chunk overlap with the server parsing the previous one.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

from harness.config import Tier
from harness.seed.binary_copy import copy_chunks
from harness.seed.generate import TableData, generate_tables

_END = object()


class _Abandoned(Exception):
    """The consumer stopped reading (error or interrupt): the producer ends without a word."""


class EncodedTables:
    """Iterate ``(table, chunks)`` pairs; ``chunks`` yields the table's binary COPY stream."""

    def __init__(self, tier: Tier, seed: int, buffered_chunks: int = 4):
        self._queue: queue.Queue[object] = queue.Queue(maxsize=buffered_chunks)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, args=(tier, seed), name="seed-encoder", daemon=True)
        self._thread.start()

    def _produce(self, tier: Tier, seed: int) -> None:
        try:
            for table in generate_tables(tier, seed):
                self._put(table)
                for chunk in copy_chunks(table.values):
                    self._put(chunk)
                self._put(_END)
            self._put(None)
        except _Abandoned:
            return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            try:
                self._put(exc)
            except _Abandoned:
                return

    def _put(self, item: object) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue
        raise _Abandoned

    def _get(self) -> object:
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def __iter__(self) -> Iterator[tuple[TableData, Iterator[bytes]]]:
        while (table := self._get()) is not None:
            assert isinstance(table, TableData)
            yield table, self._chunks()

    def _chunks(self) -> Iterator[bytes]:
        while (chunk := self._get()) is not _END:
            assert isinstance(chunk, bytes)
            yield chunk

    def close(self) -> None:
        """Stop the producer (after an error or interrupt in the consumer) and wait for it."""
        self._stop.set()
        self._thread.join(timeout=5)
