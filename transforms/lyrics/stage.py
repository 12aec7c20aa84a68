"""Lyrics stage: guarded ASR on the vocal stem, into words, lines and the ``gt_lyric`` line.

In: a Song with ``audio["vocals"]`` (any rate, any channels; resampled to 16 kHz
mono) or, failing that, ``audio["mix16k"]``; optionally ``labels["structure"]``
and reference lyrics in ``song.source``.
Out: ``labels["lyrics"]`` (see :func:`lyrics_label`) with the backend's provenance.
Failures (unreadable audio, a backend error) become dead letters.

Guards: only spans where the vocal stem is active are transcribed (the rest is
zeroed), decoding never conditions on previous text, invented segments
(compression ratio, log-probability, no-speech, known phrases), credit lines,
speaker prefixes, phrase loops and repeated lines are dropped.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from schemas.records import Song
from transforms.core import audio as au
from transforms.core import shape
from transforms.core.activity import stem_presence
from transforms.core.sections import with_tags
from transforms.core import reading, workdir
from transforms.core.model_server import acquire_shared_asr
from transforms.core.stage import StageFn, StageTransform
from transforms.core.lyrics_input import check_table
from transforms.lyrics import format as fmt
from transforms.lyrics import reference as ref_mod
from transforms.lyrics import sheet as sheet_mod
from transforms.lyrics import guards
from transforms.lyrics.align import alignment_scores
from transforms.core import vad as vad_mod
from transforms.lyrics.backend import AsrBackend

log = logging.getLogger(__name__)

STAGE = "lyrics"
# backend name -> "module:Class", imported only when the backend is checked or loaded
BACKENDS = {
    "faster-whisper": "transforms.lyrics.faster_whisper_backend:FasterWhisperBackend",
    "whisper": "transforms.lyrics.whisper_backend:WhisperBackend",
    "none": "transforms.lyrics.backend:NoAsr",
}
STEM_TRUST = 0.25  # a vocal stem active (loud, a real part of the mix) this share of the song is sung: no VAD veto
CLIP_MERGE_GAP = 6.0  # active spans closer than this are decoded as one clip (gaps stay zeroed)
CLIP_PAD = 1.0  # seconds of (zeroed) context around a clip: Whisper misreads speech that starts a window


def _r(x: float) -> float:
    return round(float(x), 3)


def guarded_lines(segments: Sequence[dict], regions: Sequence[guards.Region],
                  thresholds: guards.Thresholds, language: str) -> tuple:
    """(lines, guard report) from decoded segments: every filter of the stage, in order.

    Lines are ``{"start", "end", "text", "words"}``; the report counts what each
    filter removed.
    """
    dropped: Counter = Counter()
    lines: List[dict] = []
    sep = "" if fmt.is_char_language(language) else " "
    for seg in segments:
        reason = guards.segment_verdict(seg, thresholds)
        if reason is None and fmt.is_credit_line(seg.get("text", "")):
            reason = "credit_line"
        if reason is not None:
            dropped[reason] += 1
            continue
        words = [w for w in seg.get("words", []) if str(w["text"]).strip()]
        inside = guards.words_in_regions(words, regions)
        dropped["words_outside_regions"] += inside.count(False)
        words = [w for w, ok in zip(words, inside) if ok]
        prefix = fmt.speaker_prefix_length([w["text"] for w in words])
        dropped["speaker_prefix_words"] += prefix
        words = words[prefix:]
        keep = fmt.collapse_repeats([w["text"] for w in words])
        dropped["looped_words"] += len(words) - len(keep)
        words = [words[i] for i in keep]
        if not words:
            dropped["empty"] += 1
            continue
        lines.append({"start": float(words[0]["start"]), "end": float(words[-1]["end"]),
                      "text": sep.join(str(w["text"]).strip() for w in words), "words": words})
    repeated = fmt.repeated_line_flags([ln["text"] for ln in lines])
    dropped["repeated_line"] += sum(repeated)
    lines = [ln for ln, rep in zip(lines, repeated) if not rep]
    return lines, {"segments": len(segments), "dropped": {k: v for k, v in sorted(dropped.items()) if v}}


def reference_block(song: Song) -> Optional[dict]:
    """The song's reference lyrics (sidecar .txt / .lrc), credit lines removed; None if it has none."""
    src = song.source
    if src is None or not (src.reference_lyrics or src.reference_lyrics_lines):
        return None
    raw = [ln.get("text", "") for ln in src.reference_lyrics_lines] or src.reference_lyrics.splitlines()
    kept = fmt.clean_reference_lines(raw)
    return {"format": src.reference_lyrics_format, "text": "\n".join(kept), "num_lines": len(kept),
            "lines": [{"time": ln.get("time"), "text": ln.get("text", "")} for ln in src.reference_lyrics_lines]}


