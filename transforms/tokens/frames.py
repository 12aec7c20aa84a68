"""Frame and window conventions of the training side's codec, as pure functions.

The conventions (FORMATS.md, and SongGeneration's ``sound2code``):

* input is 48 kHz stereo; a clip whose peak is above 0.8 is scaled down so that
  its peak is 0.8 (one gain for the whole clip, all channels);
* a clip of ``d`` seconds gives ``int(d * 25) + 1`` frames at 25 Hz;
* the encoder sees 40 s windows (1000 frames each); a clip that does not fill
  its last window is padded by repeating itself from the start (the reference
  doubles the clip until it is long enough), and the frames are cut to
  ``int(d * 25) + 1``. Only windows that hold a kept frame are encoded, which
  gives the reference's tokens without its spare window;
* songs are capped at 360 s;
* id 16385 is the training side's pad id, so real ids are 0..16383.

No I/O, no Beam, no torch.
"""

from __future__ import annotations

import math
from typing import Callable, List, Tuple

import numpy as np

from transforms.core.facts import CODEBOOK_SIZE, FRAME_RATE, MAX_SONG_SECONDS, PAD_ID  # noqa: F401 - re-exported
from transforms.core.facts import CODEC_RATE as SAMPLE_RATE

CHANNELS = 2
HOP = SAMPLE_RATE // FRAME_RATE  # 1920 samples a frame
WINDOW_SECONDS = 40
WINDOW_SAMPLES = WINDOW_SECONDS * SAMPLE_RATE
WINDOW_FRAMES = WINDOW_SECONDS * FRAME_RATE  # 1000
PEAK_LIMIT = 0.8
MAX_SECONDS = MAX_SONG_SECONDS
PROMPT_SECONDS = 10.0
PROMPT_START = 20.0  # prompts come from 20-30 s into songs of at least 30 s
PROMPT_MIN_SONG = 30.0
LAYOUT = ("mixed", "vocal", "accompaniment")


def num_frames(duration: float) -> int:
    """Frames of a clip of ``duration`` seconds: ``int(duration * 25) + 1``."""
    if duration < 0:
        raise ValueError(f"negative duration {duration}")
    return int(duration * FRAME_RATE) + 1


def frames_for_samples(num_samples: int, sample_rate: int = SAMPLE_RATE) -> int:
    """Frames of a clip of ``num_samples`` samples, with the duration computed as the reference does."""
    return num_frames(num_samples / float(sample_rate))


def cap_audio(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, max_seconds: float = MAX_SECONDS) -> np.ndarray:
    """The first ``max_seconds`` of ``audio`` ([C, N])."""
    limit = int(round(max_seconds * sample_rate))
    return audio[..., :limit] if audio.shape[-1] > limit else audio


def peak_normalise(audio: np.ndarray, limit: float = PEAK_LIMIT) -> Tuple[np.ndarray, float]:
    """(audio scaled so its peak is at most ``limit``, the gain applied). Quieter clips are unchanged."""
    # compared in float32, as the reference compares a float32 tensor with 0.8
    peak = np.float32(np.max(np.abs(audio))) if audio.size else np.float32(0.0)
    if peak <= np.float32(limit):
        return audio, 1.0
    gain = float(limit) / float(peak)
    return (audio * np.float32(gain)).astype(np.float32), gain


def num_windows(total_frames: int, window_frames: int = WINDOW_FRAMES) -> int:
    """40 s windows needed to produce ``total_frames`` frames."""
    return max(1, math.ceil(total_frames / window_frames))


def tile_to(audio: np.ndarray, length: int) -> np.ndarray:
    """``audio`` ([C, N]) repeated from its start until it is ``length`` samples long (or cut to it).

    Silence when the clip is empty (a 0-sample clip still gives its one frame).
    """
    n = audio.shape[-1]
    if n == 0:
        return np.zeros(audio.shape[:-1] + (length,), dtype=np.float32)
    if n >= length:
        return audio[..., :length]
    return np.take(audio, np.arange(length) % n, axis=-1)


def windows(audio: np.ndarray, sample_rate: int = SAMPLE_RATE,
            window_seconds: int = WINDOW_SECONDS) -> Tuple[List[np.ndarray], int]:
    """(the 40 s windows to encode, the frames to keep) for a clip ([C, N] at ``sample_rate``).

    The windows tile the clip repeated from its start, as the reference pads it.
    """
    total = frames_for_samples(audio.shape[-1], sample_rate)
    window_samples = window_seconds * sample_rate
    count = num_windows(total, window_seconds * FRAME_RATE)
    padded = tile_to(audio, count * window_samples)
    return [padded[..., i * window_samples:(i + 1) * window_samples] for i in range(count)], total


