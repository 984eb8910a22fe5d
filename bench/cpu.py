"""CPU accounting for the benchmarks: this process and the local PostgreSQL server, in the same run.

A ratio against a floor says how far an import is from the floor; it does not say whether the machine
could do better. The CPU seconds do: an import that needs C CPU-seconds in all cannot finish on N cores
in less than C / N, whatever it overlaps. The server's share is read from Linux's /proc (every process
named ``postgres``, with the CPU of its exited children, i.e. the backends that closed meanwhile), so it
is only available when the database runs on this machine.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


def server_cpu_seconds() -> float | None:
    """CPU seconds used so far by the local PostgreSQL server's processes, or None if none is visible."""
    ticks, found = 0, False
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if stat[stat.index("(") + 1 : stat.rindex(")")] != "postgres":
            continue
        found = True
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks += sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK") if found else None


@dataclass
class CpuUse:
    wall: float
    client: float  # this process, all threads, and its helper processes that ended (healthapp.offload)
    server: float | None  # the local PostgreSQL server, all processes

    @property
    def total(self) -> float | None:
        return None if self.server is None else self.client + self.server

    def bound(self, cores: int) -> float | None:
        """The least wall time the same CPU work could take on ``cores`` cores, perfectly overlapped."""
        return None if self.total is None else self.total / cores

    def describe(self, floor: float, cores: int) -> str:
        if self.server is None:
            return f"CPU: this process {self.client:.2f}s (PostgreSQL not on this machine: no server figure)"
        bound = self.bound(cores)
        return (
            f"CPU: this process {self.client:.2f}s + PostgreSQL server {self.server:.2f}s = {self.total:.2f}s; "
            f"on {cores} cores no schedule of this work takes less than {bound:.2f}s = {bound / floor:.2f}x floor "
            f"(it took {self.wall:.2f}s, {self.total / (self.wall * cores):.0%} of the cores busy)"
        )


def _own_cpu_seconds() -> float:
    """This process's CPU and that of its children it has waited for: an import's forked helper."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


@contextmanager
def cpu_use() -> Iterator[CpuUse]:
    """``with cpu_use() as use: …`` fills ``use`` when the block ends."""
    use = CpuUse(0.0, 0.0, None)
    wall, client, server = time.perf_counter(), _own_cpu_seconds(), server_cpu_seconds()
    yield use
    use.wall, use.client = time.perf_counter() - wall, _own_cpu_seconds() - client
    now = server_cpu_seconds()
    use.server = None if server is None or now is None else now - server


def cores() -> int:
    return len(os.sched_getaffinity(0))


def report(phases: list[tuple[str, CpuUse]], floor: float) -> list[str]:
    """One line per phase, then the least time the phases' CPU work could take one after the other."""
    n = cores()
    lines = [f"  {label}: {use.describe(floor, n)}" for label, use in phases]
    if all(use.total is not None for _label, use in phases):
        work = sum(use.total for _label, use in phases)
        least = sum(use.bound(n) for _label, use in phases)
        lines.append(
            f"  CPU work in all: {work:.2f}s; on {n} cores no schedule of it takes less than {least:.2f}s = "
            f"{least / floor:.2f}x floor (each phase ends before the next starts)"
        )
    return lines
