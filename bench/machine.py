"""What a run ran on: CPU, cores, Python, load, and the peers' versions."""

from __future__ import annotations

import contextlib
import os
import platform
import sqlite3
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["load_average", "machine_info", "versions"]

PACKAGES = (
    "alamos",
    "opentelemetry-sdk",
    "loguru",
    "prometheus_client",
    "SQLAlchemy",
    "psycopg",
    "attrs",
)


def _cpuinfo() -> dict[str, str]:
    out: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, sep, value = line.partition(":")
            key = key.strip()
            if sep and key not in out:
                out[key] = value.strip()
    return out


def _meminfo_total() -> int | None:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return None


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    out["sqlite (library)"] = sqlite3.sqlite_version
    return out


def machine_info() -> dict[str, Any]:
    cpu = _cpuinfo()
    flags = cpu.get("flags", "").split()
    usable: int | None
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    return {
        "cpu_model": cpu.get("model name") or platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "virtualized": "hypervisor" in flags,
        "memory_bytes": _meminfo_total(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "python_build": " ".join(platform.python_build()),
        "platform": platform.platform(),
    }
