"""Stages read work-dir audio block by block (issue: bounded memory), and get the same figures as
from whole arrays.

- ``reading.read_audio`` / ``frame_rms`` / ``read_span`` equal what the whole-array helpers give;
- the quality accumulators fed in odd-sized blocks equal the whole-array measures (and pyloudnorm);
- the tokens stage's window-by-window encoder equals ``backend.encode`` on the whole fitted stream;
- structure (dsp), lyrics, tags (musicnn) and quality never call ``workdir.load_audio`` on a song,
  and the tokens stage does not on a long one.
"""

from __future__ import annotations

import numpy as np
import pytest

from schemas.records import Song
from transforms.core import audio as au
from transforms.core import reading, stream, workdir
from transforms.quality import blockwise as bw
from transforms.quality import measures as Q

SR = 48000


def _song_audio(seconds: float, seed: int = 0, loud: float = 0.3) -> np.ndarray:
    """Stereo test music: chords, a beat, noise; some silence at the start."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    tone = sum(np.sin(2 * np.pi * f * t) / (k + 1) for k, f in enumerate((110.0, 220.0, 277.2, 329.6)))
    beat = np.exp(-(t % 0.5) / 0.03) * rng.standard_normal(t.size)
    mono = loud * (0.5 * tone / 2 + 0.4 * beat) * (t > 1.0)
    return np.stack([mono, 0.8 * mono + 0.05 * rng.standard_normal(t.size)]).astype(np.float32)


@pytest.fixture(params=["npz", "flac24"])
def fmt(request):
    return request.param


def _save(tmp_path, name: str, audio: np.ndarray, fmt: str) -> str:
    uri = str(tmp_path / (name + (".npz" if fmt == "npz" else ".flac")))
    return workdir.save_audio(uri, audio, SR, fmt)


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(reading, "BLOCK_SECONDS", 1.37)  # odd sizes: windows and frames span blocks


@pytest.mark.parametrize("rate", [16000, 22050, 48000])
@pytest.mark.parametrize("mono", [True, False])
def test_read_audio_equals_resampling_the_whole_array(tmp_path, fmt, rate, mono):
    uri = _save(tmp_path, "mix", _song_audio(7.3), fmt)
    whole, sr = workdir.load_audio(uri)
    expect = au.resample(au.to_mono(whole) if mono else whole, sr, rate)
    got = reading.read_audio(uri, rate, mono=mono, block_seconds=1.37)
    assert got.sample_rate == rate and got.seconds == pytest.approx(whole.shape[1] / SR)
    assert got.audio.dtype == np.float32 and got.audio.shape == expect.shape
    assert np.array_equal(got.audio, expect)


def test_frame_rms_and_spans_equal_the_whole_array(tmp_path, fmt):
    uri = _save(tmp_path, "mix", _song_audio(6.05), fmt)
    whole, sr = workdir.load_audio(uri)
    rms, rate = reading.frame_rms(uri, 0.1, block_frames=7)
    assert rate == sr and np.array_equal(rms, au.frame_rms(whole, sr, 0.1))
    span = reading.read_span(uri, 100_003, 77_777, block_seconds=0.9)
    assert np.array_equal(span, whole[:, 100_003:100_003 + 77_777])
    tail = reading.read_span(uri, whole.shape[1] - 10, 50, mono=True)
    assert np.array_equal(tail, au.to_mono(whole)[:, -10:])


def test_views_come_from_one_pass_and_equal_single_reads(tmp_path, fmt, monkeypatch):
    uri = _save(tmp_path, "vocals", _song_audio(5.3), fmt)
    single = {rate: reading.read_audio(uri, rate, mono=True).audio[0] for rate in (22050, 16000)}
    rms = reading.frame_rms(uri, 0.1)[0]
    opened = []
    real_open = stream.open_reader
    monkeypatch.setattr(reading, "open_reader", lambda u: opened.append(u) or real_open(u))
    views = reading.read_views(uri, (22050, 16000), 0.1, block_seconds=0.77)
    assert opened == [uri] and views.sample_rate == SR and views.seconds == pytest.approx(5.3, abs=1e-4)
    assert all(np.array_equal(views.mono[r], single[r]) for r in single)
    assert np.array_equal(views.frame_rms, rms)


def test_loudness_accumulator_matches_pyloudnorm_in_blocks():
    import pyloudnorm

    x = _song_audio(9.0, seed=2)
    expect = pyloudnorm.Meter(SR).integrated_loudness(x.T.astype(np.float64))
    meter = bw.Loudness(SR, 2, x.shape[1])
    for s in range(0, x.shape[1], 70_001):
        meter.add(x[:, s:s + 70_001])
    assert meter.result() == pytest.approx(expect, abs=1e-9)
    assert Q.integrated_loudness(x, SR) == pytest.approx(expect, abs=1e-9)


def test_true_peak_and_clipping_accumulators_span_blocks():
    x = _song_audio(50.0, seed=3, loud=0.8)  # 2.3 true-peak windows
    x[0, 1_048_570:1_048_590] = 0.93  # a flat run across the first window's end and a block edge
    x[1, 2_000_000:2_000_005] = 1.0
    peak = float(np.max(np.abs(x)))
    whole_tp, whole_clip = bw.TruePeak(x.shape[1]), bw.ClipCount(2, peak, Q.CLIP_FULL_SCALE, Q.CLIP_PLATEAU)
    whole_tp.add(x)
    whole_clip.add(x)
    tp, clip = bw.TruePeak(x.shape[1]), bw.ClipCount(2, peak, Q.CLIP_FULL_SCALE, Q.CLIP_PLATEAU)
    for s in range(0, x.shape[1], 1_048_580):  # a block edge inside the flat run
        tp.add(x[:, s:s + 1_048_580])
        clip.add(x[:, s:s + 1_048_580])
    assert tp.result() == whole_tp.result() > 0.93
    assert clip.ratio() == whole_clip.ratio() > 0


def test_plateau_runs_are_counted_like_the_whole_array_rule():
    x = np.zeros((1, 40), dtype=np.float32)
    x[0, 5:9] = 0.5   # 4 equal samples at the peak: a plateau
    x[0, 20:22] = 0.5  # 2: too short
    x[0, 30] = -0.5
    count = bw.ClipCount(1, 0.5, Q.CLIP_FULL_SCALE, Q.CLIP_PLATEAU)
    for s in range(0, 40, 6):
        count.add(x[:, s:s + 6])
    assert count.ratio() == pytest.approx(4 / 40)


def test_spectrum_in_blocks_equals_one_welch_call():
    from scipy.signal import welch

    x = _song_audio(8.0, seed=4)[0]
    freqs, expect = welch(x.astype(np.float64), fs=SR, nperseg=4096, noverlap=2048)
    spectrum = bw.Spectrum(SR)
    for s in range(0, x.size, 50_000):
        spectrum.add(x[s:s + 50_000].astype(np.float64))
    got_freqs, level = spectrum.result()
    assert np.array_equal(got_freqs, freqs)
    assert np.allclose(level, 10 * np.log10(np.maximum(expect, 1e-30)), atol=1e-9)


def test_quality_from_files_equals_quality_from_arrays(tmp_path, fmt, small_blocks):
    mix, vocals = _song_audio(30.0, seed=5), 0.5 * _song_audio(30.0, seed=6)
    accompaniment = mix - vocals
    sections = [{"start": 0.0, "end": 8.0, "label": "intro"}, {"start": 8.0, "end": 22.0, "label": "verse"},
                {"start": 22.0, "end": 30.0, "label": "outro"}]
    uris = [_save(tmp_path, n, a, fmt) for n, a in (("mix", mix), ("vocals", vocals), ("acc", accompaniment))]
    arrays = [workdir.load_audio(u)[0] for u in uris]  # what the files hold (FLAC is quantised)
    source = {"sample_rate": 44100, "codec": "mp3", "channels": 2}
    expect = Q.measure_quality(arrays[0], SR, arrays[1], arrays[2], source, sections)
    from transforms.quality.files import measure_quality_files

    got = measure_quality_files(*uris, source=source, sections=sections)
    assert got.keys() == expect.keys()
    for key, value in expect.items():
        if isinstance(value, float):
            assert got[key] == pytest.approx(value, abs=2e-6), key
        else:
            assert got[key] == value, key
    assert got["vocal_leakage_db"] is not None and got["stem_overlap"] is not None


def test_tokens_window_by_window_equal_the_whole_stream(tmp_path):
    from transforms.tokens import frames, streaming
    from transforms.tokens.kmeans import EMBEDDED_CODEBOOK, KMeansCodec

    codec = KMeansCodec({"weights": EMBEDDED_CODEBOOK})
    codec.load()
    seconds = 2 * frames.WINDOW_SECONDS + 13.0  # three windows, the last one tiled from the start
    mix = _song_audio(seconds, seed=7, loud=1.5)  # loud: the peak gain applies
    vocals = 0.5 * _song_audio(seconds - 30.0, seed=8)  # shorter than the mix: zero-padded
    uris = {"mix": _save(tmp_path, "mix", mix, "npz"), "vocals": _save(tmp_path, "vocals", vocals, "npz")}
    length = streaming.fitted_length(uris["mix"])
    assert streaming.streams_in_windows(codec, length)
    fitted = frames.fit_streams({"mix": mix, "vocals": vocals})
    for name, uri in uris.items():
        expect = codec.encode(fitted[name])
        got = streaming.encode_file(codec, uri, length)
        assert got.dtype == np.int64 and np.array_equal(got, expect), name
        start, end = frames.prompt_window(length / SR)
        assert np.array_equal(streaming.read_clip(uri, length, start, end), frames.clip(fitted[name], start, end))


def test_dsp_structure_from_files_equals_from_arrays(tmp_path, fmt):
    from transforms.structure.dsp import DspStructure

    mix, vocals = _song_audio(40.0, seed=9), 0.4 * _song_audio(40.0, seed=10)
    uris = _save(tmp_path, "mix", mix, fmt), _save(tmp_path, "vocals", vocals, fmt)
    backend = DspStructure({})
    backend.load()
    expect = backend.analyze(workdir.load_audio(uris[0])[0], SR, {"vocals": workdir.load_audio(uris[1])[0]})
    views = reading.read_views(uris[1], (22050, 16000), 0.1, block_seconds=1.37)
    got, seconds = backend.analyze_files(uris[0], views)
    assert seconds == pytest.approx(40.0) and got == expect


def _no_whole_loads(monkeypatch):
    def refuse(uri):
        raise AssertionError(f"{uri} was loaded whole")

    monkeypatch.setattr(workdir, "load_audio", refuse)


def _separated_song(tmp_path, seconds: float) -> Song:
    mix, vocals = _song_audio(seconds, seed=11), 0.4 * _song_audio(seconds, seed=12)
    audio = {"mix": _save(tmp_path, "mix", mix, "npz"), "vocals": _save(tmp_path, "vocals", vocals, "npz"),
             "accompaniment": _save(tmp_path, "accompaniment", mix - vocals, "npz")}
    return Song(song_id="s1", uri="s1.wav", duration=seconds, audio=audio)


def test_stages_read_blocks_not_whole_arrays(tmp_path, monkeypatch):
    from transforms.quality.stage import measure_song
    from transforms.structure.beatnet import BeatNetStructure
    from transforms.structure.dsp import DspStructure
    from transforms.tags.musicnn_backend import MusicnnTags
    from transforms.tags.stage import tag_song

    song = _separated_song(tmp_path, 20.0)
    _no_whole_loads(monkeypatch)
    for backend in (DspStructure({}), BeatNetStructure({})):
        assert backend.reads_mono
        backend.load()
        views = reading.read_views(song.audio["vocals"], (22050, 16000), 0.1)
        result, seconds = backend.analyze_files(song.audio["mix"], views)
        assert result["sections"] and seconds == pytest.approx(20.0)
    tagger = MusicnnTags({})
    tagger.load()
    label = tag_song(song, tagger)
    assert label["vocals"]["stem_presence"] is not None
    assert measure_song(song, (0.85, 0.7, 0.5, 0.3))["loudness_lufs"] > -70


def test_tags_from_mono_blocks_equal_tags_from_whole_arrays(tmp_path):
    from transforms.tags.musicnn_backend import MusicnnTags
    from transforms.tags.stage import tag_song

    song = _separated_song(tmp_path, 15.0)
    tagger = MusicnnTags({})
    tagger.load()
    blockwise = tag_song(song, tagger)
    tagger.input_rate = None  # whole 48 kHz arrays, resampled inside the backend
    whole = tag_song(song, tagger)
    assert blockwise == whole


def test_long_song_tokens_read_windows_not_whole_arrays(tmp_path, monkeypatch):
    from transforms.tokens import frames, streaming
    from transforms.tokens.kmeans import EMBEDDED_CODEBOOK, KMeansCodec

    codec = KMeansCodec({"weights": EMBEDDED_CODEBOOK})
    codec.load()
    song = _separated_song(tmp_path, 2 * frames.WINDOW_SECONDS + 5.0)
    _no_whole_loads(monkeypatch)
    length = streaming.fitted_length(song.audio["mix"])
    ids = {name: streaming.encode_file(codec, song.audio[key], length)
           for name, key in (("mixed", "mix"), ("vocal", "vocals"), ("accompaniment", "accompaniment"))}
    assert all(v.shape == (frames.frames_for_samples(length),) for v in ids.values())


def test_pitch_descriptor_chunks_give_the_whole_song_values():
    import librosa

    from transforms.tags import descriptors as D

    rng = np.random.default_rng(13)
    t = np.arange(int(9.0 * D.PITCH_RATE)) / D.PITCH_RATE
    voice = 0.3 * np.sin(2 * np.pi * (180 + 40 * np.sin(t)) * t)
    mono = (voice + 0.01 * rng.standard_normal(t.size)).astype(np.float32)
    whole = librosa.yin(mono, fmin=D.F0_MIN, fmax=D.F0_MAX, sr=D.PITCH_RATE, frame_length=D.PITCH_FRAME,
                        hop_length=D.PITCH_HOP, center=True)
    assert np.array_equal(D.yin_chunked(mono, chunk=37), whole)
    frames = librosa.util.frame(np.pad(mono, (D.PITCH_FRAME // 2, D.PITCH_FRAME // 2)),
                                frame_length=D.PITCH_FRAME, hop_length=D.PITCH_HOP)
    expect = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=0))
    assert np.array_equal(D.frame_rms_of(frames, chunk=41), expect)