def lyrics_status(has_vocals: bool, num_words: int) -> str:
    """``words``; ``vocals_without_words`` (vocals found, no words recovered: growls, or an ASR that
    heard nothing), which must not pass for an instrumental; or ``no_vocals``."""
    if num_words:
        return "words"
    return "vocals_without_words" if has_vocals else "no_vocals"


def activity_label(vad_regions: Optional[Sequence[guards.Region]], gated: Sequence[guards.Region],
                   duration: float) -> Dict[str, Any]:
    """The vocal-activity timeline: the VAD's regions (or, without a VAD, the energy gate's), in seconds."""
    regions = gated if vad_regions is None else vad_regions
    seconds = guards.total_seconds(regions)
    return {"source": "energy_gate" if vad_regions is None else "vad", "regions": [[_r(s), _r(e)] for s, e in regions],
            "seconds": _r(seconds), "share": round(seconds / duration, 4) if duration > 0 else 0.0}


def transcribe_regions(backend: AsrBackend, audio: np.ndarray, duration: float,
                       regions: Sequence[guards.Region], forced_language: Optional[str]):
    """(language windows judged, language, its probability, its coverage, ASR segments) of the sung
    ``regions`` of 16 kHz ``audio``; nothing is decoded outside them."""
    sr = au.ASR_RATE
    judged = []
    if backend.does_transcribe:
        judged = [(sec, backend.language_probs(clip)) for sec, clip in guards.language_packs(audio, sr, regions)]
    language, prob, coverage = guards.vote_language(judged, forced_language)
    segments: List[dict] = []
    if backend.does_transcribe and regions:
        clips = guards.merge_regions(
            [(max(0.0, s - CLIP_PAD), min(duration, e + CLIP_PAD)) for s, e in regions], CLIP_MERGE_GAP)
        segments = backend.transcribe(guards.mask_outside(audio, sr, regions), clips, language or None)
    return judged, language, prob, coverage, segments


