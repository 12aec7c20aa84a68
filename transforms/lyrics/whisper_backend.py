"""``--lyrics whisper``: openai-whisper (PyTorch) with word timestamps.

``--lyrics_model`` is either a checkpoint file laid out as whisper's own
(``{"dims": {...}, "model_state_dict": {...}}``) or a model name ("base",
"small", "large-v3" ...) whose file is already in whisper's cache folder
(``~/.cache/whisper``, or ``$XDG_CACHE_HOME/whisper`` as whisper itself resolves
it). Names are loaded from that file directly: nothing is downloaded.
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from schemas.records import Provenance
from transforms.core.stage import BackendUnavailable
from transforms.core.weights import file_sha256
from transforms.lyrics.backend import AsrBackend


def whisper_cache_dir() -> str:
    """whisper's default download root, resolved the way ``whisper.load_model`` does."""
    default = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(os.getenv("XDG_CACHE_HOME", default), "whisper")


class WhisperBackend(AsrBackend):
    """openai-whisper on CPU (fp32) or CUDA; see the module docstring for ``--lyrics_model``."""

    name = "whisper"

    def __init__(self, params):
        super().__init__(params)
        self.model = None
        self._sha256 = ""

    def resolve(self) -> Tuple[str, Optional[str]]:
        """(checkpoint path, model name or None); BackendUnavailable says where it looked."""
        import whisper

        spec = self._opt("model")
        if spec is None:
            raise BackendUnavailable(
                "whisper: --lyrics_model is required: a whisper checkpoint file, or the name of a model "
                f"already in whisper's cache ({whisper_cache_dir()}). Models are not downloaded; the "
                "embedded default ASR is --lyrics faster-whisper.")
        spec = str(spec)
        if os.path.isfile(spec):
            return spec, None
        if spec in whisper._MODELS:
            path = os.path.join(whisper_cache_dir(), os.path.basename(whisper._MODELS[spec]))
            if os.path.isfile(path):
                return path, spec
            raise BackendUnavailable(
                f"whisper: model {spec!r} is not in whisper's cache (looked for {path}); copy the "
                "checkpoint there or pass --lyrics_model PATH to the .pt file. Nothing is downloaded.")
        raise BackendUnavailable(
            f"whisper: --lyrics_model {spec!r} is neither a checkpoint file nor a known model name "
            f"(names: {', '.join(sorted(whisper._MODELS))}; cache: {whisper_cache_dir()})")

    def check(self) -> None:
        self.resolve()

    def load(self) -> None:
        import torch
        import whisper

        if self.threads > 0:
            torch.set_num_threads(self.threads)
        path, name = self.resolve()
        self.model = whisper.load_model(path, device=self.device)
        if name is not None and name in whisper._ALIGNMENT_HEADS:
            self.model.set_alignment_heads(whisper._ALIGNMENT_HEADS[name])
        self._sha256 = file_sha256(path)

    def provenance(self) -> Provenance:
        import whisper

        path, name = self.resolve()
        if not self._sha256:
            self._sha256 = file_sha256(path)
        return Provenance(
            backend=self.name, version=f"openai-whisper {whisper.__version__}", weights=path,
            weights_sha256=self._sha256,
            licence="MIT (OpenAI Whisper)" if name else "see the checkpoint's source",
            note=f"whisper model {name!r} from whisper's cache" if name else "whisper checkpoint from --lyrics_model")

    def language_probs(self, clip: np.ndarray) -> Dict[str, float]:
        import torch
        import whisper

        if not self.model.is_multilingual:
            return {"en": 1.0}
        audio = whisper.pad_or_trim(np.asarray(clip, dtype=np.float32))
        mel = whisper.log_mel_spectrogram(audio, n_mels=self.model.dims.n_mels).to(self.model.device)
        with torch.no_grad():
            _, probs = self.model.detect_language(mel)
        return {str(lang): float(p) for lang, p in probs.items()}

    def transcribe(self, audio: np.ndarray, clips: Sequence[Tuple[float, float]],
                   language: Optional[str]) -> List[dict]:
        import whisper

        if not clips:
            return []
        th = self.thresholds
        options = dict(
            language=language or None, temperature=0.0, verbose=None, fp16=self.device != "cpu",
            condition_on_previous_text=False, word_timestamps=True,
            clip_timestamps=[float(t) for clip in clips for t in clip],
            compression_ratio_threshold=th.compression_ratio, logprob_threshold=th.log_prob,
            no_speech_threshold=th.no_speech, hallucination_silence_threshold=2.0,
        )
        if self.beam_size > 1:
            options["beam_size"] = self.beam_size
        if self.sample_len is not None:
            options["sample_len"] = self.sample_len
        result = whisper.transcribe(self.model, np.asarray(audio, dtype=np.float32), **options)
        out = []
        for seg in result.get("segments", []):
            out.append({
                "start": float(seg["start"]), "end": float(seg["end"]), "text": str(seg["text"]).strip(),
                "avg_logprob": float(seg["avg_logprob"]), "compression_ratio": float(seg["compression_ratio"]),
                "no_speech_prob": float(seg["no_speech_prob"]),
                "words": [{"start": float(w["start"]), "end": float(w["end"]), "text": str(w["word"]).strip(),
                           "probability": float(w["probability"])} for w in seg.get("words", [])],
            })
        return out
