"""What the benchmark scripts measure and print: peak RSS, CPU contention, the machine, tables, JSON."""

from __future__ import annotations

import json
import os
import platform
import threading
import time
from typing import Any, Optional, Sequence

MIB = 1024 * 1024
SAMPLE_INTERVAL_S = 0.2


# --------------------------------------------------------------------------- measurement


def tree_rss(process) -> tuple[int, int, int]:
    """(summed RSS of a psutil process and its descendants, its own RSS, processes counted); zeros once gone."""
    import psutil

    try:
        root = process.memory_info().rss
        children = process.children(recursive=True)
    except psutil.Error:
        return 0, 0, 0
    total, count = root, 1
    for child in children:
        try:
            total += child.memory_info().rss
            count += 1
        except psutil.Error:  # exited between listing and reading
            pass
    return total, root, count


class TreeRssSampler:
    """Peak of the summed RSS of a process (default: this one) and all its descendants, sampled in a thread."""

    def __init__(self, pid: Optional[int] = None, interval: float = SAMPLE_INTERVAL_S):
        import psutil

        self._root = psutil.Process(pid or os.getpid())
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
        self.peak = self.peak_root = self.peak_processes = self.samples = 0

    def sample(self) -> None:
        """Takes one sample now."""
        total, root, count = tree_rss(self._root)
        if count:
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


class OtherLoad:
    """CPU time spent by other processes on this machine meanwhile, in cores (a contention check).

    System-wide busy time (all states but idle and iowait) minus this process's and its
    children's CPU time, over the wall time of the block; ``steal`` is the hypervisor's.
    """

    def __enter__(self) -> "OtherLoad":
        import psutil

        self._psutil = psutil
        self._started = time.perf_counter()
        self._system = psutil.cpu_times()
        self._own = self._own_seconds()
        return self

    def _own_seconds(self) -> float:
        times = self._psutil.Process(os.getpid()).cpu_times()
        return times.user + times.system + times.children_user + times.children_system

    @staticmethod
    def _busy(times) -> float:
        return sum(times) - times.idle - getattr(times, "iowait", 0.0)

    def __exit__(self, *exc) -> None:
        system = self._psutil.cpu_times()
        wall = max(time.perf_counter() - self._started, 1e-9)
        own = self._own_seconds() - self._own
        self.own_cores = own / wall
        self.other_cores = max(0.0, (self._busy(system) - self._busy(self._system) - own) / wall)
        self.steal_cores = (getattr(system, "steal", 0.0) - getattr(self._system, "steal", 0.0)) / wall


# --------------------------------------------------------------------------- the report


def environment(*modules: str) -> dict:
    """The machine and the versions of ``modules`` (import names), printed and saved with the figures."""
    import importlib

    import psutil

    env: dict[str, Any] = {"cpus": psutil.cpu_count(), "ram_gib": psutil.virtual_memory().total / 2**30,
                           "python": platform.python_version(), "platform": platform.platform()}
    for name in modules:
        env[name] = importlib.import_module(name).__version__
    if "tensorflow" in modules:
        import tensorflow as tf

        env["gpus"] = len(tf.config.list_physical_devices("GPU"))
    return env


def environment_line(env: dict) -> str:
    """One line of :func:`environment`'s facts."""
    versions = ", ".join(f"{k} {v}" for k, v in env.items() if k not in ("cpus", "ram_gib", "platform", "gpus"))
    gpus = f", GPUs {env['gpus']}" if "gpus" in env else ""
    return f"{env['cpus']} CPUs, {env['ram_gib']:.1f} GiB RAM{gpus}; {versions}"


def save_json(path: str, payload: dict) -> None:
    """Writes the results as JSON (NumPy scalars as numbers, anything else unknown as text)."""
    def plain(value: Any) -> Any:
        return value.item() if hasattr(value, "item") else str(value)

    with open(path, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=2, ensure_ascii=False, default=plain)
    print(f"results written to {path}")


# --------------------------------------------------------------------------- tables


def mark(value: Optional[float], target: float) -> str:
    """"ok" when a measured value reaches its target, "MISS" when not, "n/a" when unmeasured."""
    return "n/a" if value is None else ("ok" if value >= target else "MISS")


def met(value: Optional[bool]) -> str:
    """"ok" / "MISS" / "n/a" of a check already made."""
    return "n/a" if value is None else ("ok" if value else "MISS")


def pct(x: Optional[float], digits: int = 2) -> str:
    """A share as a percentage, "n/a" when unknown."""
    return "n/a" if x is None or x != x else f"{100 * x:.{digits}f} %"


def num(x: Optional[float], digits: int = 0) -> str:
    """A number with thousands separators, "n/a" when unknown."""
    return "n/a" if x is None else f"{x:,.{digits}f}"


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
