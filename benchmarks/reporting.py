"""What the benchmark scripts share: peak-RSS sampling and result tables."""

from __future__ import annotations

import os
import threading
from typing import Optional, Sequence

SAMPLE_INTERVAL_S = 0.2


def mark(value: Optional[float], target: float) -> str:
    """"ok" when a measured value reaches its target, "MISS" when not, "n/a" when unmeasured."""
    return "n/a" if value is None else ("ok" if value >= target else "MISS")


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]], align: Sequence[str]) -> str:
    """A Markdown table (``align``: one ``---`` / ``---:`` per column)."""
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]], right: set) -> str:
    """A fixed-width text table; columns whose index is in ``right`` are right-aligned."""
    table = [list(header)] + [list(r) for r in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]

    def line(row):
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths)))

    return "\n".join([line(table[0]), "  ".join("-" * w for w in widths)] + [line(r) for r in table[1:]])


class TreeRssSampler:
    """Peak of the summed RSS of a process and all its descendants, sampled in a thread."""

    def __init__(self, pid: Optional[int] = None, interval: float = SAMPLE_INTERVAL_S):
        import psutil

        self._psutil = psutil
        self._root = psutil.Process(pid or os.getpid())
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
        self.peak = 0
        self.peak_root = 0
        self.peak_processes = 0
        self.samples = 0

    def sample(self) -> None:
        psutil = self._psutil
        try:
            root = self._root.memory_info().rss
            children = self._root.children(recursive=True)
        except psutil.Error:
            return
        total, count = root, 1
        for child in children:
            try:
                total += child.memory_info().rss
                count += 1
            except psutil.Error:  # exited between listing and reading
                pass
        self.samples += 1
        self.peak = max(self.peak, total)
        self.peak_root = max(self.peak_root, root)
        self.peak_processes = max(self.peak_processes, count)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self._interval)

    def __enter__(self) -> "TreeRssSampler":
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()
