"""``songshard fit-codec``: the codebook is fitted by a job of its own, and the main job reads it."""

from __future__ import annotations

import soundfile as sf

from conftest import synth_mix
from pipeline.cli import main
from pipeline.fit_codec import spread
from transforms.tokens.kmeans import load_codebook


def test_spread_picks_evenly_and_deterministically():
    uris = [f"s{i:03d}" for i in range(10)]
    assert spread(uris, 4) == ["s000", "s002", "s005", "s007"]
    assert spread(uris, 20) == uris and spread(uris, 0) == uris


def test_fit_codec_command_writes_a_codebook_the_tokens_stage_accepts(tmp_path, capsys):
    songs = tmp_path / "songs"
    songs.mkdir()
    for i in range(3):
        sf.write(songs / f"s{i}.wav", synth_mix(8.0, 100 + 10 * i, seed=i)[0].T, 48000)
    (songs / "broken.mp3").write_bytes(b"not audio" * 50)  # skipped, the fit goes on
    codebook = tmp_path / "codec" / "codebook.npz"
    argv = ["fit-codec", "--input", str(songs), "--output", str(codebook), "--separate", "dsp",
            "--tokens_codebook_size", "32", "--frames_per_song", "300"]
    assert main(argv) == 0
    centroids, sha, fitted = load_codebook(str(codebook))
    assert centroids.shape == (32, 80) and fitted == 900 and len(sha) == 64
    assert "wrote" in capsys.readouterr().out
    # a second call keeps the file (no refit), and a folder without songs is a clear error
    before = codebook.read_bytes()
    assert main(argv) == 0 and codebook.read_bytes() == before
    (tmp_path / "empty").mkdir()
    assert main(["fit-codec", "--input", str(tmp_path / "empty"), "--output", str(tmp_path / "x.npz")]) == 2
