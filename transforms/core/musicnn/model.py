"""The musicnn tagging network (MTT_musicnn / MSD_musicnn) in PyTorch, for inference only.

Architecture (musicnn 0.1.0, ISC licence, Music Technology Group, UPF), input a
batch of log-mel patches (batch, 187 frames, 96 bands):

- front end: batch norm of the input, then five conv blocks, each conv + ReLU +
  batch norm + max over frequency: two timbral convs (7 x 38 and 7 x 67, 204
  filters, time padded by 3) and three temporal convs (128/64/32 x 1, 51
  filters, TensorFlow "same" padding: the odd extra frame goes after);
  concatenated to 561 channels per frame;
- mid end: three 1-D convs over time (kernel 7, 64 filters, padded by 3), each
  conv + ReLU + batch norm, the second and third residual; the front-end output
  and the three mid-end outputs are concatenated (753 channels);
- back end: max and mean over time, interleaved per channel (max, mean) as
  TensorFlow's concat + flatten lays them out, batch norm, dense 200 + ReLU,
  batch norm, dense to the 50 tags (logits; sigmoid gives the tag scores).

Batch norm uses the moving statistics with TensorFlow's default epsilon 1e-3.
The network is a dict of tensors plus pure functions (no nn.Module) so that
torch is imported only when a model is built. ``params_from_checkpoint`` maps
the checkpoint's variable names; ``random_params`` builds the same shapes with
random values for tests that must not depend on the shipped weights.
"""

from __future__ import annotations

from typing import Dict

import numpy as np

BN_EPS = 1e-3
N_MELS = 96
TIMBRAL = (("conv2d", "batch_normalization_1", 38), ("conv2d_1", "batch_normalization_2", 67))
TEMPORAL = (("conv2d_2", "batch_normalization_3", 128), ("conv2d_3", "batch_normalization_4", 64),
            ("conv2d_4", "batch_normalization_5", 32))
MIDEND = (("conv2d_5", "batch_normalization_6"), ("conv2d_6", "batch_normalization_7"),
          ("conv2d_7", "batch_normalization_8"))


def bn_affine(weights: Dict[str, np.ndarray], name: str) -> np.ndarray:
    """Inference batch norm ``name`` as (2, C) float32: row 0 the scale, row 1 the shift.

    Raises ``KeyError`` when the checkpoint lacks one of the four variables.
    """
    gamma = weights[f"{name}/gamma"].astype(np.float64)
    beta = weights[f"{name}/beta"].astype(np.float64)
    mean = weights[f"{name}/moving_mean"].astype(np.float64)
    var = weights[f"{name}/moving_variance"].astype(np.float64)
    scale = gamma / np.sqrt(var + BN_EPS)
    return np.stack([scale, beta - mean * scale]).astype(np.float32)


