"""Codec tokens of work-dir files, read window by window: a long song's three streams are never
whole in memory.

:func:`encode_file` gives the ids that ``backend.encode`` gives for the whole fitted stream
(``frames.fit_streams``: stereo, capped at 360 s, cut or zero-padded to the mix's length): a first
pass finds the peak (the gain of ``frames.peak_normalise``), a second feeds the 40 s windows to
``backend.encode_window`` in order, and the last windows are tiled from the stream's start as
``frames.tile_to`` tiles them. Memory: a read block, the window being built, and the stream's first
two windows (kept for that tiling), about 40 MB at 48 kHz stereo.
"""

from __future__ import annotations

from typing import Iterator, Optional

import numpy as np

from transforms.core import reading, stream
from transforms.tokens import frames

HEAD_WINDOWS = 2  # the tiled windows read at most this many windows of the stream's start


def fitted_length(mix_uri: str) -> int:
    """Samples of the fitted streams: the mix's, capped at 360 s."""
    return min(reading.num_samples(mix_uri), int(round(frames.MAX_SECONDS * frames.SAMPLE_RATE)))


def streams_in_windows(backend, length: int) -> bool:
    """Whether :func:`encode_file` applies: a codec that encodes 40 s windows through the base class
    (not one with its own ``encode_streams``), and a song longer than the tiling's head."""
    from transforms.tokens.backend import CodecBackend

    return (type(backend).encode_streams is CodecBackend.encode_streams
            and length > HEAD_WINDOWS * frames.WINDOW_SAMPLES)


def fitted_blocks(uri: str, length: int, block_seconds: float = reading.BLOCK_SECONDS) -> Iterator[np.ndarray]:
    """[2, n] float32 blocks of the work-dir file at ``uri`` as ``frames.fit_streams`` fits it: its first
    ``length`` samples, zero-padded past its end. Raises ValueError unless it is at 48 kHz."""
    at = 0
    block = int(block_seconds * frames.SAMPLE_RATE)
    with stream.open_reader(uri) as reader:
        if reader.sample_rate != frames.SAMPLE_RATE:
            raise ValueError(f"{uri}: codec streams must be at {frames.SAMPLE_RATE} Hz, not {reader.sample_rate}")
        for b in reader.blocks(block):
            if at >= length:
                break
            b = frames.stereo(b[:, :length - at])
            at += b.shape[1]
            yield b
    while at < length:
        n = min(block, length - at)
        at += n
        yield np.zeros((2, n), dtype=np.float32)


def _gain(uri: str, length: int) -> Optional[np.float32]:
    """``frames.peak_normalise``'s gain for the fitted stream (None: left as it is)."""
    peak = np.float32(0.0)
    for b in fitted_blocks(uri, length):
        if b.size:
            peak = max(peak, np.float32(np.max(np.abs(b))))
    if peak <= np.float32(frames.PEAK_LIMIT):
        return None
    return np.float32(float(frames.PEAK_LIMIT) / float(peak))


def _window_ids(backend, window: np.ndarray) -> np.ndarray:
    codes = np.asarray(backend.encode_window(window)).reshape(-1)
    if codes.shape[0] != frames.WINDOW_FRAMES:
        raise ValueError(f"codec gave {codes.shape[0]} frames for a 40 s window, expected {frames.WINDOW_FRAMES}")
    return codes


def encode_file(backend, uri: str, length: int) -> np.ndarray:
    """Ids [int(length / 48000 * 25) + 1] (int64) of the fitted stream of ``uri``: those of
    ``backend.encode`` on the whole fitted array. ``length`` must exceed two windows."""
    width = frames.WINDOW_SAMPLES
    if length <= HEAD_WINDOWS * width:
        raise ValueError(f"encode_file needs more than {HEAD_WINDOWS} windows of audio, got {length} samples")
    gain = _gain(uri, length)
    total = frames.frames_for_samples(length)
    count = frames.num_windows(total)
    head = np.zeros((2, 0), dtype=np.float32)
    buf, buf_start, ids = np.zeros((2, 0), dtype=np.float32), 0, []
    for b in fitted_blocks(uri, length):
        if gain is not None:
            b = (b * gain).astype(np.float32)
        if head.shape[1] < HEAD_WINDOWS * width:
            head = np.concatenate([head, b[:, :HEAD_WINDOWS * width - head.shape[1]]], axis=1)
        buf = np.concatenate([buf, b], axis=1)
        while buf.shape[1] >= width and len(ids) < count:
            ids.append(_window_ids(backend, buf[:, :width]))
            buf, buf_start = buf[:, width:], buf_start + width
    for i in range(len(ids), count):  # the windows past the end repeat the stream from its start
        index = np.arange(i * width, (i + 1) * width) % length
        late = index >= buf_start
        if np.any(index[~late] >= head.shape[1]):
            raise ValueError("a tiled window reaches past the kept head of the stream")
        window = np.empty((2, width), dtype=np.float32)
        window[:, late] = buf[:, index[late] - buf_start]
        window[:, ~late] = head[:, index[~late]]
        ids.append(_window_ids(backend, window))
    return np.concatenate(ids)[:total].astype(np.int64)


def read_clip(uri: str, length: int, start: float, end: float) -> np.ndarray:
    """``frames.clip`` of the fitted stream of ``uri`` (``length`` samples), read from the file alone."""
    a = int(round(start * frames.SAMPLE_RATE))
    b = min(length, int(round(end * frames.SAMPLE_RATE)))
    part = frames.stereo(reading.read_span(uri, a, max(0, b - a)))
    if part.shape[1] < b - a:  # a stem shorter than the mix: zero-padded, as fit_streams pads it
        part = np.pad(part, ((0, 0), (0, b - a - part.shape[1])))
    return part