def encode_windowed(audio: np.ndarray, encode_window: Callable[[np.ndarray], np.ndarray],
                    sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Ids at 25 Hz, ``[int(d * 25) + 1]``, of a clip, through a per-window encoder.

    ``audio`` is [2, N] at 48 kHz, already capped; it is peak-normalised here.
    ``encode_window`` maps one 40 s window to exactly 1000 ids (ValueError otherwise).
    """
    audio, _ = peak_normalise(np.asarray(audio, dtype=np.float32))
    parts, total = windows(audio, sample_rate)
    ids = []
    for part in parts:
        codes = np.asarray(encode_window(part)).reshape(-1)
        if codes.shape[0] != WINDOW_FRAMES:
            raise ValueError(f"codec gave {codes.shape[0]} frames for a 40 s window, expected {WINDOW_FRAMES}")
        ids.append(codes)
    return np.concatenate(ids)[:total]


def resample_ids(codes: np.ndarray, num_out: int) -> np.ndarray:
    """Map a token stream ``[..., T_in]`` covering some span to ``num_out`` frames covering the same span.

    Output frame ``i`` takes the input frame that starts at or just before its
    time (``floor(i * T_in / num_out)``): a 75 Hz stream becomes every third
    frame. This keeps ids (no averaging of ids, which would be meaningless).
    """
    t_in = codes.shape[-1]
    if t_in == 0:
        raise ValueError("empty token stream")
    index = np.minimum((np.arange(num_out) * t_in) // num_out, t_in - 1)
    return codes[..., index]


def prompt_window(duration: float) -> Tuple[float, float]:
    """(start, end) seconds of the 10 s reference prompt: 20-30 s when the song is at least 30 s,
    else the first 10 s (the whole song when it is shorter than that)."""
    if duration >= PROMPT_MIN_SONG:
        return PROMPT_START, PROMPT_START + PROMPT_SECONDS
    return 0.0, min(PROMPT_SECONDS, duration)


def smallest_int_dtype(max_value: int) -> np.dtype:
    """The smallest unsigned dtype that holds 0..``max_value`` (uint8 / uint16 / uint32 / uint64)."""
    if max_value < 0:
        raise ValueError("ids are non-negative")
    for dtype in (np.uint8, np.uint16, np.uint32, np.uint64):
        if max_value <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    raise ValueError(f"{max_value} does not fit in 64 bits")


def token_dtype(codebook_size: int) -> np.dtype:
    """dtype of stored tokens: holds every real id and the training side's pad id 16385,
    so that a trainer can pad prompts in place (uint16 for 16384 codes)."""
    return smallest_int_dtype(max(codebook_size - 1, PAD_ID))


def stereo(audio: np.ndarray) -> np.ndarray:
    """float32 [2, N] of ``audio``: mono ([N] or [1, N]) repeated, more than two channels folded
    to the average of the even and of the odd ones."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[None, :]
    if audio.shape[0] == 1:
        return np.repeat(audio, 2, axis=0)
    if audio.shape[0] > 2:
        return np.stack([audio[0::2].mean(axis=0), audio[1::2].mean(axis=0)])
    return audio


def fit_streams(streams: dict, sample_rate: int = SAMPLE_RATE) -> dict:
    """Stereo float32 arrays capped at 360 s, each stem cut or zero-padded to the first stream's length.

    ``streams`` maps stream names to [C, N] arrays at ``sample_rate`` (48 kHz).
    """
    out = {}
    length = None
    for name, audio in streams.items():
        audio = cap_audio(stereo(audio), sample_rate)
        if length is None:
            length = audio.shape[-1]
        elif audio.shape[-1] != length:
            audio = audio[..., :length] if audio.shape[-1] > length else np.pad(
                audio, ((0, 0), (0, length - audio.shape[-1])))
        out[name] = audio
    return out


def clip(audio: np.ndarray, start: float, end: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Samples of ``audio`` ([C, N]) from ``start`` to ``end`` seconds."""
    return audio[..., int(round(start * sample_rate)):int(round(end * sample_rate))]
