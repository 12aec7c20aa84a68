"""Structure from allin1 (All-In-One Music Structure Analyzer), fed the stems songshard made.

``--structure allin1``: beats, downbeats, tempo, section boundaries and section labels
(allin1's 10 Harmonix labels) from allin1's dilated neighbourhood-attention model and
allin1's own post-processing (madmom's DBN for beats / downbeats, peak picking for
boundaries, tempo from the beat grid).

allin1's ``analyze()`` runs demucs itself; songshard already separated the song, so
this backend skips that and rebuilds the rest of allin1's path by hand:
stems -> 44.1 kHz mono -> madmom spectrograms (the processor chain of
``allin1.spectrogram``) stacked bass, drums, other, vocals -> model -> post-processing.

Weights (``--structure_weights``): a folder of allin1 checkpoints (``*.pth`` files
holding ``{"config": ..., "state_dict": ...}``, as on the hub repo
``taejunkim/allinone``); with several, they run as allin1's ``Ensemble`` (allin1's
default ``harmonix-all`` is the 8 ``harmonix-fold*`` files). Without the option, the
files are looked up in the Hugging Face hub cache, where allin1's
``hf_hub_download`` keeps them; nothing is ever downloaded.

Optional extra: ``scripts/install_allin1.sh`` installs allin1, natten 0.15.1 (built
from source) and madmom. natten needs ``torch.cuda._device_t`` (gone from current
torch), which :func:`import_allin1` puts back before the import.
"""

from __future__ import annotations

import logging
import os
import pickle
import warnings
from typing import Dict, List, Optional, Tuple

import numpy as np

from schemas.records import Provenance
from transforms.core import audio as au
from transforms.core.stage import Backend, BackendUnavailable
from transforms.core.weights import file_sha256, files_sha256

log = logging.getLogger("songshard")

ALLIN1_RATE = 44100
STEM_ORDER = ("bass", "drums", "other", "vocals")  # the order allin1 stacks its spectrograms in
HUB_REPO = "taejunkim/allinone"
DEFAULT_MODEL = "harmonix-all"
INSTALL_HINT = "run scripts/install_allin1.sh (allin1 1.1.0, natten 0.15.1 built from source, madmom)"
# allin1's pyproject says MIT and its README gives the hub checkpoints no other licence.
ALLIN1_LICENCE = ("MIT (allin1 package licence; allin1's README names no separate licence for the "
                  "hub checkpoints taejunkim/allinone, trained on the Harmonix Set)")


def import_allin1():
    """Import allin1 with its two shims; raises ImportError naming the package that is missing.

    natten 0.15.1 reads ``torch.cuda._device_t`` at import (removed from torch), and the
    madmom wheels on PyPI need :func:`import_madmom`'s metadata lookup.
    """
    import torch

    if not hasattr(torch.cuda, "_device_t"):
        torch.cuda._device_t = torch.types.Device
    missing = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # natten's torch.cuda.amp decorators
            import natten  # noqa: F401
            from natten.functional import natten1dav  # noqa: F401 - the call allin1 needs
    except ImportError as exc:
        missing.append(f"natten ({exc})")
    try:
        from transforms.structure.madmom_backend import import_madmom

        import_madmom()
    except ImportError as exc:
        missing.append(f"madmom ({exc})")
    if missing:
        import importlib.util

        if importlib.util.find_spec("allin1") is None:
            missing.append("allin1 (not installed)")
        raise ImportError("; ".join(missing))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            import allin1
    except ImportError as exc:
        raise ImportError(f"allin1 ({exc})") from exc
    return allin1


def versions() -> str:
    import importlib.metadata as md

    parts = []
    for dist in ("allin1", "natten"):
        try:
            parts.append(f"{dist} {md.version(dist)}")
        except md.PackageNotFoundError:
            parts.append(f"{dist} (not installed)")
    return ", ".join(parts)


