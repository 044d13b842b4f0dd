"""CPU seconds from /proc for the benchmarks: a process's, the machine's, and a database's backends.

The benchmarks run on the same host as PostgreSQL, and on a shared VM the wall clock measures the
neighbours as much as the code: CPU seconds do not. Linux only.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import psycopg

TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of one process so far; None when it has gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS


def processes_cpu_s(pids: list[int]) -> float:
    """The CPU seconds of these processes added up (those gone count nothing)."""
    return sum(process_cpu_s(pid) or 0.0 for pid in pids)


def machine_cpu_s() -> float:
    """Busy CPU seconds of the whole machine so far (/proc/stat: everything but idle and iowait).

    Includes whatever else runs on the machine: compare it with the wall time times the cores.
    """
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, Path("/proc/stat").read_text().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / TICKS


class BackendsCPU:
    """CPU seconds of every PostgreSQL backend on one database while something runs, sampled in a thread.

    Backends come and go with the connections of the code measured (an import's extra writers, a
    worker's tasks), so they are sampled every ``interval`` seconds and each one's latest figure kept
    (a backend's last moments, under ``interval``, may be missed). Backends already there count from
    the start, new ones from zero; other databases' backends are not counted.
    """

    def __init__(self, url: str, interval: float = 0.05) -> None:
        self._conn = psycopg.connect(url, autocommit=True)
        self._interval = interval
        self._start: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._stop = threading.Event()
        self.own_cpu_s = 0.0
        for pid in self._pids():
            cpu = process_cpu_s(pid)
            if cpu is not None:
                self._start[pid] = self._last[pid] = cpu
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _pids(self) -> list[int]:
        rows = self._conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
        return [row[0] for row in rows]

    def _sample(self) -> None:
        for pid in self._pids():
            cpu = process_cpu_s(pid)
            if cpu is not None:
                self._start.setdefault(pid, 0.0)
                self._last[pid] = cpu

    def _poll(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()
        self.own_cpu_s = time.thread_time()  # the sampler's own Python CPU, not the code measured

    def stop(self) -> tuple[float, int]:
        """Total CPU seconds since the start, and how many backends took part."""
        self._stop.set()
        self._thread.join()
        self._sample()
        self._conn.close()
        used = {pid: self._last[pid] - self._start[pid] for pid in self._last}
        return sum(used.values()), sum(1 for v in used.values() if v > 0)
