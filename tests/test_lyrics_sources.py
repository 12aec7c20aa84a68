"""Reference lyrics from every place a lab keeps them: sidecars, the sidecar JSON, tags, the lyrics table.

Layers: the pure readers (``transforms.decode.reference``, ``transforms.core.lyrics_input``); the
decode DoFn called directly on real files; ``ReadSongs`` under TestPipeline for the table join;
the job graph's size against the table's; one short run whose shards carry the table's lyrics.
"""

from __future__ import annotations

import csv
import glob
import json
import os
import shutil
import subprocess

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import webdataset as wds
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from schemas.records import Song
from transforms.core.config import RunContext
from transforms.core.lyrics_input import MAX_LYRICS_CHARS, check_table, join_key
from transforms.decode import DecodeAudio
from transforms.decode import reference as ref
from transforms.discover.read import ReadSongs

from conftest import synth_mix

HAVE_FFMPEG = shutil.which("ffmpeg") is not None
SYLT_ENTRIES = [("Hold ", 1000), ("on\n", 1500), ("we ", 3000), ("run", 3400)]


@pytest.fixture(scope="module")
def tone():
    return synth_mix(3.0, 120, sr=44100)[0]


def _wav(path, tone):
    sf.write(path, tone.T, 44100)
    return path


def _ffmpeg(src, out, *codec):
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), *codec, str(out)], check=True)
    return out


def _mp3(tmp_path, tone, uslt=None, sylt=None, name="song.mp3"):
    from mutagen.id3 import SYLT, USLT
    from mutagen.mp3 import MP3

    path = _ffmpeg(_wav(tmp_path / "src.wav", tone), tmp_path / name, "-c:a", "libmp3lame")
    f = MP3(path)
    if f.tags is None:
        f.add_tags()
    if uslt:
        f.tags.add(USLT(encoding=3, lang="eng", desc="", text=uslt))
    if sylt:
        f.tags.add(SYLT(encoding=3, lang="eng", format=2, type=1, desc="", text=sylt))
    f.save()
    return path


def _tagged(tmp_path, tone, kind, text):
    """A file of ``kind`` with ``text`` in its lyrics tag; skips when ffmpeg lacks the encoder."""
    if kind in ("id3_uslt", "id3_sylt"):
        if not HAVE_FFMPEG:
            pytest.skip("ffmpeg makes the mp3")
        return _mp3(tmp_path, tone, uslt=text if kind == "id3_uslt" else None,
                    sylt=SYLT_ENTRIES if kind == "id3_sylt" else None)
    if kind == "vorbis_flac":
        from mutagen.flac import FLAC

        path = tmp_path / "song.flac"
        sf.write(path, tone.T, 44100)
        f = FLAC(path)
        f["LYRICS"] = text
        f.save()
        return path
    if kind == "vorbis_ogg":
        from mutagen.oggvorbis import OggVorbis

        path = tmp_path / "song.ogg"
        sf.write(path, tone.T, 44100, format="OGG", subtype="VORBIS")
        f = OggVorbis(path)
        f["UNSYNCEDLYRICS"] = text
        f.save()
        return path
    from mutagen.mp4 import MP4

    if not HAVE_FFMPEG or b" aac " not in subprocess.run(["ffmpeg", "-hide_banner", "-encoders"],
                                                         capture_output=True).stdout:
        pytest.skip("this ffmpeg has no AAC encoder to make the m4a")
    path = _ffmpeg(_wav(tmp_path / "src.wav", tone), tmp_path / "song.m4a", "-c:a", "aac")
    f = MP4(path)
    f["\xa9lyr"] = [text]
    f.save()
    return path


def _decode(path, work):
    """The decode DoFn on one file, as a worker runs it: the decoded Song (its failure raises)."""
    fn = DecodeAudio(DecodeAudio.configure({}), RunContext(work_dir=str(work))).make_fn()
    fn.setup()
    out = list(fn.process(Song(uri=str(path))))
    assert len(out) == 1 and isinstance(out[0], Song), out
    return out[0]


