"""Audio arrays in the work dir, through Beam's FileSystems (local, gs://, s3://).

Stages pass work-dir URIs between them instead of audio, so that stems never
travel through a shuffle. A run stores its arrays ([channels, samples]) in one of
:data:`AUDIO_FORMATS` (``--work_audio``):

- ``npz``: float32 in an uncompressed ``.npz``, bit-exact, the largest (the default
  on a local work dir).
- ``flac24``: FLAC, 24-bit, scaled by 1/:data:`FLAC_HEADROOM` so that stems louder
  than full scale (up to +12 dB) survive; a third of the npz bytes for a song's
  four arrays (22.8 vs 73.0 MB per minute), 112-122 dB signal-to-error, 0.4 s to
  encode 3 minutes of stereo (the default on a remote work dir).
- ``flac16``: the same at 16 bits: about half of flac24's bytes, 74 dB signal-to-error.

Readers go by the file name's extension, so a run reads whatever format wrote it.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import tempfile
from typing import BinaryIO, Iterator, List, Tuple

import numpy as np
import soundfile as sf
from apache_beam.io.filesystem import BeamIOError, CompressionTypes
from apache_beam.io.filesystems import FileSystems


def join(*parts: str) -> str:
    return FileSystems.join(*parts) if parts else ""


AUDIO_FORMATS = {"flac24": ".flac", "flac16": ".flac", "npz": ".npz"}
DEFAULT_AUDIO_FORMAT = "npz"
FLAC_SUBTYPES = {"flac24": "PCM_24", "flac16": "PCM_16"}
FLAC_HEADROOM = 4.0  # stored = audio / 4: +12 dB over full scale fits, 24 bits keep 122 dB below it


def check_format(fmt: str) -> str:
    if fmt not in AUDIO_FORMATS:
        raise ValueError(f"unknown work-dir audio format {fmt!r}; choose one of {sorted(AUDIO_FORMATS)}")
    return fmt


def song_uri(work_dir: str, song_id: str, name: str, fmt: str = DEFAULT_AUDIO_FORMAT) -> str:
    """Where the array ``name`` ("mix", "vocals", ...) of a song lives in the work dir."""
    return join(work_dir, song_id, name + AUDIO_FORMATS[check_format(fmt)])


def is_flac(uri: str) -> bool:
    return uri.endswith(".flac")


def to_flac_samples(audio: np.ndarray) -> np.ndarray:
    """[channels, n] float audio as soundfile's [n, channels] frames, scaled by the headroom, clipped."""
    return np.clip(np.asarray(audio, dtype=np.float32).T / FLAC_HEADROOM, -1.0, 1.0)


def save_audio(uri: str, audio: np.ndarray, sample_rate: int, fmt: str = "") -> str:
    """Write ``audio`` ([channels, samples] float32) to ``uri``; returns ``uri``.

    ``fmt`` is one of AUDIO_FORMATS; empty: npz for ``.npz`` names, flac24 for ``.flac``.
    """
    fmt = check_format(fmt or ("flac24" if is_flac(uri) else "npz"))
    buf = io.BytesIO()
    if fmt == "npz":
        np.savez(buf, audio=np.ascontiguousarray(audio, dtype=np.float32), sample_rate=np.int64(sample_rate))
    else:
        sf.write(buf, to_flac_samples(audio), int(sample_rate), format="FLAC", subtype=FLAC_SUBTYPES[fmt])
    with FileSystems.create(uri) as f:
        f.write(buf.getvalue())
    return uri


def load_audio(uri: str) -> Tuple[np.ndarray, int]:
    """(audio [channels, samples] float32, sample_rate) from a URI written by save_audio."""
    with FileSystems.open(uri) as f:
        raw = io.BytesIO(f.read())
    if is_flac(uri):
        frames, sample_rate = sf.read(raw, dtype="float32", always_2d=True)
        return np.ascontiguousarray(frames.T * np.float32(FLAC_HEADROOM)), int(sample_rate)
    data = np.load(raw)
    return data["audio"], int(data["sample_rate"])


