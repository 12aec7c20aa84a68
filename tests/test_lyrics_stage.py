"""TranscribeLyrics as a PTransform: TestPipeline + assert_that on decoded songs."""

from __future__ import annotations

import re
import shutil
import subprocess

import apache_beam as beam
import numpy as np
import pytest
import soundfile as sf
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from schemas.records import Song, SourceInfo
from transforms.core import audio as au
from transforms.core import workdir
from transforms.lyrics.stage import TranscribeLyrics
from conftest import stage

SENTENCE = "my heart is beating like a drum, calling out your name"
GT_LINE = re.compile(r"^\[[a-z]+(-(short|medium|long))?\]( [^;\[\]]+)?( ; \[[a-z]+(-(short|medium|long))?\]( [^;\[\]]+)?)*$")


def _labels(songs):
    return [s.labels["lyrics"] for s in songs]


def speech_song(tmp_path, work, song_id="sung", speech_at=6.0, duration=20.0, with_structure=False):
    """A decoded Song whose vocal stem is espeak speech at ``speech_at`` s; accompaniment: a bass tone."""
    wav = tmp_path / f"{song_id}.wav"
    subprocess.run(["espeak-ng", "-s", "140", "-w", str(wav), SENTENCE], check=True, capture_output=True)
    speech, rate = sf.read(str(wav), dtype="float32")
    speech = au.resample(speech[None, :], rate, au.CODEC_RATE)[0]
    n = int(duration * au.CODEC_RATE)
    vocals = np.zeros(n, np.float32)
    i = int(speech_at * au.CODEC_RATE)
    vocals[i:i + speech.size] = speech
    t = np.arange(n) / au.CODEC_RATE
    acc = (0.2 * np.sin(2 * np.pi * 55.0 * t)).astype(np.float32)
    song = Song(uri=f"/corpus/{song_id}.wav", song_id=song_id, duration=duration,
                source=SourceInfo(uri=f"/corpus/{song_id}.wav", reference_lyrics=f"Lyrics by Someone\n{SENTENCE}",
                                  reference_lyrics_format="txt"))
    for name, x in (("vocals", vocals), ("accompaniment", acc), ("mix", vocals + acc)):
        song.audio[name] = workdir.save_audio(workdir.song_uri(work, song_id, name), au.to_stereo(x), au.CODEC_RATE)
    if with_structure:
        end = speech_at + speech.size / au.CODEC_RATE
        song.labels["structure"] = {"sections": [
            {"start": 0.0, "end": speech_at - 0.5, "label": "intro", "tag": "intro-short"},
            {"start": speech_at - 0.5, "end": end + 0.5, "label": "chorus", "tag": "chorus"},
            {"start": end + 0.5, "end": duration, "label": "outro", "tag": "outro-short"}]}
    return song


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_transcribe_lyrics_on_the_vocal_stem(tmp_path, work_dir):
    songs_in = [speech_song(tmp_path, work_dir, "plain"), speech_song(tmp_path, work_dir, "structured", with_structure=True)]
    transform = stage(TranscribeLyrics, work_dir, lyrics="faster-whisper", lyrics_threads=2)

    def check(labels):
        assert len(labels) == 2
        for lab in labels:
            assert lab["source"] == "vocals" and lab["language"] == "en"
            assert lab["language_probability"] > 0.5 and lab["language_coverage"] == 1.0
            assert lab["alignment"]["wer"] <= 0.25, lab["lines"]
            assert lab["reference"]["text"] == SENTENCE  # the credit line is gone
            assert all(5.4 <= w["start"] <= w["end"] <= 11.5 for w in lab["words"])  # nothing in the silence
            assert GT_LINE.match(lab["gt_lyric"]), lab["gt_lyric"]
            assert "my heart is beating" in lab["gt_lyric"]
        by_source = {lab["sections_source"]: lab for lab in labels}
        structured = by_source["structure"]
        assert structured["gt_lyric"].startswith("[intro-short] ; [chorus] my heart")
        assert re.match(r"^\[intro-short\]\[0\.00:5\.50\] ; \[chorus\]\[5\.50:\d+\.\d\d\]my heart",
                        structured["gt_lyric_timed"])
        assert by_source["vocal_activity"]["gt_lyric"].startswith("[intro-short] ; [verse] my heart")

    with TestPipeline() as p:
        songs, failures = p | "Songs" >> beam.Create(songs_in) | transform
        provenance = songs | "Prov" >> beam.Map(lambda s: s.provenance["lyrics"]["backend"])
        assert_that(songs | "Labels" >> beam.combiners.ToList()
                    | beam.Map(_labels), lambda got: check(got[0]), label="labels")
        assert_that(provenance, equal_to(["faster-whisper", "faster-whisper"]), label="provenance")
        assert_that(failures, equal_to([]), label="no_failures")


def test_mix_fallback_and_dead_letters(make_song, work_dir):
    fallback = make_song(duration=8.0, seed=1)  # mix16k only, no stems
    broken = Song(uri="/corpus/broken.wav", song_id="broken", duration=5.0)  # decode never ran
    transform = stage(TranscribeLyrics, work_dir, lyrics="none")

    def check_songs(songs):
        assert [s.song_id for s in songs] == [fallback.song_id]
        lab = songs[0].labels["lyrics"]
        assert lab["source"] == "mix16k" and "no vocal stem" in lab["note"]
        assert lab["transcribed"] is False and lab["words"] == [] and lab["gt_lyric"].startswith("[")
        assert songs[0].provenance["lyrics"]["backend"] == "none"

    def check_failures(dead):
        assert len(dead) == 1
        assert dead[0].stage == "lyrics" and dead[0].song_id == "broken" and dead[0].error_type == "ValueError"

    with TestPipeline() as p:
        songs, failures = p | beam.Create([fallback, broken]) | transform
        assert_that(songs | "S" >> beam.combiners.ToList(), lambda got: check_songs(got[0]), label="songs")
        assert_that(failures | "F" >> beam.combiners.ToList(), lambda got: check_failures(got[0]), label="dead")