@pytest.mark.parametrize("kind, name", [("id3_uslt", "id3_uslt"), ("id3_sylt", "id3_sylt"),
                                        ("vorbis_flac", "vorbis"), ("vorbis_ogg", "vorbis"), ("mp4", "mp4")])
def test_embedded_lyrics_are_read_from_each_container(tmp_path, tone, kind, name):
    path = _tagged(tmp_path, tone, kind, "the night is young\nwe run along")
    found = ref.embedded_lyrics(path.read_bytes())
    expected = "[00:01.00]<00:01.00>Hold <00:01.50>on\n[00:03.00]<00:03.00>we <00:03.40>run" \
        if kind == "id3_sylt" else "the night is young\nwe run along"
    assert found == {name: expected}
    song = _decode(path, tmp_path / "work")
    assert song.source.reference_lyrics_source == name and song.source.reference_lyrics_sources == [name]
    assert song.source.reference_lyrics_raw == expected
    if kind == "id3_sylt":
        assert song.source.reference_lyrics_format == "lrc"
        assert song.source.reference_lyrics_lines == [{"time": 1.0, "text": "Hold on"},
                                                      {"time": 3.0, "text": "we run"}]


def test_sylt_entries_become_lrc_lines():
    assert ref.sylt_to_lrc([("first line", 1000), ("second line", 62_500)]) == \
        "[00:01.00]first line\n[01:02.50]second line"
    assert ref.sylt_to_lrc(SYLT_ENTRIES) == "[00:01.00]<00:01.00>Hold <00:01.50>on\n[00:03.00]<00:03.00>we <00:03.40>run"
    assert ref.sylt_to_lrc([("no ", 10), ("frames", 20)], stamp_format=1) == "no\nframes"  # MPEG frames: untimed


@pytest.mark.parametrize("sidecar", ["txt", "lrc", "json"])
def test_sidecars_and_the_json_lyrics_field_are_read(tmp_path, tone, sidecar):
    path = _wav(tmp_path / "song.wav", tone)
    text = {"txt": "[Chorus]\nhold on\n", "lrc": "[ti:x]\n[00:01.00]hold on\n", "json": "hold on\n"}[sidecar]
    if sidecar == "json":
        (tmp_path / "song.json").write_text(json.dumps({"artist": "A", "lyrics": text}))
    else:
        (tmp_path / f"song.{sidecar}").write_text(text)
    src = _decode(path, tmp_path / "work").source
    assert (src.reference_lyrics_source, src.reference_lyrics_raw) == (sidecar, text)
    assert src.reference_lyrics_lines[-1]["text"] == "hold on"
    assert src.reference_lyrics_format == ("lrc" if sidecar == "lrc" else "txt")


def test_precedence_table_json_lrc_txt_sylt_then_unsynced(tmp_path, tone):
    if not HAVE_FFMPEG:
        pytest.skip("ffmpeg makes the mp3")
    path = _mp3(tmp_path, tone, uslt="from uslt", sylt=[("from sylt", 500)])
    (tmp_path / "song.json").write_text(json.dumps({"lyrics": "from json"}))
    (tmp_path / "song.lrc").write_text("[00:01.00]from lrc")
    (tmp_path / "song.txt").write_text("from txt")
    order = ["json", "lrc", "txt", "id3_sylt", "id3_uslt"]
    for used in order:
        src = _decode(path, tmp_path / "work").source
        held = order[order.index(used):]
        assert (src.reference_lyrics_source, src.reference_lyrics_sources) == (used, held)
        assert src.reference_lyrics.endswith("from " + used.replace("id3_", ""))
        if used == "json":
            (tmp_path / "song.json").write_text(json.dumps({"artist": "no lyrics here"}))
        elif used in ("lrc", "txt"):
            os.remove(tmp_path / f"song.{used}")
        elif used == "id3_sylt":
            from mutagen.mp3 import MP3

            f = MP3(path)
            f.tags.delall("SYLT")
            f.save()
    found = {"table": "t", "json": "j", "lrc": "l", "txt": "x", "id3_sylt": "s", "id3_uslt": "u", "vorbis": "v"}
    assert ref.choose(found) == ("table", "t") and ref.PRECEDENCE[0] == "table"
    assert ref.choose({"vorbis": "v", "id3_sylt": "s"}) == ("id3_sylt", "s") and ref.choose({}) == ("", "")


