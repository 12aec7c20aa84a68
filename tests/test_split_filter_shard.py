"""Pure parts of split, filter and shard planning."""

import pytest

from schemas.records import Song, SourceInfo
from transforms.filter import drop_reasons
from transforms.shard import plan_shards, tar_size
from transforms.split import split_for


def test_split_is_stable_and_keeps_an_artist_together():
    a = [split_for("The Band", f"id{i}", 0.3, 0.3) for i in range(20)]
    assert len(set(a)) == 1
    assert split_for("the  band", "x", 0.3, 0.3) == a[0]  # case and spacing do not matter
    songs = [split_for("", f"id{i}", 0.2, 0.2) for i in range(2000)]
    assert 0.15 < songs.count("valid") / 2000 < 0.25 and 0.15 < songs.count("test") / 2000 < 0.25
    with pytest.raises(ValueError):
        split_for("a", "b", 0.7, 0.5)


def _song(duration, **labels):
    s = Song(uri="/x.wav", song_id="s", duration=duration, source=SourceInfo(uri="/x.wav", duration=duration))
    s.labels.update(labels)
    return s


def test_filter_rules_give_every_reason():
    p = {"min_duration": 60, "max_duration": 600, "min_language_probability": 0.9, "min_language_coverage": 0.8,
         "language_rule": True}
    assert drop_reasons(_song(120), p) == []
    assert drop_reasons(_song(30), p, ("duration",))[0].startswith("too_short")
    lyr = {"words": [{"text": "x"}], "language": "en", "language_probability": 0.5, "language_coverage": 0.5}
    reasons = drop_reasons(_song(120, lyrics=lyr), p, ("language",))
    assert [r.split(":")[0] for r in reasons] == ["language_uncertain", "language_mixed"]
    assert drop_reasons(_song(120, lyrics=lyr, quality={"pure_music": True}), p, ("language",)) == []
    # metadata that declares the detected language waives the probability rule, not the coverage rule
    declared = _song(120, lyrics=lyr)
    declared.source.sidecar = {"language": "English"}
    assert [r.split(":")[0] for r in drop_reasons(declared, p, ("language",))] == ["language_mixed"]
    declared.source.sidecar = {"language": "fr"}
    assert len(drop_reasons(declared, p, ("language",))) == 2
    # without --filter_language_rule a weak language guess drops nothing: it stays in the label and index
    assert drop_reasons(_song(120, lyrics=lyr), {**p, "language_rule": False}, ("language",)) == []


def test_require_words_drops_vocals_without_words_and_keeps_instrumentals():
    from transforms.lyrics.stage import lyrics_status

    growl = _song(120, lyrics={"lyrics_status": lyrics_status(True, 0)})
    inst = _song(120, lyrics={"lyrics_status": lyrics_status(False, 0)})
    sung = _song(120, lyrics={"lyrics_status": lyrics_status(True, 12)})
    p = {"require_words": True}
    assert drop_reasons(growl, p, ("words",)) == ["no_words: vocals found, no words recovered"]
    assert drop_reasons(inst, p, ("words",)) == [] and drop_reasons(sung, p, ("words",)) == []
    assert drop_reasons(growl, {"require_words": False}, ("words",)) == []  # off unless asked for


def test_shard_plan_respects_both_limits():
    assert plan_shards([10] * 7, 3, 1e9) == [[0, 1, 2], [3, 4, 5], [6]]
    assert plan_shards([40, 40, 40, 100], 10, 100) == [[0, 1], [2], [3]]
    assert plan_shards([500], 10, 100) == [[0]]  # an oversize sample gets a shard of its own
    assert tar_size({"json": b"x" * 513}) == 512 + 1024
