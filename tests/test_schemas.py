"""The index schema and the IndexRow dataclass are one source of truth."""

import dataclasses
import io
import math

import numpy as np
import pyarrow.parquet as pq

from schemas.arrow import index_schema, rows_to_table, table_to_rows
from schemas.records import IndexRow, Provenance, SourceInfo, Song, index_row, sample_json, stable_hash


def _song():
    song = Song(uri="/c/a.flac", song_id="0123456789abcdef", duration=61.5, artist="Ann", title="A",
                source=SourceInfo(uri="/c/a.flac", sample_rate=44100, codec="flac"), split="train")
    song.set_label("structure", {"bpm": 120.0, "sections": [{"start": 0, "end": 10, "label": "intro"}]},
                   Provenance(backend="dsp", note="embedded default"))
    song.set_label("lyrics", {"language": "en", "language_probability": 0.97, "language_coverage": 1.0,
                              "words": [{"start": 1, "end": 2, "text": "hi"}], "gt_lyric": "[verse] hi.",
                              "words_source": "reference", "agreement": {"score": 0.83, "decision": "reference"},
                              "lyrics_status": "words"},
                   Provenance(backend="faster-whisper"))
    song.set_label("tags", {"descriptions": "female, pop", "tag_list": ["female", "pop"], "gender": "female"})
    song.set_label("quality", {"musicality": "[Musicality-high]", "loudness_lufs": -14.2, "pure_music": False,
                               "true_peak_dbfs": -1.0, "clipping_ratio": 0.0, "bandwidth_hz": 20000.0})
    song.tokens["tokens"] = np.zeros((3, 1538), dtype=np.uint16)
    return song


def test_schema_has_every_field_in_order():
    names = [f.name for f in dataclasses.fields(IndexRow)]
    assert index_schema().names == names


def test_index_rows_round_trip_through_parquet():
    row = index_row(_song(), shard="train-000000.tar", run_id="r1")
    assert row.bpm == 120.0 and row.num_sections == 1 and row.num_words == 1
    assert row.tags == ["female", "pop"] and row.structure == "dsp" and row.asr == "faster-whisper"
    assert (row.words_source, row.lyrics_agreement, row.lyrics_status) == ("reference", 0.83, "words")
    buf = io.BytesIO()
    pq.write_table(rows_to_table([row, row]), buf)
    back = table_to_rows(pq.read_table(io.BytesIO(buf.getvalue())))
    for got in back:  # the one unset figure comes back as NaN, every other field equal
        assert math.isnan(got.silence_ratio) and math.isnan(row.silence_ratio)
        assert dataclasses.replace(got, silence_ratio=0.0) == dataclasses.replace(row, silence_ratio=0.0)


def test_sample_json_is_plain_json_with_training_strings():
    import json

    rec = sample_json(_song(), {"run_id": "r1", "config_sha256": "x"})
    text = json.dumps(rec)  # raises on numpy or NaN left behind
    assert "\n" not in rec["gt_lyric"] and rec["gt_lyric"] == "[verse] hi."
    assert rec["descriptions"] == "female, pop" and rec["musicality"] == "[Musicality-high]"
    assert rec["provenance"]["structure"]["note"] == "embedded default"
    assert json.loads(text)["source"]["sample_rate"] == 44100


def test_stable_hash_is_stable_and_dot_free():
    assert stable_hash("abc") == stable_hash("abc") != stable_hash("abd")
    assert "." not in stable_hash("abc") and len(stable_hash("abc")) == 16