def test_table_text_on_the_song_wins_and_its_cut_is_kept(tmp_path, tone):
    from schemas.records import SourceInfo

    path = _wav(tmp_path / "song.wav", tone)
    (tmp_path / "song.txt").write_text("from txt")
    fn = DecodeAudio(DecodeAudio.configure({}), RunContext(work_dir=str(tmp_path / "w"))).make_fn()
    fn.setup()
    table = SourceInfo(uri=str(path), reference_lyrics_source="table", reference_lyrics_raw="from table",
                       reference_lyrics_chars=90_000)
    src = list(fn.process(Song(uri=str(path), source=table)))[0].source
    assert (src.reference_lyrics_source, src.reference_lyrics_sources) == ("table", ["table", "txt"])
    assert src.reference_lyrics == "from table" and src.reference_lyrics_chars == 90_000
    assert src.container  # decode filled in the rest of the record


def test_a_huge_sidecar_is_cut_and_its_length_recorded(tmp_path, tone):
    path = _wav(tmp_path / "song.wav", tone)
    (tmp_path / "song.txt").write_text("la la la la\n" * 900_000)  # 10.8 MB
    src = _decode(path, tmp_path / "work").source
    assert len(src.reference_lyrics_raw) <= MAX_LYRICS_CHARS and src.reference_lyrics_chars == 10_800_000


# ---- the lyrics table --------------------------------------------------------------------------------------

ROWS = {"a.wav": "[Chorus]\nlyrics of a", "sub/b.wav": "[00:01.00]lyrics of b\n[00:02.00]and more, \"quoted\""}


def _write_table(path, fmt, rows):
    if fmt == "parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "not json\n")
    else:
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return path


@pytest.fixture
def corpus(tmp_path):
    d = tmp_path / "songs"
    (d / "sub").mkdir(parents=True)
    for seed, name in enumerate(("a.wav", "sub/b.wav", "c.wav")):  # three songs, not three copies of one
        sf.write(d / name, synth_mix(3.0, 100 + 9 * seed, sr=44100, seed=seed)[0].T, 44100)
    return d


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "csv"])
@pytest.mark.parametrize("key", ["uri", "path"])
def test_the_table_joins_where_the_input_is_read(tmp_path, corpus, fmt, key):
    rows = [{key: str(corpus / name) if key == "uri" else name, "lyrics": text} for name, text in ROWS.items()]
    rows.append({key: "nowhere.wav" if key == "path" else "/elsewhere/x.wav", "lyrics": "unmatched"})
    table = _write_table(tmp_path / f"lyrics.{fmt}", fmt, rows)
    with TestPipeline() as p:
        songs, _ = p | ReadSongs(str(corpus), str(tmp_path / "out"), lyrics_table=str(table))
        got = songs | beam.Map(lambda s: (os.path.relpath(s.uri, str(corpus)),
                                          s.source.reference_lyrics_raw if s.source else None,
                                          s.source.reference_lyrics_source if s.source else None))
        assert_that(got, equal_to([("a.wav", ROWS["a.wav"], "table"), ("sub/b.wav", ROWS["sub/b.wav"], "table"),
                                   ("c.wav", None, None)]))


@pytest.mark.parametrize("name, content, message", [
    ("missing.parquet", None, "no such file"), ("lyrics.xlsx", "x", "unknown format"),
    ("lyrics.csv", "uri,text\n/a.wav,la\n", "missing column(s) lyrics"),
    ("lyrics.jsonl", '{"lyrics": "la"}\n', "missing column(s) uri or path"),
])
def test_a_bad_table_is_a_clear_error_at_start_up(tmp_path, name, content, message):
    from pipeline.config import resolve
    from transforms.lyrics import TranscribeLyrics

    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_table(str(path))
    with pytest.raises(ValueError, match="--lyrics_table"):
        resolve(["--input", str(tmp_path), "--output", str(tmp_path / "out"), "--lyrics_table", str(path)],
                model_stages=[TranscribeLyrics])


