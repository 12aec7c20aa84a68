"""A song's input read block by block: checks and content id in a first pass, the work-dir copies in a
second, so decode's memory no longer grows with the cut.

:func:`open_source` opens a seekable binary stream with soundfile (wav, flac, ogg, mp3, opus ...) or,
failing that, has ffmpeg decode the cut to a raw float32 file on local disk. Either way it scans the
decoded cut once (:class:`Scan`: sample count, peak, whether every sample is finite, and the content
id of :func:`transforms.decode.content_id`, hashed channel by channel as that function hashes the
whole array) before :meth:`Source.blocks` is read again by the caller. A decoder error anywhere in
the scan falls through to the next decoder, as a failed whole-file decode did.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from typing import BinaryIO, Iterator, Optional

import numpy as np

BLOCK_FRAMES = 1 << 18  # 5.9 s at 44.1 kHz: 2 MB of stereo float32


def pcm16(block: np.ndarray) -> np.ndarray:
    """The 16-bit PCM the content id hashes (as ``transforms.decode.content_id``)."""
    return np.clip(np.round(block * 32767.0), -32768, 32767).astype("<i2")


class ContentHasher:
    """``content_id`` of [C, N] audio fed as blocks: channel 0 is hashed as it comes; the other channels'
    PCM waits in local temporary files, so the digest is that of the whole array's channel-major bytes."""

    def __init__(self, sample_rate: int, channels: int):
        self._hash = hashlib.sha256(str(sample_rate).encode())
        self._spools = [tempfile.TemporaryFile(prefix="songshard-") for _ in range(channels - 1)]

    def add(self, block: np.ndarray) -> None:
        pcm = pcm16(block)
        self._hash.update(np.ascontiguousarray(pcm[0]).tobytes())
        for spool, channel in zip(self._spools, pcm[1:]):
            spool.write(np.ascontiguousarray(channel).tobytes())

    def hexdigest(self) -> str:
        for spool in self._spools:
            spool.seek(0)
            for chunk in iter(lambda s=spool: s.read(1 << 20), b""):
                self._hash.update(chunk)
            spool.close()
        self._spools = []
        return self._hash.hexdigest()[:16]


@dataclass
class Scan:
    frames: int
    peak: float
    finite: bool
    content_id: str


class Source:
    """A decoded cut: ``sample_rate``, ``channels``, ``container``, ``codec``, ``duration`` (the whole
    file's length in s), ``scan``; :meth:`blocks` yields float32 [channels, n] from the start again."""

    sample_rate: int
    channels: int
    container: str
    codec: str
    duration: float
    scan: Scan

    def blocks(self, block_frames: Optional[int] = None) -> Iterator[np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        """Release the decoder and any temporary file."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _scan(self) -> Scan:
        hasher, frames, peak, finite = ContentHasher(self.sample_rate, self.channels), 0, 0.0, True
        for block in self.blocks():
            frames += block.shape[1]
            finite = finite and bool(np.all(np.isfinite(block)))
            peak = max(peak, float(np.max(np.abs(block))) if block.size else 0.0)
            hasher.add(block)
        return Scan(frames, peak, finite, hasher.hexdigest())


class SoundfileSource(Source):
    """soundfile on the stream itself: only the cut (``max_seconds``, 0: all) is ever read."""

    def __init__(self, stream: BinaryIO, max_seconds: float = 0.0):
        import soundfile as sf

        self._stream = stream
        stream.seek(0)
        self._file = sf.SoundFile(stream)
        self.sample_rate, self.channels = int(self._file.samplerate), int(self._file.channels)
        self.container, self.codec = self._file.format.lower(), self._file.subtype.lower()
        self.duration = self._file.frames / float(self.sample_rate) if self._file.frames > 0 else 0.0
        self._limit = int(max_seconds * self.sample_rate) if max_seconds else None
        try:
            self.scan = self._scan()
        except BaseException:
            self.close()
            raise

    def blocks(self, block_frames: Optional[int] = None) -> Iterator[np.ndarray]:
        import soundfile as sf

        block_frames = block_frames or BLOCK_FRAMES
        if self._file.tell():  # each pass from a fresh decoder: libsndfile cannot seek back in every format
            self._file.close()
            self._stream.seek(0)
            self._file = sf.SoundFile(self._stream)
        left = self._limit
        while left is None or left > 0:
            n = block_frames if left is None else min(block_frames, left)
            block = self._file.read(frames=n, dtype="float32", always_2d=True)
            if not len(block):
                return
            if left is not None:
                left -= len(block)
            yield np.ascontiguousarray(block.T)

    def close(self) -> None:
        self._file.close()


class RawSource(Source):
    """ffmpeg's decode of the cut, as interleaved float32 in a local temporary file (deleted on close)."""

    def __init__(self, path: str, sample_rate: int, channels: int, container: str, codec: str, duration: float):
        self._path = path
        self.sample_rate, self.channels, self.container, self.codec = sample_rate, channels, container, codec
        self.duration = duration
        self.scan = self._scan()
        self.duration = duration or self.scan.frames / float(sample_rate)

    def blocks(self, block_frames: Optional[int] = None) -> Iterator[np.ndarray]:
        block_frames = block_frames or BLOCK_FRAMES
        frame_bytes = 4 * self.channels
        with open(self._path, "rb") as f:
            while True:
                raw = f.read(block_frames * frame_bytes)
                raw = raw[: len(raw) // frame_bytes * frame_bytes]
                if not raw:
                    return
                yield np.frombuffer(raw, dtype="<f4").reshape(-1, self.channels).T.copy()

    def close(self) -> None:
        if os.path.exists(self._path):
            os.unlink(self._path)


def ffmpeg_to_raw(local: str, out: str, max_seconds: float) -> subprocess.CompletedProcess:
    """ffmpeg decodes ``local``'s first audio stream (at most ``max_seconds``; 0: all) to raw float32."""
    limit = ["-t", f"{max_seconds:.3f}"] if max_seconds else []
    return subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-i", local, "-map", "0:a:0", *limit,
                           "-f", "f32le", "-acodec", "pcm_f32le", out], capture_output=True, timeout=3600)


