"""``--tags musicnn`` (the default): genre, mood, instruments, vocal evidence and gender from musicnn.

The MTT_musicnn and MSD_musicnn taggers (ISC), with the weights the ``musicnn``
package ships, run by songshard's PyTorch port (``transforms.core.musicnn``) on
3 s windows over the whole 16 kHz mono song, pooled by mean; their scores are
mapped into songshard's vocabulary by ``musicnn/mapping.json``. Each pick keeps
its score; ``vocal`` is the taggers' vocal / no-vocal evidence, which the stage
weighs with the lyrics stage's VAD and ASR.

Params (flags ``--tags_*``): ``weights`` (a folder holding ``MTT_musicnn/`` and
``MSD_musicnn/``; default: the installed package), ``threads``.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np

from schemas.records import Provenance
from transforms.core.audio import ASR_RATE, resample, to_mono
from transforms.core.weights import digest_of
from transforms.tags.backend import TaggerBackend

MODELS = ("MTT_musicnn", "MSD_musicnn")
SOURCE = "model:musicnn"
STEM_SOURCE = "model:musicnn:vocal_stem"
ACCOMPANIMENT_SOURCE = "model:musicnn:accompaniment_stem"
# The mix pass (MTT + MSD) tags every 3 s window: every other window measured the same instruments but
# lost a second genre on one song (rock on a rock song), so the mix keeps them all. The stem passes
# (MTT; vocal stem: gender, accompaniment stem: instruments) tag every other window, and only where
# they can add something: the vocal stem's windows that overlap the voice the lyrics stage found, and
# the accompaniment stem only when a voice was found at all (without one it is the mix again). Batches
# of 4 windows: 24.5 ms of one thread per MTT window against 38.6 ms in batches of 16 (the timbral
# convolutions' outputs stay in cache). Measured on the real-music set with its Spleeter stems: 0.016 s
# of compute per second of audio on average, 0.018 on the vocal songs, against 0.028 before (batches
# of 16, both stem passes on every song); genre, instrument and gender figures unchanged.
MIX_STRIDE = 1
STEM_STRIDE = 2
INSTRUMENT_LIMIT = 5  # as mapping.json's limits
TOP_RAW = 8  # raw model tags kept per model in the label, best first
BATCH = 4


def voiced_windows(n_windows: int, voiced, stride: int = STEM_STRIDE) -> List[int]:
    """Indices of the 3 s windows (``features.patches``' layout) to tag on a stem: every ``stride``-th
    window overall when ``voiced`` is None (unknown), else every ``stride``-th of those that overlap a
    voiced [start, end] region (seconds); none for ``voiced == []``."""
    from transforms.core.musicnn import features

    if voiced is None:
        return list(range(0, n_windows, stride))
    step = features.PATCH_FRAMES * features.HOP / features.SAMPLE_RATE
    hit = [i for i in range(n_windows) if any(s < (i + 1) * step and e > i * step for s, e in voiced)]
    return hit[::stride]


def picks_from_mapping(mapped: dict, gender_source: str = SOURCE) -> Dict[str, dict]:
    """The mapped musicnn result -> ``{"picks": {dim: [(term, source)]}, "scores": {dim: {term: score}}}``."""
    picks, scores = {}, {}
    for dim, key in (("genre", "genres"), ("emotion", "emotions"), ("instrument", "instruments")):
        picks[dim] = [(term, SOURCE) for term, _ in mapped[key]]
        scores[dim] = {term: float(score) for term, score in mapped[key]}
    gender, score = mapped["gender"]
    picks["gender"] = [(gender, gender_source)] if gender in ("male", "female") else []
    scores["gender"] = {gender: float(score)} if gender else {}
    return {"picks": picks, "scores": scores}


class MusicnnTags(TaggerBackend):
    """musicnn MTT + MSD taggers on the whole song; see the module docstring."""

    name = "musicnn"
    input_rate = ASR_RATE  # the models' own rate: the stage hands it 16 kHz mono arrays

    def __init__(self, params):
        super().__init__(params)
        self.tagger = None
        self._provenance: Dict[str, Provenance] = {}

    def check(self) -> None:
        """Both checkpoints are found and carry their pinned sha256 (BackendUnavailable / ValueError)."""
        from transforms.core.musicnn import tagger

        for name in MODELS:
            folder = tagger.checkpoint_folder(name, self.params.get("weights"))
            self._provenance[name] = tagger.verified_provenance(name, folder)

    def load(self) -> None:
        from transforms.core.musicnn import tagger

        from transforms.core.musicnn import features

        self.tagger = tagger.load(MODELS, folder=self.params.get("weights"), threads=self.params.get("threads"),
                                  hop_frames=MIX_STRIDE * features.PATCH_FRAMES, batch_size=BATCH)
        self._provenance = dict(self.tagger.provenance)

    def stem_scores(self, stem: np.ndarray, sample_rate: int, voiced=None) -> Optional[Dict[str, float]]:
        """MTT_musicnn's mean scores over a stem's windows picked by :func:`voiced_windows`; None when
        none is picked."""
        from transforms.core.musicnn import features

        mono = resample(to_mono(stem), sample_rate, ASR_RATE)[0]
        patches = features.patches(features.log_mel(mono))
        picked = voiced_windows(len(patches), voiced)
        if not picked:
            return None
        scores = self.tagger.scores("MTT_musicnn", patches[picked]).mean(axis=0)
        return dict(zip(self.tagger.labels["MTT_musicnn"], scores.tolist()))

    def stem_gender(self, vocals: np.ndarray, sample_rate: int, voiced=None) -> Optional[dict]:
        """MTT_musicnn on the vocal stem -> the mapping's gender and vocal evidence; None when no window
        overlaps ``voiced``."""
        from transforms.tags.musicnn.mapping import map_tags

        scores = self.stem_scores(vocals, sample_rate, voiced)
        if scores is None:
            return None
        mapped = map_tags(scores, None)
        return {"gender": mapped["gender"], "vocal": mapped["vocal"]}

    def stem_instruments(self, accompaniment: np.ndarray, sample_rate: int, msd_scores: Dict[str, float]) -> list:
        """MTT_musicnn on the accompaniment stem (every STEM_STRIDE-th window), mapped with the mix's MSD
        scores -> the instruments [(term, score)] heard without the voice on top of them."""
        from transforms.tags.musicnn.mapping import map_tags

        return map_tags(self.stem_scores(accompaniment, sample_rate), msd_scores)["instruments"]

    def tag(self, mix: np.ndarray, sample_rate: int, vocals: np.ndarray | None = None,
            accompaniment: np.ndarray | None = None, voiced: Optional[Sequence[Sequence[float]]] = None
            ) -> Dict[str, dict]:
        """Tags of the mix. With the vocal stem, the gender comes from the stem (measured: 7 / 9 right on
        the real-music set's vocal songs against 3 / 9 from the mix). With the accompaniment stem, the
        instruments are those of the mix and those the stem's own pass finds (a loud voice masks them in
        the mix: 4 of the real-music set's 9 sung songs had none from the mix alone)."""
        from transforms.tags.musicnn.mapping import map_tags

        mono = resample(to_mono(mix), sample_rate, ASR_RATE)[0]
        out = self.tagger.tag_song(mono)
        mapped = map_tags(out["MTT_musicnn"]["tags"], out["MSD_musicnn"]["tags"])
        source = SOURCE
        if vocals is not None:
            stem = self.stem_gender(vocals, sample_rate, voiced)
            mapped["gender"], source = (stem["gender"], STEM_SOURCE) if stem else (("", 0.0), source)
            if stem:
                mapped["stem_vocal"] = stem["vocal"]
        from_stem = set()
        if accompaniment is not None and voiced != []:
            best = dict(mapped["instruments"])
            for term, score in self.stem_instruments(accompaniment, sample_rate, out["MSD_musicnn"]["tags"]):
                if score > best.get(term, 0.0):
                    best[term] = score
                    from_stem.add(term)
            ranked = sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))[:INSTRUMENT_LIMIT]
            mapped["instruments"] = ranked
        result = picks_from_mapping(mapped, gender_source=source)
        result["picks"]["instrument"] = [(term, ACCOMPANIMENT_SOURCE if term in from_stem else src)
                                         for term, src in result["picks"]["instrument"]]
        result["vocal"] = dict(mapped["vocal"])
        if "stem_vocal" in mapped:
            result["stem_vocal"] = dict(mapped["stem_vocal"])
        result["raw"] = {name: dict(sorted(out[name]["tags"].items(), key=lambda kv: -kv[1])[:TOP_RAW])
                         for name in MODELS}
        result["raw"] = {name: {t: round(s, 4) for t, s in tags.items()} for name, tags in result["raw"].items()}
        return result

    def provenance(self) -> Provenance:
        if not self._provenance:
            self.check()
        first = self._provenance[MODELS[0]]
        return Provenance(backend=self.name, version=first.version, weights="+".join(MODELS),
                          weights_sha256=digest_of({n: p.weights_sha256 for n, p in self._provenance.items()}),
                          licence=first.licence,
                          note="musicnn MTT_musicnn + MSD_musicnn (package weights) in songshard's PyTorch port; "
                               "tags mapped by transforms/tags/musicnn/mapping.json")
