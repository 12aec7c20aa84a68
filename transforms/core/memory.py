"""Peak resident memory of this process, per stage: Linux's high-water mark (``VmHWM``), reset
before each song's stage so that the figure a stage reports is its own.

Writing ``5`` to ``/proc/self/clear_refs`` resets ``VmHWM`` to the current RSS (Linux 4.0+).
Where /proc is missing or read-only, both helpers report that they could not (False / None) and
the stages carry on without the figure. A worker process that runs several bundles at once in
threads sees their sum: the figure is then an upper bound for each.
"""

from __future__ import annotations

from typing import Optional

_CLEAR_REFS = "/proc/self/clear_refs"
_STATUS = "/proc/self/status"


def reset_peak_rss() -> bool:
    """Reset this process's peak RSS to its current RSS; False where the kernel does not allow it."""
    try:
        with open(_CLEAR_REFS, "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> Optional[float]:
    """This process's peak RSS (MiB) since start or the last reset; None without /proc."""
    try:
        with open(_STATUS) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None
