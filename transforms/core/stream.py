"""Block-wise reading and writing of work-dir audio, so that long songs fit in bounded memory.

The files are the ones ``transforms.core.workdir.save_audio`` writes and ``load_audio``
reads, in either format; :func:`open_reader` and :func:`open_writer` pick the class.

- ``.npz``: an uncompressed ``.npz`` holding ``audio`` (float32 [channels, samples])
  and ``sample_rate``. :class:`AudioWriter` streams ``audio`` in Fortran order
  (samples interleaved), which ``np.load`` and ``load_audio`` read back as the same
  [channels, samples] array; :class:`AudioReader` reads either order block by block.
- ``.flac``: :class:`FlacWriter` encodes block by block into a local file (FLAC
  needs a seekable file to finish its header), renamed into place for a local work
  dir or copied to a remote one; :class:`FlacReader` decodes block by block.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import zipfile
from typing import Iterator, Union

import numpy as np
import soundfile as sf
from apache_beam.io.filesystems import FileSystems

from transforms.core import workdir

_READ_BYTES = 1 << 20


def _skip(stream, nbytes: int) -> None:
    while nbytes > 0:
        got = len(stream.read(min(nbytes, _READ_BYTES)))
        if got == 0:
            raise EOFError("audio file ends early")
        nbytes -= got


def _read_exact(stream, nbytes: int) -> bytes:
    data = stream.read(nbytes)
    if len(data) != nbytes:
        raise EOFError("audio file ends early")
    return data


class _Reader:
    """What both readers share: ``with reader: ...`` closes it."""

    def close(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class AudioReader(_Reader):
    """Reads a work-dir audio file in blocks: ``with AudioReader(uri) as r: for b in r.blocks(n)``.

    Attributes: ``sample_rate``, ``channels``, ``num_samples``. Blocks are float32
    [channels, n] (the last one shorter). Raises ValueError if the file holds no
    2-D ``audio`` array.
    """

    def __init__(self, uri: str):
        self.uri = uri
        self._file = FileSystems.open(uri)
        if not (hasattr(self._file, "seekable") and self._file.seekable()):
            self._file = io.BytesIO(self._file.read())  # zip needs seeks; small stores only
        self._zip = zipfile.ZipFile(self._file)
        with self._zip.open("sample_rate.npy") as f:
            self.sample_rate = int(np.load(f))
        self._handles = [self._zip.open("audio.npy")]
        version = np.lib.format.read_magic(self._handles[0])
        shape, fortran, dtype = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                 else np.lib.format.read_array_header_2_0)(self._handles[0])
        if len(shape) != 2:
            raise ValueError(f"{uri}: audio must be [channels, samples], got shape {shape}")
        self.channels, self.num_samples = int(shape[0]), int(shape[1])
        self.dtype, self.fortran = np.dtype(dtype), bool(fortran)
        if not self.fortran:  # channel-major: one handle per channel, each read forward
            header = self._handles[0].tell()
            for c in range(1, self.channels):
                h = self._zip.open("audio.npy")
                _skip(h, header + c * self.num_samples * self.dtype.itemsize)
                self._handles.append(h)

    def blocks(self, block_samples: int) -> Iterator[np.ndarray]:
        left = self.num_samples
        size = self.dtype.itemsize
        while left > 0:
            n = min(block_samples, left)
            if self.fortran:
                raw = np.frombuffer(_read_exact(self._handles[0], n * self.channels * size), self.dtype)
                block = raw.reshape(n, self.channels).T
            else:
                block = np.stack([np.frombuffer(_read_exact(h, n * size), self.dtype) for h in self._handles])
            left -= n
            yield np.ascontiguousarray(block, dtype=np.float32)

    def close(self) -> None:
        for h in self._handles:
            h.close()
        self._zip.close()
        self._file.close()


class _BlockWriter:
    """What every work-dir writer shares: ``write`` takes float32 [channels, n] blocks and stores
    no more than ``num_samples``; ``_pad`` fills the rest with silence before the file is finished."""

    def __init__(self, uri: str, channels: int, num_samples: int, sample_rate: int):
        self.uri, self.channels, self.num_samples, self.sample_rate = uri, channels, num_samples, sample_rate
        self.written = 0

    def _put(self, block: np.ndarray) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def write(self, block: np.ndarray) -> None:
        block = np.asarray(block, dtype=np.float32)
        if block.ndim != 2 or block.shape[0] != self.channels:
            raise ValueError(f"expected [{self.channels}, n] audio, got shape {block.shape}")
        n = min(block.shape[1], self.num_samples - self.written)
        if n > 0:
            self._put(block[:, :n])
            self.written += n

    def _pad(self) -> None:
        missing = self.num_samples - self.written
        while missing > 0:
            n = min(missing, _READ_BYTES)
            self.write(np.zeros((self.channels, n), dtype=np.float32))
            missing -= n


class AudioWriter(_BlockWriter):
    """Writes a work-dir audio file block by block; exactly ``num_samples`` samples are stored.

    ``write`` takes float32 [channels, n]; ``close`` pads with silence or trims to
    ``num_samples`` and finishes the file. Nothing is readable at ``uri`` before
    ``close`` returns; ``abort`` drops a half-written file's handle.
    """

    def __init__(self, uri: str, channels: int, num_samples: int, sample_rate: int):
        super().__init__(uri, channels, num_samples, sample_rate)
        self._file = FileSystems.create(uri)
        self._zip = zipfile.ZipFile(self._file, "w", zipfile.ZIP_STORED, allowZip64=True)
        self._member = self._zip.open("audio.npy", "w", force_zip64=True)
        header = {"descr": "<f4", "fortran_order": True, "shape": (channels, num_samples)}
        np.lib.format.write_array_header_2_0(self._member, header)

    def _put(self, block: np.ndarray) -> None:
        self._member.write(np.ascontiguousarray(block.T, dtype="<f4").tobytes())

    def close(self) -> str:
        self._pad()
        self._member.close()
        buf = io.BytesIO()
        np.save(buf, np.int64(self.sample_rate))
        self._zip.writestr("sample_rate.npy", buf.getvalue())
        self._zip.close()
        self._file.close()
        return self.uri

    def abort(self) -> None:
        for closer in (self._member.close, self._zip.close, self._file.close):
            try:
                closer()
            except Exception:  # noqa: BLE001 - already failing; the file is discarded
                pass


def _is_local(uri: str) -> bool:
    return "://" not in uri


class FlacReader(_Reader):
    """Reads a work-dir FLAC file in blocks; the same interface as :class:`AudioReader`."""

    def __init__(self, uri: str):
        self.uri = uri
        self._file = open(uri, "rb") if _is_local(uri) else FileSystems.open(uri)
        if not (hasattr(self._file, "seekable") and self._file.seekable()):
            self._file = io.BytesIO(self._file.read())  # compressed, a fraction of the float32 size
        self._sf = sf.SoundFile(self._file)
        self.sample_rate, self.channels, self.num_samples = self._sf.samplerate, self._sf.channels, self._sf.frames

    def blocks(self, block_samples: int) -> Iterator[np.ndarray]:
        for frames in self._sf.blocks(blocksize=block_samples, dtype="float32", always_2d=True):
            yield np.ascontiguousarray(frames.T * np.float32(workdir.FLAC_HEADROOM))

    def close(self) -> None:
        self._sf.close()
        self._file.close()


class FlacWriter(_BlockWriter):
    """Writes a work-dir FLAC file block by block; the same interface as :class:`AudioWriter`."""

    def __init__(self, uri: str, channels: int, num_samples: int, sample_rate: int, fmt: str = "flac24"):
        super().__init__(uri, channels, num_samples, sample_rate)
        if _is_local(uri):
            os.makedirs(os.path.dirname(os.path.abspath(uri)), exist_ok=True)
            fd, self._local = tempfile.mkstemp(suffix=".flac.tmp", dir=os.path.dirname(os.path.abspath(uri)))
        else:
            fd, self._local = tempfile.mkstemp(suffix=".flac")
        os.close(fd)
        self._sf = sf.SoundFile(self._local, "w", samplerate=int(sample_rate), channels=int(channels),
                                format="FLAC", subtype=workdir.FLAC_SUBTYPES[fmt])

    def _put(self, block: np.ndarray) -> None:
        self._sf.write(workdir.to_flac_samples(block))

    def close(self) -> str:
        self._pad()
        self._sf.close()
        try:
            if _is_local(self.uri):
                os.replace(self._local, self.uri)
            else:
                with open(self._local, "rb") as src, FileSystems.create(self.uri) as dst:
                    shutil.copyfileobj(src, dst, _READ_BYTES)
        finally:
            if os.path.exists(self._local):
                os.unlink(self._local)
        return self.uri

    def abort(self) -> None:
        try:
            self._sf.close()
        except Exception:  # noqa: BLE001 - already failing; the file is discarded
            pass
        if os.path.exists(self._local):
            os.unlink(self._local)


def open_reader(uri: str) -> Union[AudioReader, FlacReader]:
    """A block reader for a work-dir audio file of either format."""
    return FlacReader(uri) if workdir.is_flac(uri) else AudioReader(uri)


def open_writer(uri: str, channels: int, num_samples: int, sample_rate: int,
                fmt: str = workdir.DEFAULT_AUDIO_FORMAT) -> Union[AudioWriter, FlacWriter]:
    """A block writer for a work-dir audio file in ``fmt`` (one of workdir.AUDIO_FORMATS)."""
    if workdir.check_format(fmt) == "npz":
        return AudioWriter(uri, channels, num_samples, sample_rate)
    return FlacWriter(uri, channels, num_samples, sample_rate, fmt)
