"""``--tags clap``: zero-shot text-audio tagging with a CLAP model from local weights.

``--tags_weights`` is a folder written by ``transformers``' ``ClapModel.save_pretrained``
and ``ClapProcessor.save_pretrained`` (config.json, model.safetensors, the tokenizer
and the processor's config), e.g. a copy of ``laion/clap-htsat-unfused`` fetched
elsewhere; nothing is downloaded.

Every vocabulary term becomes a text prompt ("a pop song", "a song with piano").
The song's audio embedding is the normalised mean of ``--tags_windows`` evenly
spaced windows of the model's input length (10 s). Gender, genre and emotion are
single-label: a softmax over the dimension's prompts, and the top term is kept only
when its probability reaches ``--tags_min_confidence`` and twice the uniform share
(so a 3-way gender choice needs 0.67). Instruments are
multi-label: each instrument is a two-way softmax between "with X" and "without X",
kept at ``INSTRUMENT_MIN`` or more.
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence

import numpy as np

from schemas.records import Provenance
from transforms.core.stage import BackendUnavailable
from transforms.core.weights import file_sha256
from transforms.tags.backend import VERSION, TaggerBackend, folder_licence
from transforms.tags.metadata import load_vocabulary

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
INSTRUMENT_MIN = 0.6
PROMPTS = {
    "gender": {"male": "a song sung by a male singer", "female": "a song sung by a female singer",
               "mixed": "a duet sung by a male and a female singer"},
    "genre": "a {} song",
    "emotion": "a {} song, the mood is {}",
    "instrument": ("a song with {}", "a song without {}"),
}


def prompts_for(dimension: str, terms: List[str]) -> List[str]:
    """The text prompts of a single-label dimension, one per term."""
    spec = PROMPTS[dimension]
    if isinstance(spec, dict):
        return [spec[t] for t in terms]
    return [spec.format(*([t] * spec.count("{}"))) for t in terms]


def window_starts(num_samples: int, window: int, count: int) -> List[int]:
    """Start samples of ``count`` evenly spaced windows over the song (fewer for short songs)."""
    if num_samples <= window:
        return [0]
    count = max(1, min(count, num_samples // window))
    span = num_samples - window
    return [int(round(span * (k + 0.5) / count)) for k in range(count)]


def pick_threshold(min_confidence: float, num_terms: int) -> float:
    """Probability a single-label pick needs: ``min_confidence``, and at least twice the uniform share."""
    return max(float(min_confidence), 2.0 / max(1, num_terms))


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    z = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=axis, keepdims=True)


class ClapTagger(TaggerBackend):
    name = "clap"

    @property
    def weights(self) -> str:
        return str(self.params.get("weights") or "")

    def _weight_file(self) -> str:
        for name in WEIGHT_FILES:
            path = os.path.join(self.weights, name)
            if os.path.isfile(path):
                return path
        return ""

    def check(self) -> None:
        folder = self.weights
        how = ("save a CLAP model with transformers' ClapModel.save_pretrained(DIR) and "
               "ClapProcessor.save_pretrained(DIR) (e.g. laion/clap-htsat-unfused fetched on a machine "
               "with hub access) and pass --tags_weights DIR")
        if not folder:
            raise BackendUnavailable(f"--tags clap needs --tags_weights: {how}")
        if not os.path.isdir(folder):
            raise BackendUnavailable(f"--tags_weights {folder!r} is not a folder: {how}")
        missing = [n for n in ("config.json",) if not os.path.isfile(os.path.join(folder, n))]
        if not any(os.path.isfile(os.path.join(folder, n)) for n in ("preprocessor_config.json", "processor_config.json")):
            missing.append("preprocessor_config.json (the ClapProcessor)")
        if not self._weight_file():
            missing.append(" or ".join(WEIGHT_FILES))
        if missing:
            raise BackendUnavailable(f"--tags_weights {folder!r} lacks {', '.join(missing)}: {how}")
        try:
            import transformers  # noqa: F401
        except ImportError as exc:
            raise BackendUnavailable(f"--tags clap needs the transformers package: {exc}") from exc

    def load(self) -> None:
        import torch
        from transformers import ClapModel, ClapProcessor

        self.check()
        self.device = str(self.params.get("device") or "cpu")
        conf, windows = self.params.get("min_confidence"), self.params.get("windows")
        self.min_confidence = 0.3 if conf is None else float(conf)
        self.windows = 6 if not windows else int(windows)
        self.processor = ClapProcessor.from_pretrained(self.weights)
        self.model = ClapModel.from_pretrained(self.weights).to(self.device).eval()
        self.sample_rate = int(self.processor.feature_extractor.sampling_rate)
        self.window = int(self.processor.feature_extractor.max_length_s * self.sample_rate)
        vocab = load_vocabulary()
        self.terms = {dim: list(vocab[dim]) for dim in ("gender", "genre", "emotion", "instrument")}
        with torch.inference_mode():
            self.text = {dim: self._embed_text(prompts_for(dim, self.terms[dim]))
                         for dim in ("gender", "genre", "emotion")}
            with_, without = PROMPTS["instrument"]
            self.text["instrument"] = np.stack([
                self._embed_text([with_.format(t) for t in self.terms["instrument"]]),
                self._embed_text([without.format(t) for t in self.terms["instrument"]])])
            self.scale = float(self.model.logit_scale_a.exp().item())

    @staticmethod
    def _embeds(out) -> "np.ndarray":
        tensor = out if hasattr(out, "detach") else out.pooler_output  # transformers 4.x / 5.x
        tensor = tensor / tensor.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return tensor.detach().cpu().float().numpy()

    def _embed_text(self, prompts: List[str]) -> np.ndarray:
        inputs = self.processor(text=prompts, return_tensors="pt", padding=True)
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        return self._embeds(self.model.get_text_features(**inputs))

    def audio_embedding(self, mix: np.ndarray, sample_rate: int) -> np.ndarray:
        """The song's normalised audio embedding: mean over evenly spaced 10 s windows."""
        import torch

        from transforms.core.audio import resample, to_mono

        mono = to_mono(mix)
        if sample_rate != self.sample_rate:
            mono = resample(mono, sample_rate, self.sample_rate)
        mono = mono[0]
        clips = [mono[s:s + self.window] for s in window_starts(mono.size, self.window, self.windows)]
        # windows are exactly the model's length, so truncation only decides the input layout
        fused = bool(getattr(self.model.config.audio_config, "enable_fusion", False))
        inputs = self.processor.feature_extractor(clips, sampling_rate=self.sample_rate, return_tensors="pt",
                                                  truncation="fusion" if fused else "rand_trunc")
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        with torch.inference_mode():
            emb = self._embeds(self.model.get_audio_features(**inputs)).mean(axis=0)
        return emb / max(float(np.linalg.norm(emb)), 1e-12)

    def scores(self, embedding: np.ndarray) -> Dict[str, Dict[str, float]]:
        """{dimension: {term: probability}} for one audio embedding."""
        out = {}
        for dim in ("gender", "genre", "emotion"):
            p = softmax(self.scale * self.text[dim] @ embedding)
            out[dim] = dict(zip(self.terms[dim], p.tolist()))
        both = self.scale * np.einsum("kij,j->ki", self.text["instrument"], embedding)
        out["instrument"] = dict(zip(self.terms["instrument"], softmax(both, axis=0)[0].tolist()))
        return out

    def tag(self, mix: np.ndarray, sample_rate: int, vocals: Optional[np.ndarray] = None,
            accompaniment: Optional[np.ndarray] = None,
            voiced: Optional[Sequence[Sequence[float]]] = None) -> Dict[str, dict]:
        scores = self.scores(self.audio_embedding(mix, sample_rate))
        source = f"model:{self.name}"
        picks: Dict[str, list] = {}
        for dim in ("gender", "genre", "emotion"):
            term, p = max(scores[dim].items(), key=lambda kv: kv[1])
            picks[dim] = [(term, source)] if p >= pick_threshold(self.min_confidence, len(scores[dim])) else []
        ranked = sorted(scores["instrument"].items(), key=lambda kv: -kv[1])
        picks["instrument"] = [(t, source) for t, p in ranked if p >= INSTRUMENT_MIN]
        top = {dim: dict(sorted(s.items(), key=lambda kv: -kv[1])[:5]) for dim, s in scores.items()}
        return {"picks": picks, "scores": {d: {t: round(p, 4) for t, p in s.items()} for d, s in top.items()}}

    def provenance(self) -> Provenance:
        path = self._weight_file()
        if not hasattr(self, "_sha"):
            self._sha = file_sha256(path) if path else ""
        return Provenance(backend=self.name, version=VERSION, weights=self.weights, weights_sha256=self._sha,
                          licence=folder_licence(self.weights) if self.weights else "",
                          note="zero-shot CLAP tagging (transformers ClapModel) from local weights; "
                               "tags it is not confident about are left out")
