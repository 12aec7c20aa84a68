"""Overlap-add over fixed-length chunks of a stream, in bounded memory. Pure numpy.

A separator sees the song as chunks of ``length`` samples starting every ``hop``
samples (the last ones zero-padded past the end). Each chunk's output is weighted
by a trapezoid (linear ramps of ``fade`` samples, ``fade = length // 2`` being
demucs's own triangle) and the weighted sum is divided by the summed weights, so
chunk borders cross-fade. Output is released as soon as no later chunk can touch
it: memory holds about ``batch + 1`` chunks whatever the song's length.
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator, List

import numpy as np

Process = Callable[[np.ndarray], np.ndarray]  # [B, C, L] -> [B, S, C, L]


def fade_weights(length: int, fade: int) -> np.ndarray:
    """Trapezoid of ``length`` samples, ramps of ``fade`` samples; every weight is > 0."""
    fade = int(min(max(fade, 1), (length + 1) // 2))
    i = np.arange(length, dtype=np.float64)
    return np.minimum(1.0, np.minimum(i + 1, length - i) / fade).astype(np.float32)


def chunk_starts(total: int, length: int, hop: int) -> List[int]:
    """Start samples of the chunks covering ``total`` samples (at least one chunk)."""
    starts = [0]
    while starts[-1] + length < total:
        starts.append(starts[-1] + hop)
    return starts


class _Frames:
    """Cuts an iterator of [C, n] blocks into [C, length] chunks every ``hop`` samples."""

    def __init__(self, blocks: Iterable[np.ndarray], length: int, hop: int):
        self.blocks = iter(blocks)
        self.length, self.hop = length, hop
        self.buf: np.ndarray | None = None  # samples from absolute position self.pos on
        self.pos = 0
        self.total = 0
        self.done = False
        self.next_start = 0
        self.finished = False  # a chunk already reached the end of the stream

    def _fill(self, upto: int) -> None:
        while not self.done and self.pos + (0 if self.buf is None else self.buf.shape[1]) < upto:
            try:
                block = np.asarray(next(self.blocks), dtype=np.float32)
            except StopIteration:
                self.done = True
                break
            self.total += block.shape[1]
            self.buf = block if self.buf is None else np.concatenate([self.buf, block], axis=1)

    def __iter__(self) -> Iterator[tuple]:
        """Yields (start, chunk [C, length], is_last)."""
        while not self.finished:
            start = self.next_start
            self._fill(start + self.length + 1)  # one sample more tells whether the stream ends here
            if self.buf is None:
                raise ValueError("empty audio stream")
            offset = start - self.pos
            chunk = self.buf[:, offset:offset + self.length]
            if chunk.shape[1] < self.length:
                chunk = np.pad(chunk, ((0, 0), (0, self.length - chunk.shape[1])))
            self.finished = self.done and start + self.length >= self.total
            yield start, chunk, self.finished
            self.next_start = start + self.hop
            drop = self.next_start - self.pos
            if drop > 0:
                self.buf = self.buf[:, drop:]
                self.pos = self.next_start


def overlap_add(blocks: Iterable[np.ndarray], process: Process, length: int, hop: int,
                fade: int | None = None, batch: int = 1) -> Iterator[np.ndarray]:
    """Run ``process`` on overlapping chunks of a stream; yield finished output blocks in order.

    In: ``blocks`` [C, n] float32 (any sizes), ``process`` mapping a batch
    [B, C, length] to [B, S, C, length]. Out: [S, C, m] float32 blocks whose
    lengths sum to the stream's length. ``process`` is called with at most
    ``batch`` chunks at a time. Raises ValueError on an empty stream or hop > length.
    """
    if not 0 < hop <= length:
        raise ValueError(f"hop must be in (0, length], got hop={hop} length={length}")
    weights = fade_weights(length, length // 2 if fade is None else fade)
    frames = _Frames(blocks, length, hop)
    acc: np.ndarray | None = None  # weighted output sum from absolute position acc_pos on
    wsum = np.zeros(0, dtype=np.float32)
    acc_pos = 0
    pending: list = []

    def flush(final: bool):
        nonlocal acc, wsum, acc_pos
        starts = [s for s, _ in pending]
        out = np.asarray(process(np.stack([c for _, c in pending])), dtype=np.float32)
        pending.clear()
        if out.ndim != 4 or out.shape[0] != len(starts) or out.shape[-1] != length:
            raise ValueError(f"separator returned shape {out.shape} for {len(starts)} chunks of {length}")
        end = starts[-1] + length
        if acc is None:
            acc = np.zeros(out.shape[1:3] + (0,), dtype=np.float32)
        grow = end - acc_pos - acc.shape[-1]
        if grow > 0:
            acc = np.concatenate([acc, np.zeros(acc.shape[:2] + (grow,), dtype=np.float32)], axis=-1)
            wsum = np.concatenate([wsum, np.zeros(grow, dtype=np.float32)])
        for start, chunk_out in zip(starts, out):
            a = start - acc_pos
            acc[..., a:a + length] += chunk_out * weights
            wsum[a:a + length] += weights
        # Everything before the next chunk's start is final.
        ready = (frames.total if final else starts[-1] + hop) - acc_pos
        ready = min(ready, acc.shape[-1])
        block = acc[..., :ready] / wsum[:ready]
        acc, wsum = acc[..., ready:], wsum[ready:]
        acc_pos += ready
        return block

    for start, chunk, last in frames:
        pending.append((start, chunk))
        if len(pending) >= batch or last:
            block = flush(last)
            if block.shape[-1]:
                yield block
