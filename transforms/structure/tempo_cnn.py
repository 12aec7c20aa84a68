"""Tempo-CNN: a global tempo distribution (30-285 bpm) from the networks the ``tempocnn`` package ships.

The PyPI package ``tempocnn`` 0.0.8 carries trained tempo classifiers as Keras
HDF5 files (``tempocnn/models/*.h5``; code and models AGPL-3.0, which allows
commercial use). songshard never imports the package (it pulls TensorFlow):
it finds the files with ``importlib.util.find_spec``, checks each file's sha256
against a pinned value, reads the weights with h5py (HDF5 holds arrays, nothing
that runs code) and runs the Keras functional graph stored in the file with
PyTorch (:class:`KerasGraph`: the layer types these models use).

Input, as the models were trained: mono audio at 11,025 Hz, a 40-band mel
magnitude spectrogram (20-5,000 Hz, FFT 1,024, hop 512), 256-frame windows
(11.9 s) every 128 frames. Each window gives a softmax over 256 classes, class
``k`` being ``30 + k`` bpm; a song's distribution is the mean over its windows
(and over the models asked for). :func:`support` is the mass near a tempo: the
evidence the metrical-level check (``transforms.structure.tempo``) weighs.
"""

from __future__ import annotations

import importlib.util
import json
import os
from typing import Dict, List, Optional, Sequence

import numpy as np

from transforms.core.stage import BackendUnavailable
from transforms.core.weights import file_sha256

PACKAGE = "tempocnn"
VERSION = "tempocnn 0.0.8"
LICENCE = "AGPL-3.0 (tempocnn code and models)"
RATE = 11025
N_FFT, HOP, N_MELS, FMIN, FMAX = 1024, 512, 40, 20.0, 5000.0
FRAMES, WINDOW_HOP = 256, 128
BPM0, CLASSES = 30, 256  # class k is BPM0 + k bpm
DEFAULT_TEMPO_MODELS = ("cnn", "deeptemp_k8")
# model -> (sha256 of the shipped file, input normalisation the package applies before it)
MODELS: Dict[str, tuple] = {
    "cnn": ("75144f8e7b32d1a59cb1ace868880f1c849656805ed43f6a0698caf22308c56b", "max"),
    "ismir2018": ("622751f2c5395028dee0554be8c9292081191b167135eac35de7ff160fdd8973", "max"),
    "fcn": ("ac1435c007eaf7c3d9439b074424d72882986455628ec0698b8d4b61142fb12d", "max"),
    "deeptemp_k8": ("65bd692fbb3699643d8567012887eb31f7d27be5f71f5bca60ad073dfed5ef8d", "std"),
    "deepsquare_k8": ("9cec7bb73156ff06ad503e203dea425d4dbbbf7029b3453ff2671d767a8d74a9", "std"),
    "shallowtemp_k6": ("aaf41acfd382af8770c8d9f014916d5f674a653944bc45c375eb2d20dec667b3", "std"),
}


def model_path(name: str, folder: Optional[str] = None) -> str:
    """The shipped file of model ``name`` (in ``folder``, else the installed package), without importing it.

    Raises KeyError for an unknown model, BackendUnavailable when the file is missing.
    """
    if name not in MODELS:
        raise KeyError(f"unknown tempo-CNN model {name!r}; choose from {sorted(MODELS)}")
    if folder is None:
        spec = importlib.util.find_spec(PACKAGE)
        if spec is None or not spec.submodule_search_locations:
            raise BackendUnavailable("the tempo-CNN evidence needs the weights of PyPI package tempocnn: "
                                     "`pip install --no-deps tempocnn==0.0.8` (songshard reads only its model "
                                     "files), or pass --structure_tempo_cnn none")
        folder = os.path.join(list(spec.submodule_search_locations)[0], "models")
    path = os.path.join(folder, f"{name}.h5")
    if not os.path.isfile(path):
        raise BackendUnavailable(f"tempo-CNN model {name}: no file at {path}; reinstall tempocnn==0.0.8")
    return path