def hub_checkpoint_names() -> List[str]:
    """File names of allin1's default model (harmonix-all: 8 folds) on the hub."""
    import_allin1()
    from allin1.models.loaders import ENSEMBLE_MODELS, NAME_TO_FILE

    return [NAME_TO_FILE[name] for name in ENSEMBLE_MODELS[DEFAULT_MODEL]]


def hub_cache_dir() -> str:
    from huggingface_hub import constants

    return os.path.join(constants.HF_HUB_CACHE, "models--" + HUB_REPO.replace("/", "--"))


def find_checkpoints(weights: Optional[str]) -> Tuple[str, List[str]]:
    """(folder, sorted checkpoint paths); BackendUnavailable says where it looked and what to do.

    ``weights`` is a folder of ``*.pth`` files or one ``.pth`` file; None looks for the
    harmonix-all folds in the Hugging Face hub cache (cache lookup only, no download).
    """
    if weights:
        if os.path.isfile(weights):
            return os.path.dirname(os.path.abspath(weights)), [os.path.abspath(weights)]
        if not os.path.isdir(weights):
            raise BackendUnavailable(
                f"allin1: --structure_weights {weights!r} is not a folder or a .pth file. Pass a folder "
                f"holding allin1 checkpoints (e.g. the 8 harmonix-fold*.pth files of the hub repo {HUB_REPO}), "
                "or leave the option out to use the Hugging Face hub cache")
        files = sorted(os.path.join(weights, f) for f in os.listdir(weights) if f.endswith(".pth"))
        if not files:
            raise BackendUnavailable(
                f"allin1: no checkpoints (*.pth) in --structure_weights {weights!r}. Copy allin1's checkpoint "
                f"files there (e.g. harmonix-fold0-0vra4ys2.pth ... from the hub repo {HUB_REPO})")
        return os.path.abspath(weights), files
    from huggingface_hub import try_to_load_from_cache

    names = hub_checkpoint_names()
    found = [try_to_load_from_cache(HUB_REPO, name) for name in names]
    files = sorted(p for p in found if isinstance(p, str) and os.path.isfile(p))
    if not files:
        raise BackendUnavailable(
            f"allin1: no weights in the Hugging Face hub cache: looked for {', '.join(names)} of {HUB_REPO} "
            f"under {hub_cache_dir()}. Copy those files into a folder and pass --structure_weights FOLDER "
            f"(or fill the cache where there is network: `huggingface-cli download {HUB_REPO}`), "
            "or use --structure dsp / madmom")
    if len(files) < len(names):
        log.warning("allin1: only %d of the %d harmonix-all folds are in the hub cache; using those",
                    len(files), len(names))
    return os.path.dirname(files[0]), files


def checkpoints_digest(files: List[str]) -> str:
    """The weights digest of the checkpoint(s): one file's sha256, or the digest over several."""
    return file_sha256(files[0]) if len(files) == 1 else files_sha256(files)


def allin1_stems(mix: np.ndarray, stems: Dict[str, np.ndarray]) -> Tuple[Dict[str, np.ndarray], str]:
    """The four stems allin1 reads, from what separation made, plus a note on any substitution.

    Missing stems become silence; a vocals + accompaniment split feeds accompaniment as
    "other"; with no stems at all the mix goes in as "other" (allin1 never saw that in
    training, so the note says so).
    """
    n = mix.shape[-1]
    silent = np.zeros((1, n), dtype=np.float32)
    fed, notes = {}, []
    for name in STEM_ORDER:
        if name in stems:
            fed[name] = stems[name]
    if "other" not in fed and "accompaniment" in stems:
        fed["other"] = stems["accompaniment"]
        notes.append("accompaniment fed as 'other'")
    if not stems:
        fed["other"] = mix
        notes.append("no stems: the mix fed as 'other'")
    zeros = [name for name in STEM_ORDER if name not in fed]
    if zeros:
        notes.append(f"silence fed as {', '.join(zeros)}")
        fed.update({name: silent for name in zeros})
    return fed, "; ".join(notes)


