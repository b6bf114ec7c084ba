"""What the benchmark scripts share: peak memory of the process."""

from __future__ import annotations

import resource
from pathlib import Path


def peak_rss_mb() -> float:
    """This process's peak resident memory, MB.

    Linux's ``VmHWM`` starts afresh at ``exec``; ``ru_maxrss`` would carry the
    parent's peak over into a child process.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
