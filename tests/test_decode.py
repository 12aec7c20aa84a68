"""Decode stage: formats, ids, sidecars, tags, bad input as dead letters."""

import json
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf
import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from schemas.records import Song
from transforms.core import workdir
from transforms.decode import DecodeAudio, DecodeError, EmptyAudio, content_id, decode_bytes, parse_lyrics

from conftest import synth_mix, stage

HAVE_FFMPEG = shutil.which("ffmpeg") is not None


@pytest.fixture(scope="module")
def tone():
    mix, _, _ = synth_mix(4.0, 120, sr=44100)
    return mix


def _encode(tmp_path, tone, ext):
    wav = tmp_path / "src.wav"
    sf.write(wav, tone.T, 44100)
    if ext == "wav":
        return wav
    out = tmp_path / f"song.{ext}"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav), "-metadata", "artist=Ann Artist",
                    "-metadata", "title=Tone", "-metadata", "genre=Pop", str(out)], check=True)
    return out


@pytest.mark.skipif(not HAVE_FFMPEG, reason="ffmpeg makes the compressed test files")
@pytest.mark.parametrize("ext", ["wav", "flac", "mp3", "ogg", "opus", "m4a"])
def test_every_container_decodes(tmp_path, tone, ext):
    path = _encode(tmp_path, tone, ext)
    audio, sr, container, codec, total = decode_bytes(path.read_bytes(), str(path))
    assert audio.shape[0] == 2 and audio.dtype == np.float32
    assert abs(audio.shape[1] / sr - 4.0) < 0.1  # encoder padding stays small
    assert container and codec and abs(total - 4.0) < 0.1
    # only what the cut keeps is decoded; the full length still comes from the file
    cut, sr2, _, _, whole = decode_bytes(path.read_bytes(), str(path), max_seconds=1.5)
    assert abs(cut.shape[1] / sr2 - 1.5) < 0.05 and abs(whole - 4.0) < 0.1


class CountingReader:
    """A seekable binary stream that counts the bytes read from it."""

    def __init__(self, path):
        self._f = open(path, "rb")
        self.read_bytes = 0

    def read(self, n=-1):
        data = self._f.read(n)
        self.read_bytes += len(data)
        return data

    def readinto(self, buf):
        n = self._f.readinto(buf)
        self.read_bytes += n or 0
        return n

    def __getattr__(self, name):
        return getattr(self._f, name)


@pytest.mark.parametrize("ext", ["wav", "flac"])
def test_a_long_file_is_read_only_as_far_as_the_cut(tmp_path, ext):
    from transforms.decode import decode_stream

    rng = np.random.default_rng(0)
    path = tmp_path / f"long.{ext}"
    sf.write(path, (0.3 * rng.standard_normal((44100 * 120, 2))).astype(np.float32), 44100)  # two minutes
    source = CountingReader(path)
    audio, sr, _, _, total = decode_stream(source, str(path), max_seconds=3.0)
    assert audio.shape == (2, 3 * 44100) and sr == 44100 and abs(total - 120.0) < 1e-6
    # 3 s of 120 s, read twice (the scan, then the samples), plus headers and a read-ahead
    assert source.read_bytes < path.stat().st_size / 10
    whole, _, _, _, _ = decode_bytes(path.read_bytes(), str(path))
    np.testing.assert_array_equal(audio, whole[:, :3 * 44100])


@pytest.mark.skipif(not HAVE_FFMPEG, reason="ffmpeg makes the compressed test file")
def test_the_stage_reads_the_file_as_a_stream_with_tags_and_size(tmp_path, tone, work_dir):
    path = _encode(tmp_path, tone, "m4a")  # ffmpeg's path: the stream is copied to a local file first

    def check(out):
        (song,) = out
        assert song.source.size_bytes == path.stat().st_size and song.source.container
        assert song.source.file_tags.get("artist") == "Ann Artist" and song.artist == "Ann Artist"
        assert abs(song.duration - 4.0) < 0.1

    with TestPipeline() as p:
        songs, _ = p | beam.Create([Song(uri=str(path))]) | stage(DecodeAudio, work_dir)
        assert_that(songs, check)


