"""Quality measures, musicality score and tier, the filter rule, and the learned-scorer hook.

The altered copies of one synthetic song (low-passed, clipped, quieted, made mono,
vocals removed, leaky stems) must move each measure the way it should, and the
tier and flags must follow.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import butter, sosfiltfilt

from conftest import synth_mix
from schemas.records import Song
from transforms.core import tiers as T
from transforms.filter import quality_reasons
from transforms.quality import measures as Q
from transforms.tags.vocals import decide_vocals, stem_presence

SR = 48000
SECTIONS = [{"start": 0.0, "end": 5.0, "label": "intro"}, {"start": 5.0, "end": 15.0, "label": "verse"},
            {"start": 15.0, "end": 20.0, "label": "outro"}]
SOURCE = {"sample_rate": 48000, "codec": "pcm_s16le", "channels": 2}


def _lowpass(x, fc):
    return sosfiltfilt(butter(8, fc, fs=SR, output="sos"), x, axis=-1).astype(np.float32)


@pytest.fixture(scope="module")
def stems():
    mix, voc, acc = synth_mix(20.0, 120.0, seed=0)
    g = 0.5 / float(np.abs(mix).max())  # a sane master: peaks at -6 dBFS
    return mix * g, voc * g, acc * g


def _label(mix, voc, acc, source=SOURCE, **kw):
    """What the tags stage's vocal decision and the quality stage make of one song, side by side."""
    found = Q.measure_quality(mix, SR, voc, acc, source, SECTIONS)
    vocal = decide_vocals(stem_presence(voc, mix, SR), None)
    found.update(vocal_presence=vocal["stem_presence"], pure_music=vocal["present"] is False)
    return Q.quality_label(found, **kw)


@pytest.fixture(scope="module")
def variants(stems):
    mix, voc, acc = stems
    quiet = 10 ** (-30 / 20)
    clip_gain = 8.0
    return {
        "clean": _label(mix, voc, acc),
        "lowpass": _label(_lowpass(mix, 4000), _lowpass(voc, 4000), _lowpass(acc, 4000)),
        "clipped": _label(np.clip(mix * clip_gain, -1, 1), voc * clip_gain, acc * clip_gain),
        "clipped_then_turned_down": _label(0.5 * np.clip(mix * clip_gain, -1, 1), 0.5 * voc * clip_gain,
                                           0.5 * acc * clip_gain),
        "quiet": _label(mix * quiet, voc * quiet, acc * quiet),
        "mono": _label(np.repeat(mix.mean(axis=0, keepdims=True), 2, axis=0), voc, acc),
        "mono_source": _label(mix, voc, acc, source={**SOURCE, "channels": 1}),
        "no_vocals": _label(acc, np.zeros_like(voc), acc),
        "leaky": _label(mix, voc + 0.7 * acc, 0.3 * acc),
    }


def test_clean_song_is_top_tier(variants):
    q = variants["clean"]
    assert q["musicality"] == "[Musicality-very-high]"
    assert q["clipping_ratio"] == 0.0 and q["bandwidth_hz"] > 20000 and q["silence_ratio"] == 0.0
    assert not q["fake_stereo"] and not q["pure_music"]
    assert 0.4 < q["vocal_presence"] < 0.6  # the synthetic voice sings from 1/4 to 3/4 of the song
    assert q["conditioning"] == ["[Musicality-very-high]"]


def test_lowpass_lowers_bandwidth_and_tier(variants):
    clean, lp = variants["clean"], variants["lowpass"]
    assert 4000 <= lp["bandwidth_hz"] < 7000 < clean["bandwidth_hz"]
    assert lp["musicality_score"] < clean["musicality_score"]
    assert T.TIER_NAMES.index(T.tier_name(lp["musicality"])) > T.TIER_NAMES.index("very-high")


def test_clipping_is_caught_at_full_scale_and_after_turning_down(variants):
    clean = variants["clean"]
    for name in ("clipped", "clipped_then_turned_down"):
        q = variants[name]
        assert q["clipping_ratio"] > 0.01, name
        assert q["subscores"]["clipping_ratio"] == 0.0
        assert T.tier_name(q["musicality"]) in ("low", "very-low"), name
    assert variants["clipped"]["true_peak_dbfs"] > 0.0 > clean["true_peak_dbfs"]


