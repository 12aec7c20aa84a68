"""How well a transcript matches reference lyrics: word error rate and phoneme error rate.

WER (jiwer) is computed on normalised words (lower-case, no punctuation; characters
for Chinese / Japanese). The phoneme error rate compares espeak-ng's IPA
transcriptions of both texts, symbol by symbol (stress marks removed), so a
misheard spelling of the right sounds costs less than a wrong word. PER is None
when espeak-ng is not installed or has no voice for the language.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import unicodedata
from typing import List, Optional

from transforms.lyrics.format import is_char_language, normalize_key

# Whisper language code -> espeak-ng voice where they differ.
ESPEAK_VOICES = {"en": "en-us", "zh": "cmn-latn-pinyin", "yue": "yue", "jw": "jv", "haw": "haw", "no": "nb"}
_IPA_DROP = re.compile(r"[ˈˌ\d\s\-_|‿.()]")
_MODIFIERS = set("ːˑʰʲʷˠˤ̃ʼ˞")


def normalize_text(text: str, language: str = "en") -> List[str]:
    """Comparison units: words, or characters for languages written without spaces."""
    key = normalize_key(text)
    if is_char_language(language):
        return [ch for ch in key if not ch.isspace()]
    return key.split()


def word_error_rate(reference: str, hypothesis: str, language: str = "en") -> Optional[float]:
    """jiwer WER over :func:`normalize_text` units; None for an empty reference."""
    import jiwer

    ref = normalize_text(reference, language)
    hyp = normalize_text(hypothesis, language)
    if not ref:
        return None
    if not hyp:
        return 1.0
    return float(jiwer.wer(" ".join(ref), " ".join(hyp)))


@functools.lru_cache(maxsize=1)
def espeak_version() -> str:
    """espeak-ng's version line, "" when the command is missing."""
    exe = shutil.which("espeak-ng")
    if not exe:
        return ""
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.split("Data at")[0].strip()


def ipa_symbols(ipa: str) -> List[str]:
    """IPA text -> symbols; a length mark or modifier stays with the symbol before it."""
    symbols: List[str] = []
    for ch in unicodedata.normalize("NFD", _IPA_DROP.sub("", ipa)):
        if symbols and (ch in _MODIFIERS or unicodedata.combining(ch)):
            symbols[-1] += ch
        else:
            symbols.append(ch)
    return symbols


def phonemes(text: str, language: str = "en") -> Optional[List[str]]:
    """espeak-ng IPA symbols of ``text``; None when espeak-ng is missing or fails."""
    exe = shutil.which("espeak-ng")
    words = normalize_text(text, language)
    if not exe or not words:
        return None if not exe else []
    voice = ESPEAK_VOICES.get(language, language or "en-us")
    sep = "" if is_char_language(language) else " "
    try:
        out = subprocess.run([exe, "-q", "--ipa", "-v", voice], input=sep.join(words),
                             capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0 or not out.stdout.strip():
        return None
    # espeak marks a switch of voice as "(en)" ... "(cmn)"; those are not phonemes
    return ipa_symbols(re.sub(r"\([a-z-]+\)", "", out.stdout))


def phoneme_error_rate(reference: str, hypothesis: str, language: str = "en") -> Optional[float]:
    """Edit distance between the two IPA symbol sequences over the reference length."""
    import jiwer

    ref = phonemes(reference, language)
    if not ref:
        return None
    hyp = phonemes(hypothesis, language)
    if hyp is None:
        return None
    if not hyp:
        return 1.0
    # symbols joined by spaces so that jiwer counts one edit per phoneme
    return float(jiwer.wer(" ".join(ref), " ".join(hyp)))


def alignment_scores(reference: str, hypothesis: str, language: str = "en") -> dict:
    """``{"wer", "per", "reference_units", "hypothesis_units", "unit", "phonemizer"}`` (None where not computable)."""
    language = (language or "en").split("-")[0]
    return {
        "wer": word_error_rate(reference, hypothesis, language),
        "per": phoneme_error_rate(reference, hypothesis, language),
        "reference_units": len(normalize_text(reference, language)),
        "hypothesis_units": len(normalize_text(hypothesis, language)),
        "unit": "char" if is_char_language(language) else "word",
        "phonemizer": espeak_version(),
    }
