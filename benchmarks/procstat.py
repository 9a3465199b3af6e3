"""What several benchmarks read of a process and of the machine: a free port, and a
figure of ``/proc/PID/status`` (``VmRSS``, ``VmHWM``: resident and peak memory)."""

from __future__ import annotations

import socket
import sys
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def status(field: str, pid: int | str = "self") -> int:
    """A memory figure of ``/proc/PID/status``, in bytes (Linux only)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    sys.exit(f"no {field} in /proc/{pid}/status: Linux only")


def reset_peak(pid: int | str = "self") -> None:
    """Start ``VmHWM`` (the peak resident memory) again from the resident set now."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
