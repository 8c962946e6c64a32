"""Peak memory of the current process.

``ru_maxrss`` survives ``execve`` on Linux, so a fresh ``python -m`` child would
report its parent's peak; the kernel's VmHWM belongs to the new address space.
"""

from __future__ import annotations

import resource


def peak_rss_mb() -> float:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