class AllInOneStructure(Backend):
    """allin1's model and post-processing over songshard's stems. Optional extra (see module doc)."""

    stage = "structure"
    name = "allin1"

    def __init__(self, params):
        super().__init__(params)
        self.weights: Optional[str] = self.params.get("weights") or None
        self.device: str = self.params.get("device") or "cpu"
        self._model = self._spectrogram = None
        self._files: List[str] = []
        self._folder = ""
        self._digest: Optional[str] = None

    def check(self) -> None:
        try:
            import_allin1()
        except ImportError as exc:
            raise BackendUnavailable(
                f"--structure allin1 cannot import {exc}; {INSTALL_HINT}, or use --structure dsp / madmom"
            ) from exc
        self._folder, self._files = find_checkpoints(self.weights)
        if self.device.startswith("cuda"):
            import natten
            import torch

            if not torch.cuda.is_available() or not natten.has_cuda():
                raise BackendUnavailable(
                    f"allin1: --structure_device {self.device} but torch.cuda available="
                    f"{torch.cuda.is_available()}, natten built with CUDA={natten.has_cuda()}; "
                    "use --structure_device cpu")

    def load(self) -> None:
        import_allin1()
        import torch
        from allin1.models import AllInOne
        from allin1.models.ensemble import Ensemble
        from madmom.audio.signal import FramedSignalProcessor
        from madmom.audio.spectrogram import FilteredSpectrogramProcessor, LogarithmicSpectrogramProcessor
        from madmom.audio.stft import ShortTimeFourierTransformProcessor
        from madmom.processors import SequentialProcessor
        from omegaconf import OmegaConf

        if not self._files:
            self._folder, self._files = find_checkpoints(self.weights)
        models = []
        for path in self._files:
            checkpoint = _load_checkpoint(torch, path, self.device)
            cfg = OmegaConf.create(checkpoint["config"])
            # The DBN threshold comes from the validated "best" ones; a checkpoint without
            # them (never validated) falls back to the training thresholds.
            if cfg.get("best_threshold_beat") is None:
                cfg.best_threshold_beat = cfg.threshold_beat
            if cfg.get("best_threshold_downbeat") is None:
                cfg.best_threshold_downbeat = cfg.threshold_downbeat
            model = AllInOne(cfg).to(self.device)
            model.load_state_dict(checkpoint["state_dict"])
            models.append(model.eval())
        self._model = models[0] if len(models) == 1 else Ensemble(models).eval()
        cfg = self._model.cfg
        # allin1.spectrogram's chain (copied there from madmom): 100 fps, 12 bands/octave.
        # The STFT step caches its window from the first signal, scaled by 1/32767 when that
        # one is int16 (allin1 reads int16 wavs): feed it float32 in [-1, 1] only.
        self._spectrogram = SequentialProcessor([
            FramedSignalProcessor(frame_size=cfg.window_size, fps=int(cfg.sample_rate / cfg.hop_size)),
            ShortTimeFourierTransformProcessor(),
            FilteredSpectrogramProcessor(num_bands=cfg.num_bands, fmin=cfg.fmin, fmax=cfg.fmax, norm_filters=True),
            LogarithmicSpectrogramProcessor(mul=1, add=1),
        ])

    def provenance(self) -> Provenance:
        if not self._files:
            self._folder, self._files = find_checkpoints(self.weights)
        if self._digest is None:
            self._digest = checkpoints_digest(self._files)
        names = ", ".join(os.path.basename(f) for f in self._files)
        return Provenance(
            backend="allin1", version=versions(), weights=self._folder, weights_sha256=self._digest,
            licence=ALLIN1_LICENCE,
            note=f"allin1 model ({len(self._files)} checkpoint(s): {names}) on songshard's stems "
                 "(no second separation); madmom spectrograms as allin1 makes them; allin1 post-processing")

    def spectrograms(self, mix: np.ndarray, sample_rate: int, stems: Dict[str, np.ndarray]) -> Tuple[np.ndarray, str]:
        """[4, frames, 81] float32 log-filtered spectrograms (bass, drums, other, vocals) and the feed note.

        allin1 reads demucs's 44.1 kHz stem files with madmom as mono; the stems are
        averaged to mono and resampled to 44.1 kHz here to match; a stem peaking above 1
        is scaled down as demucs's default ``clip="rescale"`` does before writing it.
        """
        from madmom.audio.signal import Signal

        fed, note = allin1_stems(mix, stems)
        specs = []
        for name in STEM_ORDER:
            stem = np.asarray(fed[name], dtype=np.float32)
            stem = stem / max(1.01 * float(np.abs(stem).max(initial=0.0)), 1.0)
            mono = au.resample(au.to_mono(stem), sample_rate, ALLIN1_RATE)[0].astype(np.float32)
            specs.append(self._spectrogram(Signal(mono, sample_rate=ALLIN1_RATE, num_channels=1)))
        return np.stack(specs).astype(np.float32), note

    def analyze(self, mix: np.ndarray, sample_rate: int, stems: Dict[str, np.ndarray]) -> dict:
        """Beats, downbeats, bpm, meter and labelled sections of one song.

        ``mix`` is [2, N] float32 at ``sample_rate``; ``stems`` maps stem names to [2, N]
        arrays. Returns the structure contract's dict, plus ``"note"`` when stems were
        substituted (see :func:`allin1_stems`). Sections tile [0, N / sample_rate] with
        allin1's labels. ``bpm`` is 0.0 when fewer than two beats were found.
        """
        import torch
        from allin1.postprocessing import (estimate_tempo_from_beats, postprocess_functional_structure,
                                           postprocess_metrical_structure)

        if self._model is None:
            self.load()
        duration = mix.shape[-1] / sample_rate
        spec, note = self.spectrograms(mix, sample_rate, stems)
        with torch.inference_mode():
            logits = self._model(torch.from_numpy(spec).unsqueeze(0).to(self.device))
            metrical = postprocess_metrical_structure(logits, self._model.cfg)
            segments = postprocess_functional_structure(logits, self._model.cfg)
        beats = [float(b) for b in metrical["beats"] if b < duration]
        positions = metrical["beat_positions"][:len(beats)]
        downbeats = [float(b) for b in metrical["downbeats"] if b < duration]
        bpm = estimate_tempo_from_beats(beats)
        meter = max(positions) if positions and max(positions) in (3, 4) else 4
        result = {"bpm": float(bpm or 0.0), "beats": beats, "downbeats": downbeats, "time_signature": int(meter),
                  "sections": _fit_sections(segments, duration)}
        if note:
            result["note"] = note
        return result


def _load_checkpoint(torch, path: str, device: str) -> dict:
    """torch.load with weights_only, retried without it for checkpoints that pickle other objects.

    allin1 itself calls plain ``torch.load`` (which unpickled anything before torch 2.6);
    the files are the ones the user pointed at, so the retry is logged, not refused.
    """
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError:
        log.warning("allin1: %s holds more than tensors; loading it with weights_only=False", path)
        return torch.load(path, map_location=device, weights_only=False)


def _fit_sections(segments, duration: float) -> List[dict]:
    """allin1's segments (which end at its last spectrogram frame) cut or stretched to the song's length."""
    sections = []
    for seg in segments:
        start, end = float(seg.start), min(float(seg.end), duration)
        if start >= duration or end <= start:
            continue
        sections.append({"start": start, "end": end, "label": str(seg.label)})
    if not sections:
        return sections
    sections[0]["start"] = 0.0
    sections[-1]["end"] = duration
    return sections
