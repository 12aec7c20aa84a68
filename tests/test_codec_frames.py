"""Frame conventions of the codec tokens stage (pure functions, no runner)."""

from __future__ import annotations

import numpy as np
import pytest

from transforms.tokens import frames

SR = frames.SAMPLE_RATE
DURATIONS = [0.0, 0.01, 0.039, 0.04, 1.0, 3.3333, 12.345, 39.99, 40.0, 40.04, 79.98, 80.0, 95.37, 120.0]


@pytest.mark.parametrize("duration", DURATIONS)
def test_frame_count_follows_int_d_times_25_plus_1(duration):
    n = int(round(duration * SR))
    d = n / SR
    seen = []

    def window(w):
        assert w.shape == (2, frames.WINDOW_SAMPLES)
        seen.append(w)
        return np.arange(frames.WINDOW_FRAMES) + 1000 * (len(seen) - 1)

    ids = frames.encode_windowed(np.zeros((2, n), np.float32), window)
    assert ids.shape == (int(d * 25) + 1,)
    assert frames.num_frames(d) == int(d * 25) + 1 == frames.frames_for_samples(n)
    # frames are the windows' frames in order; only windows holding a kept frame are encoded
    assert np.array_equal(ids, np.arange(ids.shape[0]))
    assert len(seen) == -(-ids.shape[0] // 1000)


def test_exact_window_multiple_takes_its_last_frame_from_the_repeated_start():
    n = 80 * SR
    t = np.arange(n) / SR
    audio = np.stack([t, t]).astype(np.float32) / 100.0  # ramp: a window's content shows where it starts
    starts = []
    frames.encode_windowed(audio, lambda w: (starts.append(float(w[0, 0])), np.zeros(1000))[1])
    assert len(starts) == 3 and starts[0] == 0.0 and abs(starts[1] - 0.4) < 1e-6
    assert starts[2] == 0.0  # the reference pads with the clip repeated from its start


def test_short_clip_is_tiled_not_zero_padded():
    clip = np.stack([np.arange(1, 5, dtype=np.float32)] * 2)
    tiled = frames.tile_to(clip, 10)
    assert tiled[0].tolist() == [1, 2, 3, 4, 1, 2, 3, 4, 1, 2]
    assert frames.tile_to(np.zeros((2, 0), np.float32), 5).shape == (2, 5)


def test_window_encoder_must_give_1000_frames():
    with pytest.raises(ValueError, match="expected 1000"):
        frames.encode_windowed(np.zeros((2, SR), np.float32), lambda w: np.zeros(999))


def test_peaks_above_0_8_are_scaled_down_once_for_the_whole_clip():
    loud = np.array([[0.1, -1.6], [0.4, 0.2]], np.float32)
    out, gain = frames.peak_normalise(loud)
    assert gain == pytest.approx(0.5)
    assert np.max(np.abs(out)) == pytest.approx(0.8)
    assert out[1, 0] == pytest.approx(0.2)  # one gain for all channels
    quiet = np.array([[0.5, -0.8]], np.float32)
    same, gain = frames.peak_normalise(quiet)
    assert gain == 1.0 and same is quiet
    seen = []
    frames.encode_windowed(loud * 10, lambda w: (seen.append(np.max(np.abs(w))), np.zeros(1000))[1])
    assert seen[0] == pytest.approx(0.8)


def test_songs_are_capped_at_360_s():
    audio = np.zeros((2, 400 * 100), np.float32)
    assert frames.cap_audio(audio, 100).shape[-1] == 360 * 100
    assert frames.cap_audio(audio[:, :50], 100).shape[-1] == 50
    fitted = frames.fit_streams({"mixed": np.zeros((1, 361 * SR), np.float32),
                                 "vocal": np.ones((2, 300 * SR), np.float32)})
    assert fitted["mixed"].shape == (2, 360 * SR)  # mono duplicated, capped
    assert fitted["vocal"].shape == (2, 360 * SR) and fitted["vocal"][0, -1] == 0.0  # stem padded to the mix


@pytest.mark.parametrize("duration, window", [(200.0, (20.0, 30.0)), (30.0, (20.0, 30.0)),
                                               (29.9, (0.0, 10.0)), (12.0, (0.0, 10.0)), (6.5, (0.0, 6.5))])
def test_prompt_window(duration, window):
    assert frames.prompt_window(duration) == window


def test_prompt_clip_gives_251_frames():
    audio = np.zeros((2, 45 * SR), np.float32)
    start, end = frames.prompt_window(45.0)
    assert frames.frames_for_samples(frames.clip(audio, start, end).shape[-1]) == 251


def test_smallest_int_dtype():
    assert frames.smallest_int_dtype(255) == np.uint8
    assert frames.smallest_int_dtype(256) == np.uint16
    assert frames.smallest_int_dtype(65535) == np.uint16
    assert frames.smallest_int_dtype(65536) == np.uint32
    # stored tokens also hold the pad id 16385
    assert frames.token_dtype(16384) == np.uint16
    assert frames.token_dtype(200) == np.uint16
    assert frames.token_dtype(100000) == np.uint32
    with pytest.raises(ValueError):
        frames.smallest_int_dtype(-1)


def test_resample_ids_decimates_75_hz_to_25_hz():
    native = np.arange(3000)
    out = frames.resample_ids(native, 1000)
    assert out.shape == (1000,) and np.array_equal(out, np.arange(0, 3000, 3))
    assert np.array_equal(frames.resample_ids(np.arange(10), 10), np.arange(10))
    assert frames.resample_ids(np.array([[1, 2]]), 4).tolist() == [[1, 1, 2, 2]]