def params_from_checkpoint(weights: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Checkpoint variables {TF name: array} -> songshard's parameter dict of numpy arrays.

    Conv kernels go from TF's (h, w, in, out) to torch's (out, in, h, w) or, for
    the mid end, (out, in, k); dense kernels are transposed. Optimiser slots are
    ignored. Raises ``KeyError`` for a missing variable.
    """
    p: Dict[str, np.ndarray] = {"bn_in": bn_affine(weights, "batch_normalization")}
    for i, (conv, bn, _) in enumerate(TIMBRAL + TEMPORAL):
        p[f"front{i}.w"] = weights[f"{conv}/kernel"].transpose(3, 2, 0, 1)
        p[f"front{i}.b"] = weights[f"{conv}/bias"]
        p[f"front{i}.bn"] = bn_affine(weights, bn)
    for i, (conv, bn) in enumerate(MIDEND):
        p[f"mid{i}.w"] = weights[f"{conv}/kernel"][:, :, 0, :].transpose(2, 1, 0)
        p[f"mid{i}.b"] = weights[f"{conv}/bias"]
        p[f"mid{i}.bn"] = bn_affine(weights, bn)
    p["pool.bn"] = bn_affine(weights, "batch_normalization_9")
    p["dense.w"] = weights["dense/kernel"].T
    p["dense.b"] = weights["dense/bias"]
    p["dense.bn"] = bn_affine(weights, "batch_normalization_10")
    p["out.w"] = weights["dense_1/kernel"].T
    p["out.b"] = weights["dense_1/bias"]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in p.items()}


def random_params(seed: int = 0, n_tags: int = 50, midend: int = 64, dense: int = 200) -> Dict[str, np.ndarray]:
    """Parameters of the real architecture with random values (for tests without weights)."""
    rng = np.random.default_rng(seed)
    shapes = {"bn_in": (2, 1)}
    for i, (_, _, k) in enumerate(TIMBRAL):
        shapes.update({f"front{i}.w": (204, 1, 7, k), f"front{i}.b": (204,), f"front{i}.bn": (2, 204)})
    for i, (_, _, k) in enumerate(TEMPORAL, start=len(TIMBRAL)):
        shapes.update({f"front{i}.w": (51, 1, k, 1), f"front{i}.b": (51,), f"front{i}.bn": (2, 51)})
    for i, c_in in enumerate((561, midend, midend)):
        shapes.update({f"mid{i}.w": (midend, c_in, 7), f"mid{i}.b": (midend,), f"mid{i}.bn": (2, midend)})
    pooled = 2 * (561 + 3 * midend)
    shapes.update({"pool.bn": (2, pooled), "dense.w": (dense, pooled), "dense.b": (dense,),
                   "dense.bn": (2, dense), "out.w": (n_tags, dense), "out.b": (n_tags,)})
    params = {}
    for name, shape in shapes.items():
        fan_in = int(np.prod(shape[1:])) if name.endswith(".w") else 1
        params[name] = (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32)
        if name.endswith("bn"):
            params[name][0] = 1.0 + 0.1 * params[name][0]
    return params


def channel_bounds(params: Dict[str, np.ndarray], i: int, max_logmel: float) -> np.ndarray:
    """Range of front-end block ``i``'s pooled output over every input with log-mel in [0, max_logmel].

    Returns (2, C): rows low and high. Interval arithmetic: the normalised input
    (zero padding included) lies in [lo, hi], so each conv output lies in
    [bias + sum(w+) lo + sum(w-) hi, bias + sum(w+) hi + sum(w-) lo]; ReLU and
    the per-channel affine map that interval monotonically.
    """
    s0, b0 = params["bn_in"][0, 0], params["bn_in"][1, 0]
    lo, hi = sorted((b0, s0 * max_logmel + b0))
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    w = params[f"front{i}.w"].reshape(len(params[f"front{i}.w"]), -1).astype(np.float64)
    pos, neg = np.clip(w, 0, None).sum(1), np.clip(w, None, 0).sum(1)
    bias = params[f"front{i}.b"].astype(np.float64)
    up = np.maximum(bias + pos * hi + neg * lo, 0)
    down = np.maximum(bias + pos * lo + neg * hi, 0)
    scale, shift = params[f"front{i}.bn"].astype(np.float64)
    ends = np.stack([scale * down + shift, scale * up + shift])
    return np.stack([ends.min(0), ends.max(0)])


def prune_constant_channels(params: Dict[str, np.ndarray], max_logmel: float = 10.0,
                            tol: float = 1e-6) -> Dict[str, np.ndarray]:
    """Drop front-end channels whose output cannot vary by more than ``tol``; returns new params.

    Most of the shipped front-end filters are dead (ReLU never fires: weight
    decay drove their weights to zero and their bias negative); their output is
    exactly the batch-norm shift. A few more vary by under ``tol`` over every
    admissible input. Such channels become constants (the middle of their
    range, so the error is at most ``tol / 2``) and are not convolved, which
    removes about 1/3 of MTT_musicnn's front-end work and 3/4 of MSD_musicnn's.
    Valid only for patches with log-mel in [0, ``max_logmel``] (10 is mel power
    1e6, beyond any audio within [-1, 1]): callers check and fall back.
    """
    out = dict(params)
    out["max_logmel"] = np.array(max_logmel, dtype=np.float32)
    for i in range(len(TIMBRAL) + len(TEMPORAL)):
        low, high = channel_bounds(params, i, max_logmel)
        live = np.flatnonzero(high - low >= tol)
        out[f"front{i}.fill"] = ((low + high) / 2).astype(np.float32)
        out[f"front{i}.live"] = live.astype(np.int64)
        for key in ("w", "b"):
            out[f"front{i}.{key}"] = np.ascontiguousarray(params[f"front{i}.{key}"][live])
        out[f"front{i}.bn"] = np.ascontiguousarray(params[f"front{i}.bn"][:, live])
    return out


def to_torch(params: Dict[str, np.ndarray]) -> Dict[str, "object"]:
    """Numpy parameter dict -> dict of float32 torch tensors (imports torch)."""
    import torch

    return {k: torch.from_numpy(np.array(v, dtype=np.int64 if k.endswith(".live") else np.float32))
            for k, v in params.items()}


def _affine(x, bn, dim: int):
    """Apply a (2, C) scale/shift along tensor dimension ``dim``."""
    shape = [1] * x.dim()
    shape[dim] = -1
    return x * bn[0].view(shape) + bn[1].view(shape)


def pool_block(y, bn):
    """Conv output (B, C, T, F) -> ReLU, batch norm, max over frequency -> (B, C, T).

    Pooling first is exact and saves two passes over the largest tensor: ReLU
    is monotone, and the per-channel affine is monotone increasing where its
    scale is >= 0 (take the max) and decreasing where it is < 0 (take the min).
    """
    import torch

    low, high = torch.aminmax(y, dim=3)
    scale = bn[0].view(1, -1, 1)
    picked = torch.where(scale >= 0, high, low).clamp_min(0)
    return picked * scale + bn[1].view(1, -1, 1)


def with_constants(p: Dict, i: int, pooled):
    """Pooled live channels (B, live, T) -> all channels of block ``i``, constants where pruned."""
    if f"front{i}.live" not in p:
        return pooled
    fill = p[f"front{i}.fill"]
    out = fill.view(1, -1, 1).expand(pooled.shape[0], -1, pooled.shape[2]).clone()
    out[:, p[f"front{i}.live"]] = pooled
    return out


def frontend(p: Dict, x):
    """Patches (B, T, 96) -> front-end features (B, 561, T): timbral then temporal channels."""
    import torch
    import torch.nn.functional as F

    x = (x * p["bn_in"][0, 0] + p["bn_in"][1, 0])[:, None]  # (B, 1, T, F); one channel: a scalar affine
    outs = []
    for i in range(len(TIMBRAL)):
        y = F.conv2d(F.pad(x, (0, 0, 3, 3)), p[f"front{i}.w"], p[f"front{i}.b"])
        outs.append(with_constants(p, i, pool_block(y, p[f"front{i}.bn"])))
    for i, (_, _, k) in enumerate(TEMPORAL, start=len(TIMBRAL)):
        # TF "same" padding puts the odd extra frame of an even kernel after the signal.
        y = F.conv2d(F.pad(x, (0, 0, (k - 1) // 2, k // 2)), p[f"front{i}.w"], p[f"front{i}.b"])
        outs.append(with_constants(p, i, pool_block(y, p[f"front{i}.bn"])))
    return torch.cat(outs, dim=1)


def midend(p: Dict, front):
    """Front-end features (B, 561, T) -> dense mid-end stack (B, 561 + 3 * 64, T)."""
    import torch
    import torch.nn.functional as F

    outs, h = [front], front
    for i in range(len(MIDEND)):
        y = _affine(F.relu(F.conv1d(h, p[f"mid{i}.w"], p[f"mid{i}.b"], padding=3)), p[f"mid{i}.bn"], 1)
        h = y if i == 0 else y + h  # the second and third layers are residual
        outs.append(h)
    return torch.cat(outs, dim=1)


def backend(p: Dict, features):
    """Mid-end stack (B, C, T) -> tag logits (B, n_tags)."""
    import torch
    import torch.nn.functional as F

    pooled = torch.stack([features.amax(dim=2), features.mean(dim=2)], dim=2).flatten(1)
    h = _affine(pooled, p["pool.bn"], 1)
    h = _affine(F.relu(F.linear(h, p["dense.w"], p["dense.b"])), p["dense.bn"], 1)
    return F.linear(h, p["out.w"], p["out.b"])


def logits(p: Dict, patches):
    """Log-mel patches (B, T, 96) float32 tensor -> logits (B, n_tags). Any T >= 1 works."""
    return backend(p, midend(p, frontend(p, patches)))


def base_rates(weights: Dict[str, np.ndarray]) -> np.ndarray:
    """Each tag's score for a clip whose penultimate features are the training average.

    Batch norm makes the penultimate layer's mean over the training data its
    ``beta``, so ``sigmoid(beta @ W + b)`` is the score of an average training
    clip: a base rate read from the checkpoint (``weights`` are the raw
    variables). It is below the true tag frequency (the sigmoid of a mean is
    not the mean of the sigmoid) but higher for common tags than for rare
    ones. Used to set tag thresholds relative to each tag's prior.
    """
    z = weights["batch_normalization_10/beta"].astype(np.float64) @ weights["dense_1/kernel"].astype(np.float64)
    return 1.0 / (1.0 + np.exp(-(z + weights["dense_1/bias"])))
