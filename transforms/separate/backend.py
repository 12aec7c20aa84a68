"""What every separator shares: the backend interface and the streaming run over a song.

A :class:`SeparatorBackend` separates fixed-length chunks at its own sample rate
(``process``: [B, C, L] -> [B, S, C, L]); :func:`separate_blocks` feeds it a song
as a stream (resampled on the fly, cut into overlapping chunks, cross-faded back,
resampled to the song's rate), so that memory does not grow with the song's length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, Iterator, Tuple

import numpy as np

from transforms.core.audio import StreamResampler  # noqa: F401 - used here, and by name from here
from transforms.core.facts import CODEC_RATE
from transforms.core.stage import Backend
from transforms.separate.overlap import overlap_add

BLOCK_SECONDS = 10.0  # how much of the song is read at a time


class SeparatorBackend(Backend):
    """A separator of stage "separate".

    Subclasses set ``stems`` (names of ``process``'s outputs, in order),
    ``sample_rate``, ``channels`` and the chunking (``chunk_length``, ``hop``,
    ``fade`` in samples at ``sample_rate``; ``batch`` chunks per call), and
    implement ``process``.
    """

    stage = "separate"
    stems: Tuple[str, ...] = ()
    sample_rate: int = CODEC_RATE
    channels: int = 2
    chunk_length: int = 0
    hop: int = 0
    fade: int = 0
    batch: int = 1
    needs_normalisation: bool = False  # wants the mix standardised by the song's mean / std

    def process(self, chunks: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        """[B, channels, chunk_length] float32 -> [B, len(stems), channels, chunk_length]."""
        raise NotImplementedError

    def separate(self, mix: np.ndarray, sample_rate: int) -> Dict[str, np.ndarray]:
        """In-memory convenience: {stem: [C, N] float32 at ``sample_rate``} for a [C, N] mix."""
        mix = np.asarray(mix, dtype=np.float32)
        n = mix.shape[1]
        step = int(BLOCK_SECONDS * sample_rate)
        blocks = (mix[:, i:i + step] for i in range(0, n, step))
        norm = None
        if self.needs_normalisation:
            ref = mix.mean(axis=0, dtype=np.float64)
            norm = (float(ref.mean()), float(ref.std()))
        out = np.concatenate(list(separate_blocks(self, blocks, sample_rate, mix.shape[0], norm=norm)),
                             axis=-1)
        out = fit_length(out, n)
        return {name: out[k] for k, name in enumerate(self.stems)}


@dataclass
class MixStats:
    """Whole-song figures of a mix, gathered in one streamed pass (:meth:`add` per block)."""

    samples: int = 0  # per channel
    energy: float = 0.0  # sum of squares over all channels
    values: int = 0  # samples * channels
    ref_sum: float = 0.0  # of the channel mean (demucs's "ref")
    ref_sq: float = 0.0

    def add(self, block: np.ndarray) -> None:
        block = np.asarray(block, dtype=np.float64)
        ref = block.mean(axis=0)
        self.samples += block.shape[1]
        self.values += block.size
        self.energy += float(np.sum(block * block))
        self.ref_sum += float(ref.sum())
        self.ref_sq += float(np.dot(ref, ref))

    def norm(self) -> Tuple[float, float]:
        """(mean, std) of the channel-mean signal, as demucs standardises a mix."""
        n = max(self.samples, 1)
        mean = self.ref_sum / n
        return mean, float(np.sqrt(max(self.ref_sq / n - mean * mean, 0.0)))


@dataclass
class RunStats:
    chunks: int = 0  # chunks the backend separated ("segments" of the label)
    calls: int = 0  # calls of backend.process


def fit_length(audio: np.ndarray, n: int) -> np.ndarray:
    """Trim or zero-pad the last axis to ``n`` samples."""
    if audio.shape[-1] >= n:
        return audio[..., :n]
    pad = [(0, 0)] * (audio.ndim - 1) + [(0, n - audio.shape[-1])]
    return np.pad(audio, pad)


def separate_blocks(backend: SeparatorBackend, blocks: Iterable[np.ndarray], sample_rate: int,
                    channels: int, stats: RunStats | None = None,
                    norm: Tuple[float, float] | None = None) -> Iterator[np.ndarray]:
    """Separate a stream of [channels, n] mix blocks; yields [S, channels, m] stem blocks.

    The stems come back at ``sample_rate`` with the input's channel count (mono
    input is duplicated for a stereo model and folded back). Their total length
    may differ from the input's by the resampler's rounding (a few samples):
    callers trim or pad (:func:`fit_length`, ``AudioWriter``). ``norm`` = (mean,
    std): the model sees (mix - mean) / std and every stem is scaled back
    (x * std + mean), as demucs's own separator does.
    """
    mean, std = norm if norm is not None else (0.0, 1.0)
    std = std if std > 1e-8 else 1.0
    stats = stats if stats is not None else RunStats()
    to_model = StreamResampler(sample_rate, backend.sample_rate, backend.channels)
    n_stems = len(backend.stems)

    def model_blocks():
        for block in blocks:
            block = _match_channels(np.asarray(block, dtype=np.float32), backend.channels)
            if norm is not None:
                block = (block - mean) / std
            out = to_model.push(block)
            if out.shape[1]:
                yield out
        tail = to_model.flush(backend.channels)
        if tail.shape[1]:
            yield tail

    def process(chunks: np.ndarray) -> np.ndarray:
        stats.calls += 1
        stats.chunks += chunks.shape[0]
        return backend.process(chunks)

    back = StreamResampler(backend.sample_rate, sample_rate, n_stems * channels)
    for out in overlap_add(model_blocks(), process, backend.chunk_length, backend.hop,
                           backend.fade, backend.batch):
        out = _match_channels_stems(out, channels)
        if norm is not None:
            out = out * std + mean
        res = back.push(out.reshape(n_stems * channels, -1))
        if res.shape[1]:
            yield res.reshape(n_stems, channels, -1)
    tail = back.flush(n_stems * channels)
    if tail.shape[1]:
        yield tail.reshape(n_stems, channels, -1)


def _match_channels(block: np.ndarray, channels: int) -> np.ndarray:
    if block.shape[0] == channels:
        return block
    if block.shape[0] == 1:
        return np.repeat(block, channels, axis=0)
    return np.repeat(block.mean(axis=0, keepdims=True), channels, axis=0)


def _match_channels_stems(out: np.ndarray, channels: int) -> np.ndarray:
    if out.shape[1] == channels:
        return out
    return out.mean(axis=1, keepdims=True).repeat(channels, axis=1)