def lyrics_label(backend: AsrBackend, audio: np.ndarray, duration: float,
                 sections: Optional[Sequence[dict]] = None, reference: Optional[dict] = None,
                 gate: Optional[guards.GateConfig] = None, forced_language: Optional[str] = None,
                 vad_regions: Optional[Sequence[guards.Region]] = None, vad_veto: bool = True,
                 sheet: Optional[sheet_mod.Sheet] = None) -> Dict[str, Any]:
    """labels["lyrics"] for 16 kHz mono ``audio`` (1-D float32) of a song ``duration`` s long.

    ``vad_regions``: voice activity (seconds) from a VAD model; when given (and
    ``vad_veto``), only the gate's regions it confirms are transcribed. Keys: language,
    language_probability, language_coverage (of the sung time), language_forced,
    language_windows, has_vocals, vocal_seconds, regions, vocal_activity, words,
    lines, gt_lyric, gt_lyric_timed, sections, sections_source, chunks,
    chunks_rejected, guards, transcribed; reference and alignment when a
    reference is given. With a parsed ``sheet`` (the lab's lyrics) and a backend that aligns, the
    sheet is placed on the audio and checked (``transforms.lyrics.reference``); when it agrees,
    words, lines, gt_lyric and chunks come from it (``words_source`` "reference"), else from the
    ASR, and ``agreement`` says why.
    """
    sr = au.ASR_RATE
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    gated = guards.active_regions(audio, sr, gate)
    regions = gated if vad_regions is None or not vad_veto else guards.confirmed_regions(gated, vad_regions)
    judged, language, prob, coverage, segments = transcribe_regions(backend, audio, duration, regions,
                                                                    forced_language)
    lines, report = guarded_lines(segments, regions, backend.thresholds, language)
    sections_source = "structure" if sections else "vocal_activity"
    if not sections:  # the vocal timeline alone, through the structure stage's shaping
        sections = with_tags(shape.shape_sections([], duration, vocals=regions,
                                                  config=shape.ShapeConfig(vocal_song_s=0.0)))
    asr_lines, aligned = lines, None
    if sheet is not None and regions and getattr(backend, "does_align", False):
        # the VAD's own regions where it ran: the gate's, on a stem with instrumental bleed, cover the
        # whole song, and a true reference then explains too little of it (measured on 4 songs)
        aligned = ref_mod.reference_words(backend, audio, sheet, language, vad_regions or regions,
                                          [w for ln in lines for w in ln["words"]], duration)
        if aligned["decision"] == "reference":
            lines = aligned["lines"]
            sections = ref_mod.reference_sections(sections, lines, sheet)
    gt = fmt.build_gt_lyric(sections, lines, language)
    report["dropped"]["words_in_non_lyric_sections"] = gt["dropped_words"]
    chunks, rejected = fmt.chunk_lines(lines, language)
    for chunk in chunks:
        part = fmt.chunk_gt_lyric(chunk, gt["sections"], lines, language)
        chunk["gt_lyric"], chunk["gt_lyric_timed"] = part["gt_lyric"], part["gt_lyric_timed"]
    words = [{"start": _r(w["start"]), "end": _r(w["end"]), "text": str(w["text"]),
              "probability": round(float(w.get("probability", 1.0)), 4)} for ln in lines for w in ln["words"]]
    label: Dict[str, Any] = {
        "language": language,
        "language_probability": round(prob, 4),
        "language_coverage": round(coverage, 4),
        "language_forced": bool(forced_language),
        "language_windows": [{"seconds": _r(sec), "language": max(p, key=p.get) if p else "",
                              "probability": round(max(p.values()), 4) if p else 0.0} for sec, p in judged],
        "transcribed": bool(backend.does_transcribe),
        "has_vocals": bool(regions),
        "vocal_seconds": _r(guards.total_seconds(regions)),
        "regions": [[_r(s), _r(e)] for s, e in regions],
        "vocal_activity": activity_label(vad_regions, gated, duration),
        "words": words,
        "lines": [{"start": _r(ln["start"]), "end": _r(ln["end"]), "text": ln["text"]} for ln in lines],
        "gt_lyric": gt["gt_lyric"],
        "gt_lyric_timed": gt["gt_lyric_timed"],
        "sections": gt["sections"],
        "sections_source": sections_source,
        "chunks": chunks,
        "chunks_rejected": rejected,
        "guards": report,
        "words_source": ("reference" if lines is not asr_lines else "asr") if words else "",
        "lyrics_status": lyrics_status(bool(regions), len(words)),
    }
    if aligned is not None:
        label.update(ref_mod.alignment_label(aligned, sheet, asr_lines if lines is not asr_lines else None))
    if reference is not None:
        label["reference"] = reference
        hypothesis = " ".join(ln["text"] for ln in lines)
        label["alignment"] = alignment_scores(reference["text"], hypothesis, language or "en")
    return label


def vocal_stem_presence(song: Song, stem16k: np.ndarray) -> Optional[float]:
    """Share of the song where the vocal stem (its 16 kHz mono mixdown, 1-D) is active against the mix
    (``activity.stem_presence``)."""
    if "mix16k" not in song.audio:
        return None
    mix16k = workdir.load_audio_at(song.audio["mix16k"], au.ASR_RATE)
    return stem_presence(stem16k[None, :], au.to_mono(mix16k), au.ASR_RATE)


class TranscribeFn(StageFn):
    stage = STAGE

    def _acquire_backend(self):
        if not self.config.get("share_model", False):
            return super()._acquire_backend()
        shared = acquire_shared_asr(self.stage, self.backend_target, self.config.backend_params,
                                    caller=str(os.getpid()))
        log.info("lyrics: worker %d uses the ASR served by process %d", os.getpid(), shared.server_pid)
        return shared

    def setup(self) -> None:
        super().setup()
        self.vad = None
        if self.config.get("vad", "silero") == "silero":
            threshold = float(self.config.get("vad_threshold", vad_mod.DEFAULTS.threshold))
            self.vad_config = vad_mod.VadConfig(threshold=threshold)
            self.vad = vad_mod.shared_vad()

    def apply(self, song: Song) -> Song:
        if "vocals" in song.audio:
            source, note = "vocals", "transcribed the vocal stem"
        elif "mix16k" in song.audio:
            source, note = "mix16k", "no vocal stem: transcribed the full mix (audio['mix16k'])"
        else:
            raise ValueError("lyrics: the song has neither audio['vocals'] nor audio['mix16k']")
        # the 16 kHz mono mixdown, read block by block: never the whole 48 kHz stereo stem at once
        mono = reading.read_audio(song.audio[source], au.ASR_RATE, mono=True).audio[0]
        duration = song.duration or mono.shape[0] / float(au.ASR_RATE)
        gate = guards.GateConfig(rel_db=float(self.config.get("gate_db", guards.GateConfig.rel_db)))
        vad_regions = vad_mod.vocal_regions(self.vad, mono, self.vad_config) if self.vad is not None else None
        presence = vocal_stem_presence(song, mono) if source == "vocals" else None
        # a clearly sung stem is not vetoed: the VAD misses growled and long sustained singing
        veto = presence is None or presence < STEM_TRUST
        label = lyrics_label(self.backend, mono, duration,
                             sections=song.label("structure", "sections") or None,
                             reference=reference_block(song), gate=gate, sheet=ref_mod.parse_reference(song.source),
                             forced_language=self.config.get("language") or None, vad_regions=vad_regions,
                             vad_veto=veto)
        label["source"], label["note"] = source, note
        if self.vad is not None:
            label["vocal_activity"]["model"] = self.vad.provenance().to_dict()
        label["vocal_activity"].update(stem_presence=None if presence is None else round(presence, 4),
                                       vad_veto=bool(self.vad is not None and veto))
        song.set_label(self.stage, label, self.backend.provenance())
        return song