def test_quiet_copy_lowers_loudness_and_tier_but_keeps_vocals(variants):
    clean, quiet = variants["clean"], variants["quiet"]
    assert quiet["loudness_lufs"] == pytest.approx(clean["loudness_lufs"] - 30.0, abs=0.5)
    assert quiet["musicality_score"] < clean["musicality_score"]
    assert T.tier_name(quiet["musicality"]) in ("medium", "low", "very-low")
    assert quiet["vocal_presence"] == pytest.approx(clean["vocal_presence"], abs=0.02)
    assert not quiet["pure_music"]


def test_mono_copy_is_fake_stereo(variants):
    clean, mono = variants["clean"], variants["mono"]
    assert mono["stereo_width"] == 0.0 < clean["stereo_width"]
    assert mono["fake_stereo"] and not clean["fake_stereo"]
    assert mono["stereo_correlation"] == pytest.approx(1.0)
    assert mono["musicality_score"] < clean["musicality_score"]
    assert variants["mono_source"]["fake_stereo"]  # a mono source file, even if decoded to stereo


def test_removing_vocals_makes_pure_music(variants):
    q = variants["no_vocals"]
    assert q["vocal_presence"] == 0.0 and q["pure_music"]
    assert q["conditioning"][-1] == "[Pure-Music]"
    assert q["vocal_leakage_db"] is None  # nothing sung to compare with


def test_leaky_stems_raise_leakage_measures(variants):
    clean, leaky = variants["clean"], variants["leaky"]
    assert leaky["vocal_leakage_db"] > -20.0 > clean["vocal_leakage_db"]
    assert leaky["stem_overlap"] > clean["stem_overlap"] + 0.2
    assert leaky["musicality_score"] <= clean["musicality_score"]


def test_true_peak_finds_inter_sample_peaks():
    n = np.arange(SR)
    x = np.sin(2 * np.pi * (SR / 4) * n / SR + np.pi / 4)[None].astype(np.float32)  # samples at +-0.707
    assert 20 * np.log10(np.abs(x).max()) == pytest.approx(-3.01, abs=0.05)
    assert Q.true_peak_dbfs(x) == pytest.approx(0.0, abs=0.3)


def test_silence_dc_and_source_fields():
    x = np.zeros((2, SR * 4), dtype=np.float32)
    x[:, : SR * 2] = 0.3 * np.sin(2 * np.pi * 440 * np.arange(SR * 2) / SR)
    assert Q.silence_ratio(x, SR) == pytest.approx(0.5, abs=0.03)
    assert Q.dc_offset(x + 0.05) == pytest.approx(0.05, abs=1e-4)
    m = Q.measure_quality(x, SR, source={"sample_rate": 22050, "codec": "mp3", "channels": 2})
    assert m["source_sample_rate"] == 22050 and m["lossy_source"]
    assert m["vocal_leakage_db"] is None and "pure_music" not in m  # no stem: no claim
    assert decide_vocals(None, {"transcribed": True, "words": []})["present"] is None
    assert Q.integrated_loudness(np.zeros((2, SR), dtype=np.float32), SR) == Q.LOUDNESS_FLOOR


def test_upsampled_source_shows_in_bandwidth():
    rng = np.random.default_rng(1)
    noise = rng.standard_normal((2, 22050 * 5)).astype(np.float32) * 0.1
    from transforms.core.audio import resample
    up = resample(noise, 22050, SR)
    assert Q.bandwidth_hz(up, SR) < 11100
    assert Q.bandwidth_hz(rng.standard_normal((2, SR * 5)).astype(np.float32) * 0.1, SR) > 23000