def copy_to_local(stream: BinaryIO, suffix: str) -> str:
    """The stream's bytes in a new local temporary file (copied 1 MB at a time); its path."""
    fd, path = tempfile.mkstemp(suffix=suffix, prefix="songshard-")
    with os.fdopen(fd, "wb") as local:
        stream.seek(0)
        shutil.copyfileobj(stream, local, 1 << 20)
    return path


def resampled_length(n: int, rate_in: int, rate_out: int) -> int:
    """Samples ``audio.resample`` (soxr) gives for ``n`` input samples: n x rate_out / rate_in, halves up."""
    return n if rate_in == rate_out else (2 * n * rate_out + rate_in) // (2 * rate_in)


def write_work_copies(src: Source, keep: int, mix_uri: str, mono_uri: str, fmt: str) -> int:
    """Write the first ``keep`` frames of ``src`` as the 48 kHz stereo mix and the 16 kHz mono copy,
    block by block: the samples ``to_stereo(resample(audio))`` and ``resample(to_mono(audio))`` give.
    Returns the mix's length in samples. A half-written file is dropped if anything fails."""
    from transforms.core import audio as au
    from transforms.core.stream import open_writer

    sr = src.sample_rate
    targets = [(au.CODEC_RATE, src.channels, 2, mix_uri), (au.ASR_RATE, 1, 1, mono_uri)]
    lengths = [resampled_length(keep, sr, rate) for rate, *_ in targets]
    writers = []
    try:
        for (rate, _, out_channels, uri), n in zip(targets, lengths):
            writers.append(open_writer(uri, out_channels, n, rate, fmt))
        streams = [au.StreamResampler(sr, rate, channels) for rate, channels, *_ in targets]
        left = keep
        for block in src.blocks():
            block = block[:, :left]
            left -= block.shape[1]
            _push(block, left <= 0, streams, writers)
            if left <= 0:
                break
        else:  # the decoder gave fewer frames than expected: flush what the resamplers hold
            _push(np.zeros((src.channels, 0), np.float32), True, streams, writers)
        for w in writers:
            w.close()
    except BaseException:
        for w in writers:
            w.abort()
        raise
    return lengths[0]


def _push(block: np.ndarray, last: bool, streams, writers) -> None:
    from transforms.core import audio as au

    views = (block, au.to_mono(block))
    for view, stream, writer, fold in zip(views, streams, writers, (au.to_stereo, lambda x: x)):
        view = stream.push(view, last=last)
        if view.shape[1]:
            writer.write(fold(view))
