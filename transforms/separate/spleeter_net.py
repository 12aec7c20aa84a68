"""The Spleeter 2-stem network in PyTorch: the U-Net, its weight mapping, and the masking maths.

Imports torch at module import: only :mod:`transforms.separate.spleeter`'s
loader imports this module, so naming the backend never pulls torch in.

The model (Spleeter, Deezer, MIT licence) works on 44.1 kHz stereo:

* STFT with a 4096-sample periodic Hann window and hop 1024; the network sees the
  magnitudes of the lowest ``BINS`` = 1024 bins (up to ~11 kHz) in patches of
  ``PATCH`` = 512 frames, laid out [batch, channel, frame, bin];
* one U-Net per stem: six 5x5 stride-2 convolutions (16..512 filters, each
  followed by batch norm and leaky ReLU 0.2; the skips carry the convolution
  outputs before batch norm), six 5x5 stride-2 transposed convolutions (ReLU,
  batch norm, dropout in the first three, inactive at inference), then a 4x4
  dilated convolution with a sigmoid: a mask that multiplies the input magnitudes;
* the stems' magnitude estimates become ratio masks (squared estimates over
  their sum), extended above bin 1024 (with zeros in the released model's
  configuration, or each frame's mean mask), and applied to the complex STFT.
"""

from __future__ import annotations

from typing import Dict, List, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from transforms.separate.spleeter import BINS, HOP, MASK_EXTENSIONS, N_FFT, PATCH

ENCODER = (16, 32, 64, 128, 256, 512)
SEPARATION_EXPONENT = 2.0
EPS = 1e-10
BN_EPS = 1e-3  # the value the model was trained with (Keras' default)
# The released weights carry running means of 0 and variances of 1 in every batch norm, so at
# inference each one is an affine map. That is what the model is run with: normalising by each
# patch's own statistics instead separated far worse (vocals SDR 4.0 against 7.8 dB on a sample song).