class TranscribeLyrics(StageTransform):
    """Songs -> (songs with labels["lyrics"], dead letters).

    The backend is ``--lyrics`` (see ``BACKENDS``) and gets every ``--lyrics_*``
    flag but the stage's own (``gate_db``, ``language``, ``vad``, ``vad_threshold``).
    A song whose audio cannot be read or whose backend fails becomes a DeadLetter
    of stage "lyrics". With ``--lyrics_vad silero`` the start-up check also checks
    the VAD's pinned weights.
    """

    stage = STAGE
    fn_class = TranscribeFn
    backends = BACKENDS
    default_backend = "faster-whisper"
    stage_params = ("gate_db", "language", "vad", "vad_threshold", "share_model", "table")

    @classmethod
    def add_options(cls, group) -> None:
        super().add_options(group)
        add = group.add_argument
        add("--lyrics_model", default=None,
            help="model name in the library's cache, a checkpoint file or a CTranslate2 folder")
        add("--lyrics_device", default="cpu")
        add("--lyrics_compute_type", default="int8", help="faster-whisper compute type")
        add("--lyrics_language", default=None, help="force a language (default: detect)")
        add("--lyrics_beam_size", type=int, default=1)
        add("--lyrics_sample_len", type=int, default=None,
            help="most tokens decoded per 30 s window (default: the library's)")
        add("--lyrics_threads", type=int, default=0, help="CPU threads for ASR (0: library default)")
        add("--lyrics_share_model", action="store_true",
            help="one ASR model per machine, served to every worker process (GPU workers: one copy on the "
                 "GPU instead of one per SDK process); calls run one at a time")
        add("--lyrics_vad", default="silero", choices=("silero", "none"),
            help="voice activity on the vocal stem: silero (silero-vad's shipped weights; only the gate's "
                 "regions it confirms are transcribed) | none (the energy gate alone)")
        add("--lyrics_vad_threshold", type=float, default=0.3,
            help="speech probability that opens a voice-activity region (singing scores lower than speech)")
        add("--lyrics_gate_db", type=float, default=30.0,
            help="vocal gate: frames more than this many dB below the stem's loud level are not transcribed")
        add("--lyrics_compression_ratio_threshold", type=float, default=2.4,
            help="drop decoded segments more compressible than this (loops)")
        add("--lyrics_log_prob_threshold", type=float, default=-1.0,
            help="drop decoded segments whose average log-probability is below this")
        add("--lyrics_no_speech_threshold", type=float, default=0.6,
            help="drop segments whose no-speech probability is above this (unless confidently decoded)")
        add("--lyrics_table", default="",
            help="a corpus-wide lyrics table (.parquet, .jsonl or .csv; columns lyrics and uri or path, "
                 "path relative to the input root), joined to the songs where the input is read; it takes "
                 "precedence over NAME.json's lyrics, NAME.lrc, NAME.txt and embedded lyrics")

    @classmethod
    def configure(cls, values):
        """The stage's StageConfig; a ``--lyrics_table`` that is missing, of unknown format or without
        its columns raises ValueError here, in the driver."""
        config = super().configure(values)
        if config.get("table"):
            check_table(config.get("table"))
        return config

    @classmethod
    def check(cls, config):
        """The ASR backend's start-up check, plus the VAD's weights (present, sha256 as pinned)."""
        provenance = super().check(config)
        if config.get("vad", "silero") == "silero":
            vad_mod.read_verified(vad_mod.weights_path())
        return provenance
