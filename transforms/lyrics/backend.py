"""The interface every ASR backend of the lyrics stage implements, and the "none" backend.

A backend answers two questions on 16 kHz mono float32 audio:

* ``language_probs(clip)`` -> ``{language: probability}`` for a clip of at most 30 s;
* ``transcribe(audio, clips, language)`` -> segments, each
  ``{"start", "end", "text", "avg_logprob", "compression_ratio", "no_speech_prob",
  "words": [{"start", "end", "text", "probability"}]}`` with times in seconds of
  ``audio``, decoded only inside ``clips`` ([(start, end), ...]), without
  conditioning on previous text, with word timestamps;
* ``align(audio, windows, language)`` -> for each :class:`AlignWindow` (a span of
  at most 30 s and the text units sung in it), one ``{"text", "start", "end",
  "probability"}`` per unit: forced alignment of known text. Backends that cannot
  (``does_align`` False) raise :class:`AlignmentNotSupported`.

Options (from ``--lyrics_*`` flags): ``asr_model``, ``asr_device``, ``asr_language``,
``asr_beam_size``, ``asr_sample_len`` (most tokens per 30 s window),
``asr_threads`` and the ``asr_*_threshold`` segment filters (see ``guards.Thresholds``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from schemas.records import Provenance
from transforms.core.stage import Backend
from transforms.lyrics.guards import Thresholds


class AlignmentNotSupported(NotImplementedError):
    """The backend has no forced alignment of known text (``does_align`` is False)."""


@dataclass(frozen=True)
class AlignWindow:
    """A span of the song (seconds; at most 30 s, Whisper's window) and the text units sung in it, in
    order: words, or characters for languages written without spaces."""

    start: float
    end: float
    units: Tuple[str, ...]


class AsrBackend(Backend):
    """Base of the ASR backends: option parsing shared by faster-whisper and openai-whisper."""

    stage = "lyrics"
    does_transcribe = True
    does_align = False

    def _opt(self, key: str, default=None):
        value = self.params.get(key)
        return default if value is None or value == "" else value

    @property
    def thresholds(self) -> Thresholds:
        th = Thresholds()
        return Thresholds(
            compression_ratio=float(self._opt("compression_ratio_threshold", th.compression_ratio)),
            log_prob=float(self._opt("log_prob_threshold", th.log_prob)),
            no_speech=float(self._opt("no_speech_threshold", th.no_speech)),
            no_speech_log_prob=th.no_speech_log_prob,
        )

    @property
    def beam_size(self) -> int:
        return int(self._opt("beam_size", 1))

    @property
    def sample_len(self) -> Optional[int]:
        value = self._opt("sample_len")
        return int(value) if value is not None else None

    @property
    def threads(self) -> int:
        return int(self._opt("threads", 0))

    @property
    def device(self) -> str:
        return str(self._opt("device", "cpu"))

    def language_probs(self, clip: np.ndarray) -> Dict[str, float]:  # pragma: no cover - abstract
        raise NotImplementedError

    def transcribe(self, audio: np.ndarray, clips: Sequence[Tuple[float, float]],
                   language: Optional[str]) -> List[dict]:  # pragma: no cover - abstract
        raise NotImplementedError

    def align(self, audio: np.ndarray, windows: Sequence[AlignWindow],
              language: Optional[str]) -> List[List[dict]]:
        """Forced alignment of each window's units on 16 kHz mono ``audio``: per window, one
        ``{"text", "start", "end", "probability"}`` per unit (seconds of ``audio``; the probability is
        the model's teacher-forced probability of the unit's tokens). Raises AlignmentNotSupported
        unless the backend implements it."""
        raise AlignmentNotSupported(
            f"lyrics backend {self.name!r} cannot align known text to audio; forced alignment needs "
            "--lyrics faster-whisper (Whisper's cross-attention over teacher-forced tokens)")


class NoAsr(AsrBackend):
    """``--lyrics none``: no transcription; the label says so and carries no words."""

    name = "none"
    does_transcribe = False

    def language_probs(self, clip: np.ndarray) -> Dict[str, float]:
        return {}

    def transcribe(self, audio, clips, language) -> List[dict]:
        return []

    def provenance(self) -> Provenance:
        return Provenance(backend=self.name, note="no ASR: lyrics were not transcribed (--lyrics none)")