class _Down(nn.Module):
    """5x5 stride-2 convolution with TensorFlow's "same" padding (1 before, 2 after), BN, leaky ReLU."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size=5, stride=2)
        self.bn = nn.BatchNorm2d(cout, eps=BN_EPS)

    def forward(self, x: torch.Tensor):
        conv = self.conv(F.pad(x, (1, 2, 1, 2)))
        return conv, F.leaky_relu(self.bn(conv), 0.2)


class _Up(nn.Module):
    """5x5 stride-2 transposed convolution cropped to "same" size (drop 1 before, 2 after), ReLU, BN."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.deconv = nn.ConvTranspose2d(cin, cout, kernel_size=5, stride=2)
        self.bn = nn.BatchNorm2d(cout, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(F.relu(self.deconv(x)[:, :, 1:-2, 1:-2]))


class SpleeterUNet(nn.Module):
    """One stem's U-Net: magnitudes [B, 2, T, BINS] -> the stem's magnitude estimate, same shape.

    T and BINS must be multiples of 64 (six halvings). The last encoder level's
    batch norm is part of the released weights but feeds nothing (the decoder
    starts from the convolution output), so it is kept only to load them.
    """

    def __init__(self, channels: int = 2):
        super().__init__()
        sizes = (channels,) + ENCODER
        self.encoder = nn.ModuleList(_Down(sizes[i], sizes[i + 1]) for i in range(len(ENCODER)))
        ups, cin = [], ENCODER[-1]
        for cout in reversed((1,) + ENCODER[:-1]):  # 256, 128, 64, 32, 16, then 1 for the mask
            ups.append(_Up(cin, cout))
            cin = 2 * cout  # concatenated with the encoder's output of the same size
        self.decoder = nn.ModuleList(ups)
        self.mask = nn.Conv2d(1, channels, kernel_size=4, dilation=2, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips, h = [], x
        for down in self.encoder:
            conv, h = down(h)
            skips.append(conv)
        h = skips.pop()  # the decoder starts from the deepest convolution, before its BN
        for up in self.decoder:
            h = up(h)
            if skips:
                h = torch.cat([skips.pop(), h], dim=1)
        return torch.sigmoid(self.mask(h)) * x


def checkpoint_key_map(n_levels: int = len(ENCODER)) -> Dict[str, str]:
    """{key in the released numpy checkpoints: key in :class:`SpleeterUNet`'s state dict}."""
    mapping = {}
    bn = ("weight", "bias", "running_mean", "running_var")
    for j in range(1, n_levels + 1):
        for p in ("weight", "bias"):
            mapping[f"down{j}_conv.1.{p}"] = f"encoder.{j - 1}.conv.{p}"
            mapping[f"up{j}.0.{p}"] = f"decoder.{j - 1}.deconv.{p}"
        for p in bn:
            mapping[f"down{j}_act.0.{p}"] = f"encoder.{j - 1}.bn.{p}"
            mapping[f"up{j}.3.{p}"] = f"decoder.{j - 1}.bn.{p}"
    mapping.update({"up7.0.weight": "mask.weight", "up7.0.bias": "mask.bias"})
    return mapping


def load_numpy_state(net: SpleeterUNet, arrays: Dict[str, np.ndarray]) -> SpleeterUNet:
    """Copy a released checkpoint's arrays into ``net``; every key must map and every shape match.

    Raises ValueError naming unknown, missing or mis-shaped keys (BN's
    ``num_batches_tracked`` counters are the only entries the checkpoints lack).
    """
    mapping = checkpoint_key_map()
    state = net.state_dict()
    unknown = sorted(set(arrays) - set(mapping))
    wanted = {k for k in state if not k.endswith("num_batches_tracked")}
    missing = sorted(wanted - {mapping[k] for k in arrays if k in mapping})
    if unknown or missing:
        raise ValueError(f"checkpoint keys do not match the U-Net: unknown {unknown}, missing {missing}")
    new = {}
    for key, value in arrays.items():
        target = mapping[key]
        if tuple(value.shape) != tuple(state[target].shape):
            raise ValueError(f"{key} has shape {value.shape}, the U-Net's {target} has {tuple(state[target].shape)}")
        new[target] = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
    net.load_state_dict(new, strict=False)  # only num_batches_tracked is left as it was
    return net.eval()


def ratio_masks(estimates: Sequence[torch.Tensor], exponent: float = SEPARATION_EXPONENT,
                eps: float = EPS) -> List[torch.Tensor]:
    """Soft masks from the stems' magnitude estimates: (e_s^p + eps/S) / (sum_k e_k^p + eps).

    They sum to one in every bin (half each where every estimate is zero).
    """
    powered = [e ** exponent for e in estimates]
    total = sum(powered) + eps
    return [(p + eps / len(powered)) / total for p in powered]


def extend_mask(mask: torch.Tensor, n_bins: int, mode: str = "average") -> torch.Tensor:
    """[..., BINS] mask -> [..., n_bins]: bins above are zero ("zeros") or the frame's mean ("average")."""
    extra = n_bins - mask.shape[-1]
    if mode == "zeros":
        fill = mask.new_zeros(mask.shape[:-1] + (extra,))
    elif mode == "average":
        fill = mask.mean(dim=-1, keepdim=True).expand(mask.shape[:-1] + (extra,))
    else:
        raise ValueError(f"mask extension must be one of {MASK_EXTENSIONS}, got {mode!r}")
    return torch.cat([mask, fill], dim=-1)


def separate_patches(nets: Sequence[SpleeterUNet], audio: torch.Tensor, mask_extension: str = "average",
                     ) -> torch.Tensor:
    """[B, 2, L] waveforms at 44.1 kHz -> [B, S, 2, L] stem waveforms, one patch per item.

    L must give at most ``PATCH`` STFT frames (L <= (PATCH - 1) * HOP); shorter
    inputs are zero-padded to a full patch for the network. Runs without
    gradients on ``audio``'s device.
    """
    b, c, length = audio.shape
    window = torch.hann_window(N_FFT, periodic=True, device=audio.device, dtype=audio.dtype)
    with torch.no_grad():
        spec = torch.stft(audio.reshape(b * c, length), N_FFT, HOP, window=window, center=True,
                          pad_mode="constant", return_complex=True)
        spec = spec.reshape(b, c, spec.shape[-2], spec.shape[-1])  # [B, C, N_FFT/2+1, T]
        frames = spec.shape[-1]
        if frames > PATCH:
            raise ValueError(f"{length} samples make {frames} frames, more than a patch ({PATCH})")
        mag = spec[:, :, :BINS, :].abs().transpose(2, 3)  # [B, C, T, BINS]
        mag = F.pad(mag, (0, 0, 0, PATCH - frames))
        masks = ratio_masks([net(mag) for net in nets])
        out = []
        for mask in masks:
            full = extend_mask(mask[:, :, :frames, :], spec.shape[-2], mask_extension).transpose(2, 3)
            wav = torch.istft((spec * full).reshape(b * c, spec.shape[-2], frames), N_FFT, HOP,
                              window=window, center=True, length=length)
            out.append(wav.reshape(b, c, length))
    return torch.stack(out, dim=1)
