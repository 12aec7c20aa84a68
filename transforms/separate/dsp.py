"""``--separate dsp``: the embedded, weight-free vocal / accompaniment separator.

Signal processing only, no learned weights. Per chunk of the song, on the STFT of
the mid channel, the vocal's share of each time-frequency bin is scored from four
cues; three are fused as summed log-odds, the band prior scales the result, and
the soft mask is applied to both channels:

* harmonic, not percussive: median-filter HPSS (Fitzgerald 2010);
* not repeating: REPET-SIM (Rafii & Pardo 2012), a nearest-neighbour median over
  frames that sound alike at least ``MIN_LAG`` seconds away models the repeating
  accompaniment;
* centre-panned: bins where the side channel is strong relative to the mid are
  accompaniment;
* in the voice's band: nothing below ~90 Hz, less above ~8 kHz.

The accompaniment is the mix minus the vocals, so the two always sum to the mix.
"""

from __future__ import annotations

import numpy as np

from schemas.records import Provenance
from transforms.core.facts import CODEC_RATE
from transforms.separate.backend import SeparatorBackend

N_FFT = 4096
HOP = 1024
MIN_LAG = 2.0  # seconds: REPET neighbours are at least this far apart (a held note is not a repeat)
NEIGHBOURS = 12
CUE_WEIGHTS = (1.0, 0.7, 0.5)  # harmonic, non-repeating, centre-panned (log-odds weights)
EPS = 1e-8


def band_prior(freqs: np.ndarray, low: float = 90.0, low_full: float = 160.0,
               high: float = 8000.0, high_floor: float = 0.3) -> np.ndarray:
    """Weight in [0, 1] per frequency: 0 below ``low``, 1 from ``low_full`` to ``high``, then decaying."""
    w = np.clip((freqs - low) / (low_full - low), 0.0, 1.0)
    top = freqs > high
    w[top] = np.maximum(high_floor, high / freqs[top])
    return w


def centre_weight(mid: np.ndarray, side: np.ndarray) -> np.ndarray:
    """1 where a bin is all mid (centre-panned), 0 where the side channel is as loud as the mid."""
    return np.clip(1.0 - np.abs(side) / (np.abs(mid) + EPS), 0.0, 1.0)


def repeating_part(mag: np.ndarray, sample_rate: int, hop: int = HOP,
                   neighbours: int = NEIGHBOURS, min_lag: float = MIN_LAG) -> np.ndarray:
    """REPET-SIM's repeating background: per frame, the median of the most similar distant frames.

    ``mag`` is a magnitude spectrogram [F, T]; the result is <= ``mag`` bin by bin.
    Frames are compared on a log-compressed 64-band summary (cosine similarity).
    """
    import librosa

    n_frames = mag.shape[1]
    width = max(1, int(round(min_lag * sample_rate / hop)))
    idx = np.arange(n_frames)
    k = min(neighbours, n_frames - 2 * width + 1)
    if k < 2:  # too short to find repeats: nothing is explained as repeating
        return np.zeros_like(mag)
    n_fft = 2 * (mag.shape[0] - 1)
    mel = librosa.feature.melspectrogram(S=mag ** 2, sr=sample_rate, n_fft=n_fft, n_mels=64)
    feat = np.log1p(mel / (mel.max() + EPS) * 1e4) + 1e-3
    feat /= np.linalg.norm(feat, axis=0, keepdims=True)
    sim = feat.T @ feat
    sim[np.abs(idx[:, None] - idx[None, :]) < width] = -np.inf
    nbrs = np.argpartition(-sim, k - 1, axis=0)[:k]  # [k, T]: the k most similar distant frames
    rep = np.empty_like(mag)
    for s in range(0, n_frames, 256):  # column blocks bound the [F, k, block] gather
        rep[:, s:s + 256] = np.median(mag[:, nbrs[:, s:s + 256]], axis=1)
    return np.minimum(mag, rep)


def log_odds(p: np.ndarray) -> np.ndarray:
    """log(p / (1 - p)) with p clipped to [0.02, 0.98], so that no single cue is certain."""
    p = np.clip(p, 0.02, 0.98)
    return np.log(p / (1.0 - p))


def vocal_mask(left: np.ndarray, right: np.ndarray, sample_rate: int, n_fft: int = N_FFT,
               hop: int = HOP, weights: tuple = CUE_WEIGHTS) -> np.ndarray:
    """Soft vocal mask [F, T] in [0, 1] from the STFTs of the two channels.

    Each cue gives a probability-like share per bin (harmonic, non-repeating,
    centre-panned); their log-odds are added with ``weights`` (naive-Bayes style
    fusion, so that one confident cue can outvote a weak one) and the band prior
    scales the result.
    """
    import librosa

    mid, side = 0.5 * (left + right), 0.5 * (left - right)
    mag = np.abs(mid)
    harm, _ = librosa.decompose.hpss(mag, kernel_size=(17, 31), power=2.0, mask=True)
    rep = repeating_part(mag, sample_rate, hop)
    fg = mag - rep
    non_rep = fg ** 2 / (fg ** 2 + rep ** 2 + EPS)
    w_harm, w_rep, w_centre = weights
    z = w_harm * log_odds(harm) + w_rep * log_odds(non_rep) + w_centre * log_odds(centre_weight(mid, side))
    freqs = librosa.fft_frequencies(sr=sample_rate, n_fft=n_fft)
    return (1.0 / (1.0 + np.exp(-z))) * band_prior(freqs)[:, None]


def separate_chunk(chunk: np.ndarray, sample_rate: int) -> np.ndarray:
    """[C, L] mix -> [2, C, L] (vocals, accompaniment); accompaniment = mix - vocals."""
    import librosa

    chunk = np.asarray(chunk, dtype=np.float32)
    if not np.any(chunk):
        return np.zeros((2,) + chunk.shape, dtype=np.float32)
    spec = librosa.stft(chunk, n_fft=N_FFT, hop_length=HOP)  # [C, F, T]
    left, right = (spec[0], spec[1]) if spec.shape[0] > 1 else (spec[0], spec[0])
    mask = vocal_mask(left, right, sample_rate)
    vocals = librosa.istft(spec * mask, hop_length=HOP, n_fft=N_FFT, length=chunk.shape[-1])
    vocals = vocals.astype(np.float32)
    return np.stack([vocals, chunk - vocals])


class DspSeparator(SeparatorBackend):
    """Weight-free vocal / accompaniment separation (HPSS + REPET-SIM + panning + band cues)."""

    name = "dsp"
    stems = ("vocals", "accompaniment")
    sample_rate = CODEC_RATE
    CHUNK_SECONDS = 24.0
    FADE_SECONDS = 4.0

    def __init__(self, params):
        super().__init__(params)
        self.chunk_length = int(self.CHUNK_SECONDS * self.sample_rate)
        self.fade = int(self.FADE_SECONDS * self.sample_rate)
        self.hop = self.chunk_length - self.fade

    def process(self, chunks: np.ndarray) -> np.ndarray:
        return np.stack([separate_chunk(c, self.sample_rate) for c in chunks])

    def provenance(self) -> Provenance:
        import librosa

        return Provenance(
            backend=self.name, version=f"librosa {librosa.__version__}", licence="songshard's own code",
            note="embedded default: signal processing (HPSS + REPET-SIM + mid/side + band prior, "
                 "soft masks), no learned weights; a rough vocal / accompaniment split")