@contextlib.contextmanager
def open_read(uri: str) -> Iterator[BinaryIO]:
    """A seekable binary stream of ``uri`` (local or bucket), read on demand rather than whole. A store
    whose reader cannot seek is copied, a block at a time, to a local temporary file first."""
    with FileSystems.open(uri, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
        if getattr(raw, "seekable", lambda: False)():
            yield raw
            return
        with tempfile.TemporaryFile(prefix="songshard-") as local:
            shutil.copyfileobj(raw, local, 1 << 20)
            local.seek(0)
            yield local


_GCS_IO: dict = {}


def gcs_io():
    """Beam's Cloud Storage client for the current FileSystems options, one per process and options.

    Beam's GCS filesystem builds a new client for every call, and every new client fetches its
    bucket's metadata once more in the background (google-cloud-storage's bucket metadata cache):
    a second request for each small object read or deleted in bulk. Beam is pinned (setup.py), and
    with it the private accessor used here.
    """
    options = FileSystems._pipeline_options  # noqa: SLF001 - what FileSystems builds its clients from
    key = id(options)
    if key not in _GCS_IO:
        _GCS_IO.clear()
        _GCS_IO[key] = (options, FileSystems.get_filesystem("gs://songshard/")._gcsIO())  # noqa: SLF001
    return _GCS_IO[key][1]


def read_bytes(uri: str) -> bytes:
    """The whole object or file at ``uri``. In ``gs://`` one download request: Beam's reader asks for
    the object's metadata first, a second request for every small object read whole (parts, progress
    files, index parts). Raises what the store raises for a missing object."""
    if uri.startswith("gs://"):
        bucket, _, name = uri[len("gs://"):].partition("/")
        return gcs_io().client.bucket(bucket).blob(name).download_as_bytes(raw_download=True)
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


def is_local(uri: str) -> bool:
    """Whether ``uri`` names a local path (plain or ``file://``) rather than an object in a store."""
    return "://" not in uri or uri.startswith("file://")


def delete_tree(uri: str) -> None:
    """Delete ``uri`` and everything under it; nothing there is no error.

    A local ``uri`` is a folder (deleted with all it holds) or a file. In an object store
    (``gs://``, ``s3://``), where folders are only name prefixes that exist while something is
    under them, it is the object named ``uri``, if any, and every object whose name starts with
    ``uri/`` (not ``uri2/...``). Raises BeamIOError when the store refuses, or when objects are
    still listed under ``uri/`` afterwards (Beam's recursive delete on gs:// only logs failures).
    """
    if is_local(uri):
        if FileSystems.exists(uri):
            FileSystems.delete([uri])
        return
    base = uri.rstrip("/")
    if FileSystems.exists(base):
        FileSystems.delete([base])
    FileSystems.delete([base + "/"])  # a trailing slash: every object under the prefix, in batches
    left = list_uris(base + "/**")
    if left:
        raise BeamIOError(f"could not delete {len(left)} objects under {base}/, e.g. {left[0]}")


def load_audio_at(uri: str, rate: int):
    """The work-dir array at ``uri`` resampled to ``rate`` ([channels, samples] float32)."""
    from transforms.core.audio import resample

    audio, sr = load_audio(uri)
    return resample(audio, sr, rate) if sr != rate else audio


def list_uris(pattern: str) -> List[str]:
    """Sorted URIs matching ``pattern`` (a glob; ``**`` crosses folders).

    Empty when nothing matches: a local folder that does not exist yet, or a prefix in an
    object store with nothing under it. Any error from the store (a bucket that does not exist,
    permissions, a transient failure) raises BeamIOError: read as an empty OUT, it would make a
    resume redo every song and renumber shards from 000000.
    """
    try:
        found = FileSystems.match([pattern])[0].metadata_list
    except BeamIOError:
        folder = pattern.rsplit("/", 1)[0] if "/" in pattern else "."
        if is_local(pattern) and not any(c in folder for c in "*?[") and not FileSystems.exists(folder):
            return []
        raise
    if not found and pattern.startswith("s3://"):
        _check_s3_bucket(pattern)
    return sorted(m.path for m in found)


def _check_s3_bucket(uri: str) -> None:
    """Raise BeamIOError unless the bucket of ``uri`` exists and can be read.

    Beam's S3 listing answers every 404, a missing bucket included, with "no objects"; an empty
    listing is only believed once the bucket has been seen (``HeadBucket``), with the same client
    settings (pipeline options, then the AWS environment) as Beam's S3 filesystem.
    """
    from apache_beam.io.aws.clients.s3 import boto3_client
    from apache_beam.options.pipeline_options import PipelineOptions

    bucket = uri[len("s3://"):].split("/", 1)[0]
    client = boto3_client.Client(options=FileSystems._pipeline_options or PipelineOptions([]))
    try:
        client.client.head_bucket(Bucket=bucket)
    except Exception as e:  # noqa: BLE001 - botocore's errors, all of them a failed listing here
        raise BeamIOError(f"cannot list {uri}: bucket {bucket!r} cannot be read ({e})") from e
