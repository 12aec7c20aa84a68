"""The interface every ASR backend of the lyrics stage implements, and the "none" backend.

A backend answers two questions on 16 kHz mono float32 audio:

* ``language_probs(clip)`` -> ``{language: probability}`` for a clip of at most 30 s;
* ``transcribe(audio, clips, language)`` -> segments, each
  ``{"start", "end", "text", "avg_logprob", "compression_ratio", "no_speech_prob",
  "words": [{"start", "end", "text", "probability"}]}`` with times in seconds of
  ``audio``, decoded only inside ``clips`` ([(start, end), ...]), without
  conditioning on previous text, with word timestamps.

Options (from ``--lyrics_*`` flags): ``asr_model``, ``asr_device``, ``asr_language``,
``asr_beam_size``, ``asr_sample_len`` (most tokens per 30 s window),
``asr_threads`` and the ``asr_*_threshold`` segment filters (see ``guards.Thresholds``).
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from schemas.records import Provenance
from transforms.core.stage import Backend
from transforms.lyrics.guards import Thresholds




class AsrBackend(Backend):
    """Base of the ASR backends: option parsing shared by faster-whisper and openai-whisper."""

    stage = "lyrics"
    does_transcribe = True

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
