"""Audio arrays in the work dir, through Beam's FileSystems (local, gs://, s3://).

Stages pass work-dir URIs between them instead of audio, so that stems never
travel through a shuffle. Arrays are stored as ``.npy`` (float32, shape
``[channels, samples]``) with the sample rate in the file name's sibling dict.
"""

from __future__ import annotations

import io
from typing import List, Tuple

import numpy as np
from apache_beam.io.filesystem import BeamIOError
from apache_beam.io.filesystems import FileSystems


def join(*parts: str) -> str:
    return FileSystems.join(*parts) if parts else ""


def song_uri(work_dir: str, song_id: str, name: str) -> str:
    """Where the array ``name`` ("mix", "vocals", ...) of a song lives in the work dir."""
    return join(work_dir, song_id, name + ".npz")


def save_audio(uri: str, audio: np.ndarray, sample_rate: int) -> str:
    """Write ``audio`` ([channels, samples] float32) to ``uri``; returns ``uri``."""
    buf = io.BytesIO()
    np.savez(buf, audio=np.ascontiguousarray(audio, dtype=np.float32), sample_rate=np.int64(sample_rate))
    with FileSystems.create(uri) as f:
        f.write(buf.getvalue())
    return uri


def load_audio(uri: str) -> Tuple[np.ndarray, int]:
    """(audio [channels, samples] float32, sample_rate) from a URI written by save_audio."""
    with FileSystems.open(uri) as f:
        data = np.load(io.BytesIO(f.read()))
    return data["audio"], int(data["sample_rate"])


def read_bytes(uri: str) -> bytes:
    with FileSystems.open(uri) as f:
        return f.read()


def write_bytes(uri: str, data: bytes) -> None:
    with FileSystems.create(uri) as f:
        f.write(data)


def open_write(uri: str):
    """A writable binary stream at ``uri`` (closed by the caller, e.g. ``with``)."""
    return FileSystems.create(uri)


def exists(uri: str) -> bool:
    return FileSystems.exists(uri)


def delete_tree(uri: str) -> None:
    """Delete a work-dir folder and all it holds (no error if it is gone)."""
    if FileSystems.exists(uri):
        FileSystems.delete([uri])


def load_audio_at(uri: str, rate: int):
    """The work-dir array at ``uri`` resampled to ``rate`` ([channels, samples] float32)."""
    from transforms.core.audio import resample

    audio, sr = load_audio(uri)
    return resample(audio, sr, rate) if sr != rate else audio


def list_uris(pattern: str) -> List[str]:
    """Sorted URIs matching ``pattern``; [] when nothing matches or the folder does not exist yet.

    Any other listing error (permissions, a transient storage failure) is raised:
    read as an empty OUT, it would make a resume renumber shards from 000000.
    """
    try:
        return sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)
    except BeamIOError:
        folder = pattern.rsplit("/", 1)[0] if "/" in pattern else "."
        if "*" not in folder and not FileSystems.exists(folder):
            return []
        raise
