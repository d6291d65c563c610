"""What every measurement records about the machine it ran on (the `machine` entry of its JSON)."""
from __future__ import annotations

import os
import platform


def describe() -> dict:
    """Platform, processor, the cores this process may use, and the Python version."""
    return {"platform": platform.platform(), "processor": platform.machine(), "cpus": len(os.sched_getaffinity(0)),
            "python": platform.python_version()}
