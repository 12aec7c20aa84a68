"""Reading work-dir audio in bounded memory: what a stage needs of a file (a mono copy at a rate, its
frame RMS, a span), made block by block through :mod:`transforms.core.stream`'s readers.

Every function here gives the same samples as loading the whole array and transforming it
(``workdir.load_audio``, ``audio.to_mono``, ``audio.resample``, ``audio.frame_rms``), holding a
block at the file's rate and the (smaller) result instead of the whole 48 kHz stereo array.
"""

from __future__ import annotations

from typing import Dict, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from transforms.core.audio import FrameRms, StreamResampler
from transforms.core.stream import open_reader

BLOCK_SECONDS = 20.0  # a read block: 7.7 MB of 48 kHz stereo float32


class Loaded(NamedTuple):
    """A work-dir array read by :func:`read_audio`: float32 [channels, samples] at ``sample_rate``, and
    the length in seconds of the file it came from (before any resampling)."""

    audio: np.ndarray
    sample_rate: int
    seconds: float


class Views(NamedTuple):
    """What :func:`read_views` made of a file in one pass: ``mono[rate]`` (1-D float32 mixdowns),
    ``frame_rms`` (``audio.frame_rms`` of the mixdown at the file's rate, or None), the file's rate
    and length in seconds."""

    mono: Dict[int, np.ndarray]
    frame_rms: Optional[np.ndarray]
    sample_rate: int
    seconds: float


class _Resampled:
    """Blocks [C, n] at ``sr`` in, their concatenation at ``rate`` out (soxr's stream resampler: the
    same samples as one ``audio.resample`` call over the whole array)."""

    def __init__(self, sr: int, rate: int, channels: int, total: int):
        self.stream, self.channels = StreamResampler(sr, rate, channels), channels
        if self.stream.identity:  # filled in place: no second copy at the end
            self.out, self.at = np.empty((channels, total), dtype=np.float32), 0
        self.pieces, self.flushed = [], False

    def add(self, block: np.ndarray, last: bool) -> None:
        if self.stream.identity:
            self.out[:, self.at:self.at + block.shape[1]] = block
            self.at += block.shape[1]
        else:
            self.pieces.append(self.stream.push(block, last=last))
            self.flushed = last

    def result(self) -> np.ndarray:
        if self.stream.identity:
            return self.out[:, :self.at]
        if not self.flushed:  # an empty file, or one shorter than its header said
            self.pieces.append(self.stream.flush(self.channels))
        return np.ascontiguousarray(np.concatenate(self.pieces, axis=1), dtype=np.float32)


def _feed(uri: str, sinks, block_seconds: float):
    """Read ``uri`` once, block by block, into ``sinks(sample_rate, channels, total)`` (a list of
    (transform of a block, sink) pairs); returns (sample rate, total samples)."""
    with open_reader(uri) as reader:
        sr, channels, total = reader.sample_rate, reader.channels, reader.num_samples
        pairs = sinks(sr, channels, total)
        left = total
        for block in reader.blocks(max(1, int(block_seconds * sr))):
            left -= block.shape[1]
            for view, sink in pairs:
                sink.add(view(block), left <= 0)
        return sr, total


def _mono(block: np.ndarray) -> np.ndarray:
    return block.mean(axis=0, keepdims=True)


def read_audio(uri: str, rate: Optional[int] = None, mono: bool = False,
               block_seconds: float = BLOCK_SECONDS) -> Loaded:
    """A work-dir audio file read block by block, optionally mixed down to mono and resampled to ``rate``.

    Holds one block of the file's rate at a time besides the result, so the peak is the result's size
    (plus a block), not the file's bytes plus a full-rate copy as ``workdir.load_audio`` needs. The
    samples equal ``audio.resample(audio.to_mono(load_audio(uri)[0]), sr, rate)`` exactly (soxr's stream
    resampler gives the one-shot resampler's output; the mixdown is per sample).
    """
    made = {}

    def sinks(sr, channels, total):
        made["out"] = _Resampled(sr, int(rate or sr), 1 if mono else channels, total)
        return [(_mono if mono else (lambda b: b), made["out"])]

    sr, total = _feed(uri, sinks, block_seconds)
    return Loaded(made["out"].result(), int(rate or sr), total / float(sr))


def read_views(uri: str, rates: Sequence[int] = (), frame_hop_s: Optional[float] = None,
               block_seconds: float = BLOCK_SECONDS) -> Views:
    """The mono mixdown of a work-dir file at each of ``rates`` and, with ``frame_hop_s``, its frame
    RMS, all from one pass over the file (each equal to what :func:`read_audio` / :func:`frame_rms`
    give): a stage that needs several views of a stem reads (or downloads) it once."""
    made = {}

    def sinks(sr, channels, total):
        for rate in rates:
            made[rate] = _Resampled(sr, int(rate), 1, total)
        pairs = [(_mono, made[rate]) for rate in rates]
        if frame_hop_s is not None:
            made["rms"] = FrameRms(sr, frame_hop_s)
            pairs.append((lambda b: b, made["rms"]))
        return pairs

    sr, total = _feed(uri, sinks, block_seconds)
    return Views({int(rate): made[rate].result()[0] for rate in rates},
                 made["rms"].result() if frame_hop_s is not None else None, sr, total / float(sr))


def frame_rms(uri: str, hop_s: float = 0.1, block_frames: int = 200) -> Tuple[np.ndarray, int]:
    """(``audio.frame_rms`` of the file's mono mixdown, the file's sample rate), read block by block.

    Frames that span blocks wait for their end, so each frame's RMS is computed from the same samples
    in the same order as over the whole array: the values are identical.
    """
    views = read_views(uri, (), hop_s, block_seconds=block_frames * hop_s)
    return views.frame_rms, views.sample_rate


def num_samples(uri: str) -> int:
    """Samples per channel of a work-dir audio file (from its header)."""
    with open_reader(uri) as reader:
        return int(reader.num_samples)


def read_span(uri: str, start: int, count: int, mono: bool = False,
              block_seconds: float = BLOCK_SECONDS) -> np.ndarray:
    """Samples ``start`` .. ``start + count`` of a work-dir audio file (fewer at its end), float32
    [channels, n] or its mono mixdown [1, n]; the blocks before ``start`` are read and dropped."""
    with open_reader(uri) as reader:
        out = np.empty((1 if mono else reader.channels, max(0, min(count, reader.num_samples - start))), np.float32)
        at = 0
        for block in reader.blocks(max(1, int(block_seconds * reader.sample_rate))):
            lo, hi = max(start, at), min(start + out.shape[1], at + block.shape[1])
            if hi > lo:
                part = block[:, lo - at:hi - at]
                out[:, lo - start:hi - start] = part.mean(axis=0, keepdims=True) if mono else part
            at += block.shape[1]
            if at >= start + out.shape[1]:
                break
        return out