def test_tiers_and_parse():
    assert T.parse_thresholds(None) == T.DEFAULT_THRESHOLDS
    tiers = T.parse_thresholds("0.9,0.8,0.6,0.4")
    assert [T.tier_for_score(s, tiers) for s in (0.95, 0.85, 0.7, 0.5, 0.1)] == [
        "[Musicality-very-high]", "[Musicality-high]", "[Musicality-medium]", "[Musicality-low]",
        "[Musicality-very-low]"]
    for bad in ("0.9,0.8,0.6", "0.5,0.6,0.4,0.3", "a,b,c,d"):
        with pytest.raises(ValueError):
            T.parse_thresholds(bad)
    assert T.tier_name("[Musicality-very-low]") == "very-low" and T.tier_name("nonsense") == ""


def test_score_is_weighted_geometric_mean():
    perfect = {"loudness_lufs": -14.0, "clipping_ratio": 0.0, "true_peak_dbfs": -1.0, "bandwidth_hz": 20000.0,
               "silence_ratio": 0.0, "dc_offset": 0.0, "fake_stereo": False}
    assert Q.technical_score(perfect) == 1.0
    one_bad = {**perfect, "clipping_ratio": 0.5}
    total = 1.5 + 2.0 + 0.5 + 2.0 + 1.0 + 0.5 + 0.5
    assert Q.technical_score(one_bad) == pytest.approx(0.01 ** (2.0 / total), abs=1e-3)
    label = Q.quality_label(perfect, learned_score=0.2)
    assert label["musicality_score"] == pytest.approx(0.6) and label["technical_score"] == 1.0


def test_quality_drop_reasons():
    q = {"musicality": "[Musicality-low]", "musicality_score": 0.35, "clipping_ratio": 0.02,
         "bandwidth_hz": 8000.0, "silence_ratio": 0.1, "loudness_lufs": -40.0, "fake_stereo": True}

    def reasons(labels, **params):
        return quality_reasons(Song(uri="x", labels={"quality": labels}), params)

    assert reasons(q) == []
    assert reasons({}, min_musicality="high") == []
    assert reasons(q, min_musicality="low") == []
    assert reasons(q, min_musicality="medium")[0].startswith("low_musicality")
    assert reasons(q, min_musicality="0.5")[0].startswith("low_musicality")
    found = reasons(q, max_clipping_ratio=0.001, min_bandwidth_hz=11000, max_silence_ratio=0.5,
                    min_loudness_lufs=-30, drop_fake_stereo=True)
    assert [r.split(":")[0] for r in found] == ["clipping", "low_bandwidth", "too_quiet", "fake_stereo"]
    with pytest.raises(ValueError):
        reasons(q, min_musicality="great")


def test_learned_scorer_hook_with_random_weights(tmp_path, stems):
    torch = pytest.importorskip("torch")
    from transforms.quality.scorer import ARCH, AestheticScorer, build_model, quality_provenance, save_scorer

    torch.manual_seed(0)
    config = {"n_mels": 32, "hidden": 16, "sample_rate": 16000}
    path = save_scorer(str(tmp_path / "scorer.pt"), build_model(config), config)
    scorer = AestheticScorer(path)
    mix = stems[0].mean(axis=0)
    a, b = scorer.score(mix, SR), scorer.score(mix * 0.01, SR)
    assert 0.0 < a < 1.0 and 0.0 < b < 1.0 and a != b  # a real forward pass on real features
    assert scorer.score(mix, SR) == a
    prov = quality_provenance(scorer)
    assert prov.weights == path and len(prov.weights_sha256) == 64 and "scorer" in prov.backend
    assert "no learned weights" in quality_provenance(None).note
    torch.save({"arch": "other", "state_dict": {}}, str(tmp_path / "bad.pt"))
    with pytest.raises(ValueError, match=ARCH):
        AestheticScorer(str(tmp_path / "bad.pt"))


def test_asr_without_words_is_evidence_of_pure_music():
    assert decide_vocals(0.95, {"transcribed": True, "words": []})["evidence"] == ["asr_no_words"]
    assert decide_vocals(0.95, {"transcribed": True, "words": [{"text": "la"}]})["present"] is True
    assert decide_vocals(0.95, {"transcribed": False, "words": []})["present"] is True
    assert decide_vocals(0.01, None) == {"present": False, "score": None, "stem_presence": 0.01,
                                         "evidence": ["vocal_stem"], "rule": "stem"}
    assert decide_vocals(None, {"transcribed": True, "words": []})["present"] is None
