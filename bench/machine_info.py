"""The machine a benchmark ran on, printed with every benchmark's figures."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def machine(extra: str = "") -> str:
    """CPU model and count, RAM, load average and Python version (plus `extra`)."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    model = next(
        (line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")),
        platform.processor() or platform.machine(),
    )
    ram_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    described = (
        f"{model}, {os.cpu_count()} CPUs, {ram_gib:.0f} GiB RAM, load {os.getloadavg()[0]:.1f}; "
        f"Python {platform.python_version()}"
    )
    return f"{described}, {extra}" if extra else described