class KerasGraph:
    """A Keras 2 functional model stored in an HDF5 file, run with torch (inference only).

    Layers: InputLayer, Conv2D (``same`` / ``valid``, strides, dilation), BatchNormalization,
    Average / MaxPooling2D, GlobalAveragePooling2D, Concatenate (channels), Flatten (in Keras's
    channels-last order), Dense, Activation, Dropout (identity). Tensors are NCHW inside; the
    model's channels-last input ``[n, 40, 256, 1]`` is taken as ``[n, 40, 256]``.
    """

    ACTIVATIONS = ("linear", "relu", "elu", "softmax")

    def __init__(self, path: str):
        import h5py
        import torch

        with h5py.File(path, "r") as f:
            config = json.loads(f.attrs["model_config"])["config"]
            group = f["model_weights"]
            self.weights = {name: {key.split("/")[-1].split(":")[0]: torch.from_numpy(np.asarray(ds, np.float32))
                                   for key, ds in _datasets(group[name])}
                            for name in group.keys()}
        self.layers = config["layers"]
        self.output = config["output_layers"][0][0]
        for layer in self.layers:
            kind, cfg = layer["class_name"], layer["config"]
            if kind not in ("InputLayer", "Conv2D", "BatchNormalization", "AveragePooling2D", "MaxPooling2D",
                            "GlobalAveragePooling2D", "Concatenate", "Flatten", "Dense", "Activation", "Dropout"):
                raise ValueError(f"{path}: layer type {kind} is not supported")
            if cfg.get("activation", "linear") not in self.ACTIVATIONS:
                raise ValueError(f"{path}: activation {cfg['activation']} is not supported")
            if cfg.get("data_format", "channels_last") != "channels_last":
                raise ValueError(f"{path}: only channels_last models are supported")

    def __call__(self, x):
        """``x``: torch tensor [n, 40, 256] -> output [n, 256] (the last layer's softmax)."""
        values = {}
        for layer in self.layers:
            inputs = [values[node[0]] for node in (layer["inbound_nodes"][0] if layer["inbound_nodes"] else [])]
            values[layer["name"]] = x[:, None] if layer["class_name"] == "InputLayer" else self._layer(layer, inputs)
        return values[self.output]

    def _layer(self, layer: dict, inputs: List):
        import torch
        import torch.nn.functional as F

        kind, cfg, w = layer["class_name"], layer["config"], self.weights.get(layer["name"], {})
        x = inputs[0]
        if kind == "Conv2D":
            kernel = w["kernel"].permute(3, 2, 0, 1)  # (kh, kw, in, out) -> (out, in, kh, kw)
            dilation = tuple(cfg.get("dilation_rate", (1, 1)))
            if cfg["padding"] == "same":  # TensorFlow pads the extra row / column after, not before
                pads = [(k - 1) * d for k, d in zip(kernel.shape[2:], dilation)]
                x = F.pad(x, (pads[1] // 2, pads[1] - pads[1] // 2, pads[0] // 2, pads[0] - pads[0] // 2))
            x = F.conv2d(x, kernel, w.get("bias"), stride=tuple(cfg["strides"]), dilation=dilation)
        elif kind == "BatchNormalization":
            shape = (1, -1, 1, 1) if x.dim() == 4 else (1, -1)
            scale = w.get("gamma", torch.ones_like(w["moving_mean"])) / torch.sqrt(w["moving_variance"] + cfg["epsilon"])
            shift = w.get("beta", torch.zeros_like(scale)) - w["moving_mean"] * scale
            x = x * scale.reshape(shape) + shift.reshape(shape)
        elif kind in ("AveragePooling2D", "MaxPooling2D"):
            pool = F.avg_pool2d if kind == "AveragePooling2D" else F.max_pool2d
            x = pool(x, tuple(cfg["pool_size"]), tuple(cfg["strides"]))
        elif kind == "GlobalAveragePooling2D":
            x = x.mean(dim=(2, 3))
        elif kind == "Concatenate":
            x = torch.cat(inputs, dim=1)
        elif kind == "Flatten":
            x = x.permute(0, 2, 3, 1).reshape(len(x), -1)
        elif kind == "Dense":
            x = x @ w["kernel"] + w["bias"] if "bias" in w else x @ w["kernel"]
        return _activate(x, cfg.get("activation", "linear"))


def _datasets(group, prefix: str = ""):
    """(path, dataset) of every dataset under an h5py group, sorted by path."""
    import h5py

    out = []
    for key in sorted(group.keys()):
        item = group[key]
        if isinstance(item, h5py.Dataset):
            out.append((f"{prefix}{key}", item))
        else:
            out.extend(_datasets(item, f"{prefix}{key}/"))
    return out


def _activate(x, name: str):
    import torch.nn.functional as F

    if name == "relu":
        return F.relu(x)
    if name == "elu":
        return F.elu(x)
    if name == "softmax":
        return F.softmax(x, dim=-1)
    return x


def features(y: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mono audio -> 40-band mel magnitudes [40, frames] at 11,025 Hz (the models' input)."""
    import librosa

    from transforms.core import audio as au

    y = au.resample(np.asarray(y, np.float32)[None], sample_rate, RATE)[0] if sample_rate != RATE else y
    return librosa.feature.melspectrogram(y=np.asarray(y, np.float32), sr=RATE, n_fft=N_FFT, hop_length=HOP,
                                          power=1, n_mels=N_MELS, fmin=FMIN, fmax=FMAX).astype(np.float32)


def windows(mel: np.ndarray) -> np.ndarray:
    """[40, frames] -> [n, 40, 256] windows every 128 frames; a song under 256 frames is zero-padded."""
    if mel.shape[1] < FRAMES:
        mel = np.pad(mel, ((0, 0), (0, FRAMES - mel.shape[1])))
    starts = range(0, (mel.shape[1] - FRAMES) // WINDOW_HOP * WINDOW_HOP + 1, WINDOW_HOP)
    return np.stack([mel[:, s:s + FRAMES] for s in starts])


def normalise(batch: np.ndarray, how: str) -> np.ndarray:
    """The package's input scaling over all of a song's windows: ``max`` (divide by the maximum) or ``std``
    (zero mean, unit variance, rounded through float16 as the package does)."""
    if how == "max":
        top = float(batch.max())
        return batch / top if top != 0 else batch
    data = batch.astype(np.float64)
    std = float(data.std())
    if std != 0.0:
        data = (data - data.mean()) / std
    return data.astype(np.float16).astype(np.float32)


def bpm_axis() -> np.ndarray:
    """The tempo (bpm) of each of the 256 classes."""
    return BPM0 + np.arange(CLASSES, dtype=float)


def support(distribution: np.ndarray, bpm: float, tolerance: float = 0.02) -> float:
    """Probability mass of the classes within +-``tolerance`` (relative) of ``bpm``."""
    return float(np.asarray(distribution)[np.abs(bpm_axis() / bpm - 1.0) <= tolerance].sum()) if bpm > 0 else 0.0


def peak_bpm(distribution: np.ndarray) -> float:
    """The most probable tempo, refined by a parabola through the peak class and its neighbours."""
    p = np.asarray(distribution, dtype=float)
    k = int(np.argmax(p))
    if 0 < k < len(p) - 1:
        denom = p[k - 1] - 2 * p[k] + p[k + 1]
        if denom < 0:
            return float(BPM0 + k + 0.5 * (p[k - 1] - p[k + 1]) / denom)
    return float(BPM0 + k)


class TempoCNN:
    """One or more shipped tempo networks; :meth:`distribution` of a song is the mean of theirs."""

    def __init__(self, names: Sequence[str] = DEFAULT_TEMPO_MODELS, folder: Optional[str] = None, verify: bool = True):
        self.names = tuple(names)
        if not self.names:
            raise ValueError("name at least one tempo-CNN model")
        self.paths = {name: model_path(name, folder) for name in self.names}
        if verify:
            for name, path in self.paths.items():
                digest = file_sha256(path)
                if digest != MODELS[name][0]:
                    raise ValueError(f"{path}: sha256 {digest} is not the pinned digest of tempo-CNN model {name}")
        self.graphs = {name: KerasGraph(path) for name, path in self.paths.items()}

    def distribution(self, y: np.ndarray, sample_rate: int, batch_size: int = 16) -> np.ndarray:
        """Mono audio -> the mean tempo distribution [256] over windows and models."""
        import torch

        batch = windows(features(y, sample_rate))
        out = np.zeros(CLASSES)
        with torch.inference_mode():
            for name, graph in self.graphs.items():
                x = normalise(batch, MODELS[name][1])
                probs = [graph(torch.from_numpy(x[i:i + batch_size])).numpy() for i in range(0, len(x), batch_size)]
                out += np.concatenate(probs).mean(axis=0)
        return out / len(self.graphs)
