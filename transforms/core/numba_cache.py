"""librosa's numba cache, filled by one process at a time.

librosa compiles its beat tracker, peak picker and pitch helpers with numba and
caches the machine code next to its sources (``cache=True``). A ``guvectorize``
function is cached as two files (the kernel and its ufunc wrapper) written one
after the other; when two processes compile the same function at once, a cache
can end up holding the kernel of one and the wrapper of the other. Every later
call of that function then segfaults, in every process that loads the cache,
until the files are deleted. A fresh install running songshard with two or
more worker processes hits exactly that: each worker compiles the beat tracker
on its first song.

:func:`warm_librosa` calls each cached librosa function songshard uses, with
float32 and float64 input, under an exclusive file lock next to the cache. The
first process on a machine compiles and writes the cache while the others wait;
they then load finished files. Every stage's worker setup calls it once per
process (about 0.1 s when the cache is warm), and so does ``scripts/install.sh``.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import tempfile
import time
from typing import Iterator

import numpy as np

LOCK_NAME = "songshard-numba.lock"


def cache_dir() -> str:
    """Where numba writes librosa's cache: NUMBA_CACHE_DIR if set, else librosa's __pycache__."""
    configured = os.environ.get("NUMBA_CACHE_DIR")
    if configured:
        return configured
    import librosa

    return os.path.join(os.path.dirname(librosa.__file__), "__pycache__")


def lock_path() -> str:
    """The lock file: in the cache folder when it is writable, else in the temp folder."""
    folder = cache_dir()
    with contextlib.suppress(OSError):
        os.makedirs(folder, exist_ok=True)
    if os.access(folder, os.W_OK):
        return os.path.join(folder, LOCK_NAME)
    return os.path.join(tempfile.gettempdir(), LOCK_NAME)


@contextlib.contextmanager
def exclusive(path: str) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (created if missing) for the block."""
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _exercise(dtype: type) -> None:
    """One call of every numba-cached librosa function songshard reaches, in ``dtype``."""
    import librosa

    rng = np.random.default_rng(0)
    sr = 22050
    y = (0.1 * rng.standard_normal(sr * 2)).astype(dtype)
    onset = librosa.onset.onset_strength(y=y, sr=sr).astype(dtype)
    librosa.beat.beat_track(onset_envelope=onset, sr=sr)
    librosa.util.peak_pick(onset, pre_max=2, post_max=2, pre_avg=4, post_avg=4, delta=0.01, wait=2)
    librosa.onset.onset_detect(y=y, sr=sr, units="time")
    librosa.yin(y[:sr // 2], fmin=80, fmax=800, sr=sr, frame_length=2048)
    spec = librosa.stft(y, n_fft=1024, hop_length=256)
    librosa.istft(spec, hop_length=256, n_fft=1024, length=y.size)


@functools.lru_cache(maxsize=1)
def warm_librosa() -> float:
    """Compile or load librosa's numba cache under the machine-wide lock; seconds spent (once per process)."""
    start = time.perf_counter()
    with exclusive(lock_path()):
        for dtype in (np.float32, np.float64):
            _exercise(dtype)
    return time.perf_counter() - start


if __name__ == "__main__":  # scripts/install.sh: fill the cache once, before any run
    print(f"librosa numba cache ready in {warm_librosa():.1f} s ({cache_dir()})")