def test_join_keys_meet_whatever_way_a_path_is_written(tmp_path):
    assert join_key(str(tmp_path / "x" / ".." / "a.wav")) == join_key(str(tmp_path / "a.wav"))
    assert join_key("gs://b/songs//x/./a.flac") == "gs://b/songs/x/a.flac"
    assert check_table(str(_write_table(tmp_path / "t.csv", "csv", [{"path": "a", "lyrics": "b"}]))).format == "csv"


def _graph_size(tmp_path, rows):
    from pipeline.config import resolve
    from pipeline.graph import build
    from transforms.lyrics import TranscribeLyrics

    manifest = tmp_path / "songs.txt"
    manifest.write_text("".join(f"gs://bucket/songs/{i:07d}.flac\n" for i in range(10)))
    folder = tmp_path / f"table{rows:06d}"
    folder.mkdir()
    table = pa.table({"uri": [f"gs://bucket/songs/{i:07d}.flac" for i in range(rows)],
                      "lyrics": [f"[Verse]\nline {i} of a song\n[Chorus]\nla la la" for i in range(rows)]})
    pq.write_table(table, folder / "lyrics.parquet")
    _, config = resolve(["--input", str(manifest), "--output", str(tmp_path / "out"), "--lyrics", "none",
                         "--lyrics_vad", "none", "--lyrics_table", str(folder / "lyrics.parquet")],
                        model_stages=[TranscribeLyrics])
    p = beam.Pipeline()
    paths = {k: str(tmp_path / k) for k in ("parts", "failures", "filtered", "progress")}
    build(p, config, RunContext(output=str(tmp_path / "out"), work_dir=str(tmp_path / "w")), paths)
    proto = p.to_runner_api()
    return len(proto.SerializeToString()), len(proto.components.transforms)


def test_the_job_graph_does_not_grow_with_the_lyrics_table(tmp_path):
    small, large = _graph_size(tmp_path, 10), _graph_size(tmp_path, 100_000)
    assert small[1] == large[1], (small, large)  # the same transforms
    assert abs(large[0] - small[0]) < 200, (small, large)  # 100,000 rows pickled in would be ~4 MB
    assert large[0] < 1_000_000


def test_a_run_with_a_table_carries_its_lyrics_into_the_shards(tmp_path, corpus):
    from pipeline.run import run
    from transforms.lyrics import TranscribeLyrics

    from test_graph import FakeStage

    table = _write_table(tmp_path / "lyrics.jsonl", "jsonl",
                         [{"path": "a.wav", "lyrics": "Lyrics by Someone\n[Chorus]\nhold on tight"}])
    out = tmp_path / "out"
    argv = ["--input", str(corpus), "--output", str(out), "--fake", "fake", "--lyrics", "none", "--lyrics_vad",
            "none", "--lyrics_table", str(table), "--filter_min_duration", "1", "--split_valid_fraction", "0",
            "--split_test_fraction", "0", "--progress_interval", "0"]
    stats = run(argv, test_pipeline=TestPipeline(), stages=[TranscribeLyrics, FakeStage])
    assert stats["records_out"] == 3
    samples = [s["json"] for shard in sorted(glob.glob(f"{out}/*.tar"))
               for s in wds.WebDataset(shard, shardshuffle=False, empty_check=False).decode()]
    by_name = {os.path.relpath(s["uri"], str(corpus)): s for s in samples}
    a = by_name["a.wav"]
    assert a["source"]["reference_lyrics_source"] == "table"
    assert a["source"]["reference_lyrics_raw"] == "Lyrics by Someone\n[Chorus]\nhold on tight"
    assert "hold on tight" in a["labels"]["lyrics"]["reference"]["text"]
    assert by_name["c.wav"]["source"]["reference_lyrics_source"] == ""
