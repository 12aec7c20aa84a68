"""The embedded default codec: a k-means codebook over log-mel frames, learnt from the corpus.

Not a neural codec. Each 40 ms frame (25 Hz) of a mono mixdown becomes an
80-band log-mel vector; the codebook holds ``min(--tokens_codebook_size, frames / 8)``
centroids fitted with mini-batch k-means over frames sampled from the corpus
(``transforms.tokens.stage.FitCodebook``), and a frame's id is its nearest
centroid. The decoder turns ids back into mel centroids and then audio with
Griffin-Lim: rough, but it lets a person hear what the ids keep.

The codebook file (``.npz``: centroids, feature settings, sha256 of the centroids)
is reused when it exists, so that ids stay comparable across runs.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from typing import Optional, Tuple

import numpy as np

from schemas.records import Provenance
from transforms.core import workdir
from transforms.core.stage import BackendUnavailable
from transforms.tokens import frames
from transforms.tokens.backend import CodecBackend

VERSION = "logmel80-kmeans-1"
FEATURES = {"sample_rate": frames.SAMPLE_RATE, "n_fft": 4096, "win_length": 3840,
            "hop_length": frames.HOP, "n_mels": 80, "fmin": 0.0, "fmax": 20000.0, "floor_db": -100.0}
FRAMES_PER_CODE = 8  # at least this many fitted frames per centroid
NOTE = "k-means codebook over log-mel frames learnt by songshard fit-codec, not a neural codec"
# Shipped with songshard for a first run with no codebook to hand: fitted by `songshard fit-codec
# --input SAMPLE --output transforms/tokens/default_codebook.npz --frames_per_song 4000` on the
# synthetic sample corpus (`songshard sample-corpus SAMPLE`).
EMBEDDED_CODEBOOK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "default_codebook.npz")
EMBEDDED_NOTE = ("embedded default: k-means codebook fitted on songshard's synthetic sample corpus, not a "
                 "neural codec; fit one on your corpus with songshard fit-codec")


def _mel_basis() -> np.ndarray:
    import librosa

    f = FEATURES
    return librosa.filters.mel(sr=f["sample_rate"], n_fft=f["n_fft"], n_mels=f["n_mels"],
                               fmin=f["fmin"], fmax=f["fmax"]).astype(np.float32)


_BASIS: Optional[np.ndarray] = None


def logmel(audio: np.ndarray) -> np.ndarray:
    """[C, N] float32 at 48 kHz -> [frames_for_samples(N), 80] log-mel (dB) frames at 25 Hz."""
    global _BASIS
    import librosa

    f = FEATURES
    mono = np.asarray(audio, dtype=np.float32).reshape(-1, np.shape(audio)[-1]).mean(axis=0)
    spec = np.abs(librosa.stft(mono, n_fft=f["n_fft"], hop_length=f["hop_length"],
                               win_length=f["win_length"], center=True)) ** 2
    if _BASIS is None:
        _BASIS = _mel_basis()
    mel = _BASIS @ spec
    db = 10.0 * np.log10(np.maximum(mel, 10.0 ** (f["floor_db"] / 10.0)))
    return db.T[: frames.frames_for_samples(mono.shape[0])].astype(np.float32)


def sample_frames(feats: np.ndarray, n: int, seed: int) -> np.ndarray:
    """At most ``n`` rows of ``feats`` ([T, D]), drawn without replacement, in time order."""
    if feats.shape[0] <= n:
        return feats
    rng = np.random.default_rng(seed)
    return feats[np.sort(rng.choice(feats.shape[0], size=n, replace=False))]


def codebook_size_for(num_frames: int, max_size: int = frames.CODEBOOK_SIZE) -> int:
    """Centroids to fit: ``min(max_size, num_frames // 8)``, at least 1."""
    return int(max(1, min(max_size, num_frames // FRAMES_PER_CODE)))


def fit_codebook(feats: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
    """Centroids [size, D] (float32) from frames [T, D] with mini-batch k-means.

    Raises ValueError when there are fewer frames than centroids.
    """
    from sklearn.cluster import MiniBatchKMeans

    feats = np.asarray(feats, dtype=np.float32)
    if feats.ndim != 2 or feats.shape[0] < size:
        raise ValueError(f"cannot fit {size} centroids to {feats.shape[0] if feats.ndim else 0} frames")
    km = MiniBatchKMeans(n_clusters=size, random_state=seed, n_init=3,
                         batch_size=max(1024, 4 * size), max_iter=100)
    km.fit(feats)
    return km.cluster_centers_.astype(np.float32)


def assign(feats: np.ndarray, centroids: np.ndarray, chunk: int = 1000) -> np.ndarray:
    """Nearest centroid (squared Euclidean) of every frame: [T] int64."""
    feats = np.asarray(feats, dtype=np.float32)
    c_sq = np.sum(centroids.astype(np.float32) ** 2, axis=1)
    out = np.empty(feats.shape[0], dtype=np.int64)
    for i in range(0, feats.shape[0], chunk):
        block = feats[i:i + chunk]
        out[i:i + chunk] = np.argmin(c_sq[None, :] - 2.0 * block @ centroids.T, axis=1)
    return out


def centroids_sha256(centroids: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(centroids, dtype=np.float32).tobytes()).hexdigest()


def save_codebook(uri: str, centroids: np.ndarray, fitted_frames: int) -> str:
    """Write the codebook to ``uri`` (any Beam filesystem); returns the file's sha256."""
    buf = io.BytesIO()
    np.savez(buf, centroids=np.ascontiguousarray(centroids, dtype=np.float32),
             features=np.array(json.dumps(FEATURES, sort_keys=True)), version=np.array(VERSION),
             sha256=np.array(centroids_sha256(centroids)), fitted_frames=np.int64(fitted_frames))
    data = buf.getvalue()
    workdir.write_bytes(uri, data)
    return hashlib.sha256(data).hexdigest()


def load_codebook(uri: str) -> Tuple[np.ndarray, str, int]:
    """(centroids, sha256 of the file, frames it was fitted on) from ``uri``.

    Raises ValueError when the stored checksum does not match the centroids or the
    feature settings differ from this version's (the ids would not be comparable).
    """
    data = workdir.read_bytes(uri)
    with np.load(io.BytesIO(data)) as z:
        centroids = z["centroids"].astype(np.float32)
        stored = str(z["sha256"])
        features = json.loads(str(z["features"]))
        fitted = int(z["fitted_frames"])
    if centroids_sha256(centroids) != stored:
        raise ValueError(f"codebook {uri} is corrupt: its centroids do not match the stored sha256")
    if features != FEATURES:
        raise ValueError(f"codebook {uri} was fitted on other features ({features}); refit it")
    return centroids, hashlib.sha256(data).hexdigest(), fitted


def decode_ids(ids: np.ndarray, centroids: np.ndarray, n_iter: int = 32) -> np.ndarray:
    """ids [T] -> mono audio [N] at 48 kHz: mel centroids, a pseudo-inverse of the mel filters
    back to a linear power spectrogram, then Griffin-Lim phases.

    (librosa's ``mel_to_audio`` solves the inversion with scipy's L-BFGS-B, which
    crashed the interpreter here; the pseudo-inverse is a plain least-squares fit.)
    """
    import librosa

    global _BASIS
    f = FEATURES
    if _BASIS is None:
        _BASIS = _mel_basis()
    power_mel = 10.0 ** (centroids[np.asarray(ids, dtype=np.int64)].T / 10.0)
    power = np.maximum(np.linalg.pinv(_BASIS) @ power_mel, 0.0)
    return librosa.griffinlim(np.sqrt(power), n_iter=n_iter, hop_length=f["hop_length"],
                              win_length=f["win_length"], n_fft=f["n_fft"], center=True,
                              random_state=0).astype(np.float32)


class KMeansCodec(CodecBackend):
    """Params: ``weights`` (codebook .npz, read only), ``codebook_size`` (for fitting: at most this many codes)."""

    name = "kmeans"

    def __init__(self, params):
        super().__init__(params)
        self.path = self.params.get("weights") or ""
        self.max_size = int(self.params.get("codebook_size") or frames.CODEBOOK_SIZE)
        self.centroids: Optional[np.ndarray] = None
        self.sha256 = ""
        self.loaded_from = ""

    def check(self) -> None:
        if not 1 <= self.max_size <= frames.CODEBOOK_SIZE:
            raise BackendUnavailable(f"--tokens_codebook_size must be 1..{frames.CODEBOOK_SIZE}, got {self.max_size}")
        if self.path and workdir.exists(self.path):
            try:
                self.use_codebook(self.path)
            except Exception as exc:  # noqa: BLE001 - any unreadable file is reported the same way
                raise BackendUnavailable(
                    f"kmeans codebook {self.path} cannot be used ({exc}); fit a new one with songshard fit-codec") from exc

    def load(self) -> None:
        if self.path and workdir.exists(self.path):
            self.use_codebook(self.path)

    def use_codebook(self, uri: str) -> None:
        """Load the codebook at ``uri`` unless it is the one already loaded."""
        if self.centroids is not None and self.loaded_from == uri:
            return
        self.centroids, self.sha256, _ = load_codebook(uri)
        self.loaded_from = uri

    def _need(self) -> np.ndarray:
        if self.centroids is None:
            raise BackendUnavailable(
                f"no kmeans codebook at {self.path or '(no --tokens_weights)'}: fit one with songshard fit-codec")
        return self.centroids

    @property
    def codebook_size(self) -> int:
        return int(self._need().shape[0]) if self.centroids is not None else self.max_size

    def encode_window(self, window: np.ndarray) -> np.ndarray:
        return assign(logmel(window)[: frames.WINDOW_FRAMES], self._need())

    def decode(self, ids: np.ndarray):
        mono = decode_ids(ids, self._need())
        return np.stack([mono, mono]), frames.SAMPLE_RATE

    def info(self) -> dict:
        return {**super().info(), "features": "log-mel 80 bands, 25 Hz", "version": VERSION}

    def provenance(self) -> Provenance:
        return Provenance(backend=self.name, version=VERSION, weights=self.loaded_from or self.path,
                          weights_sha256=self.sha256, licence="songshard (fitted on audio it was given)",
                          note=EMBEDDED_NOTE if self.loaded_from == EMBEDDED_CODEBOOK else NOTE)