def test_bad_bytes_raise_clear_errors():
    with pytest.raises(EmptyAudio, match="empty"):
        decode_bytes(b"", "x.wav")
    with pytest.raises(DecodeError, match="cannot decode"):
        decode_bytes(b"this is not audio" * 50, "x.mp3")


def test_content_id_ignores_the_name_but_not_the_audio(tone):
    assert content_id(tone, 44100) == content_id(tone.copy(), 44100)
    assert content_id(tone, 44100) != content_id(tone * 0.5, 44100)


def test_lrc_and_txt_lyrics_parse():
    lrc = "[ar:Someone]\n[00:12.50]hold on tight\n[00:20.00][01:05.00]the night is young\n\n"
    lines = parse_lyrics(lrc, "lrc")
    assert [ln["time"] for ln in lines] == [12.5, 20.0, 65.0]
    assert lines[0]["text"] == "hold on tight"
    assert parse_lyrics("one\n\ntwo\n", "txt") == [{"time": None, "text": "one"}, {"time": None, "text": "two"}]


def _write_corpus(tmp_path, tone):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    sf.write(corpus / "a.wav", tone.T, 44100)
    (corpus / "a.json").write_text(json.dumps({"artist": "Sidecar Artist", "genre": "rock"}))
    (corpus / "a.lrc").write_text("[00:01.00]hello there\n")
    sf.write(corpus / "silent.wav", np.zeros((44100, 2)), 44100)
    (corpus / "empty.wav").write_bytes(b"")
    (corpus / "junk.flac").write_bytes(b"\x00junk" * 100)
    return corpus


def test_decode_transform_outputs_songs_and_dead_letters(tmp_path, tone):
    corpus = _write_corpus(tmp_path, tone)
    work = str(tmp_path / "work")
    uris = [str(corpus / n) for n in ("a.wav", "silent.wav", "empty.wav", "junk.flac")]
    with TestPipeline() as p:
        songs, failed = (p | beam.Create([Song(uri=u) for u in uris])
                         | stage(DecodeAudio, work, decode_max_seconds=3.0))
        assert_that(songs | "Summ" >> beam.Map(lambda s: (s.uri.rsplit("/", 1)[1], s.artist, s.truncated,
                                                            round(s.duration, 2), s.source.reference_lyrics,
                                                            s.source.sidecar.get("genre"))),
                    equal_to([("a.wav", "Sidecar Artist", True, 3.0, "hello there", "rock")]), label="songs")
        assert_that(failed | "F" >> beam.Map(lambda d: (d.uri.rsplit("/", 1)[1], d.stage, d.error_type)),
                    equal_to([("silent.wav", "decode", "EmptyAudio"), ("empty.wav", "decode", "EmptyAudio"),
                              ("junk.flac", "decode", "DecodeError")]), label="failed")
    # the work dir holds the 48 kHz stereo mix and the 16 kHz mono copy, cut to 3 s
    import glob

    mixes = glob.glob(f"{work}/*/mix.*")
    assert len(mixes) == 1 and mixes[0].endswith(".npz")  # a local work dir's default: npz
    mix, sr = workdir.load_audio(mixes[0])
    mono, sr16 = workdir.load_audio(mixes[0].replace("mix.npz", "mix16k.npz"))
    assert (sr, mix.shape) == (48000, (2, 144000)) and (sr16, mono.shape) == (16000, (1, 48000))


@pytest.mark.skipif(not HAVE_FFMPEG, reason="ffmpeg writes the tagged mp3")
def test_embedded_tags_are_read(tmp_path, tone):
    from transforms.decode import read_file_tags

    path = _encode(tmp_path, tone, "mp3")
    tags = read_file_tags(path.read_bytes())
    assert tags["artist"] == "Ann Artist" and tags["genre"] == "Pop"
