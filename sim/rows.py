"""Work over the rows (envs) of a batch on a few threads that share one iterator: mj_* calls release the GIL."""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

from sim.cores import check_num_threads


class RowPool:
    """Runs work(rows) on `num_threads` threads (this one included), each taking the next row until none is left,
    so rows that cost more (envs in contact) balance out."""

    def __init__(self, num_threads: int = 1) -> None:
        self.num_threads = check_num_threads(num_threads)
        self._pool = ThreadPoolExecutor(self.num_threads - 1) if self.num_threads > 1 else None

    def run(self, work: Callable[[Iterator[int]], None], rows: Sequence[int]) -> None:
        """Call `work` on every thread with one iterator over `rows` shared between them; return when all finish."""
        shared = iter(rows)
        if self._pool is None:
            work(shared)
            return
        pending = [self._pool.submit(work, shared) for _ in range(min(self.num_threads, len(rows)) - 1)]
        work(shared)
        for future in pending:
            future.result()

    def close(self) -> None:
        """Stop the threads."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
