"""Pictures of what songshard made: one record, or a whole output folder.

* :func:`plot_record`: the mix waveform (when the sample holds audio) with
  sections, downbeats and words on a time axis, and the three token streams.
* :func:`plot_summary`: distributions over the index: durations, bpm, loudness,
  musicality tiers, splits.

Both write a PNG and return its path; matplotlib runs headless (Agg).
"""

from __future__ import annotations

import io
from collections import Counter

import numpy as np

SECTION_COLOURS = {"verse": "#4c72b0", "chorus": "#dd8452", "bridge": "#8172b3", "intro": "#55a868",
                   "outro": "#55a868", "inst": "#937860", "silence": "#cccccc"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _colour(tag: str) -> str:
    return SECTION_COLOURS.get(tag.split("-")[0], "#999999")


def plot_record(sample: dict, path: str) -> str:
    """PNG of one decoded sample (see ``inspect_shards.decode_sample``)."""
    plt = _plt()
    rec = sample["json"]
    labels = rec.get("labels", {})
    st = labels.get("structure", {})
    words = labels.get("lyrics", {}).get("words", [])
    duration = float(rec.get("duration", 0.0)) or 1.0
    fig, axes = plt.subplots(3, 1, figsize=(14, 7), sharex=True, gridspec_kw={"height_ratios": [2, 0.8, 1]})
    ax = axes[0]
    if "mix.flac" in sample:
        import soundfile as sf

        audio, sr = sf.read(io.BytesIO(sample["mix.flac"]), always_2d=True)
        mono = audio.mean(axis=1)
        step = max(1, len(mono) // 4000)
        env = np.abs(mono[: len(mono) // step * step]).reshape(-1, step).max(axis=1)
        t = np.arange(len(env)) * step / sr
        ax.fill_between(t, -env, env, color="#333333", linewidth=0)
    for s in st.get("sections", []):
        tag = s.get("tag") or s.get("label", "")
        ax.axvspan(s["start"], s["end"], color=_colour(tag), alpha=0.35)
        ax.text((s["start"] + s["end"]) / 2, 0.92, tag, ha="center", va="top", fontsize=8,
                transform=ax.get_xaxis_transform())
    for d in st.get("downbeats", []):
        ax.axvline(d, color="k", alpha=0.15, linewidth=0.6)
    for w in words[:600]:
        axes[1].text(w["start"], 0.98, w["text"], fontsize=6, rotation=90, va="top")
    axes[1].set_yticks([])
    axes[1].set_ylabel("words", fontsize=8)
    ax.set_xlim(0, duration)
    ax.set_yticks([])
    ax.set_title(f"{rec.get('key')}  {rec.get('artist') or ''} - {rec.get('title') or ''}   "
                 f"bpm {st.get('bpm')}   {rec.get('musicality', '')}\n{rec.get('descriptions', '')}", fontsize=9)
    tokens = sample.get("tokens.npy")
    if tokens is not None:
        axes[2].imshow(np.asarray(tokens, dtype=float), aspect="auto", interpolation="nearest", cmap="viridis",
                       extent=[0, tokens.shape[1] / 25.0, tokens.shape[0] - 0.5, -0.5])
        axes[2].set_yticks(range(tokens.shape[0]))
        axes[2].set_yticklabels(rec.get("tokens", {}).get("layout", ["mixed", "vocal", "accompaniment"]))
        axes[2].set_xlim(0, duration)
    axes[2].set_xlabel("seconds")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_summary(table, path: str) -> str:
    """PNG of distributions over an index table (pyarrow.Table of IndexRow)."""
    plt = _plt()
    rows = table.to_pylist()
    fig, axes = plt.subplots(2, 3, figsize=(13, 7))
    panels = [("duration", "duration (s)"), ("bpm", "bpm"), ("loudness_lufs", "loudness (LUFS)"),
              ("bandwidth_hz", "bandwidth (Hz)")]
    for ax, (col, title) in zip(axes.flat, panels):
        values = [r[col] for r in rows if r[col] is not None and r[col] == r[col]]
        if values:
            ax.hist(values, bins=min(30, max(5, len(values))), color="#4c72b0")
        ax.set_title(f"{title} (n={len(values)})", fontsize=9)
    for ax, col in zip(axes.flat[4:], ("musicality", "split")):
        counts = Counter(r[col] or "(none)" for r in rows)
        ax.bar(range(len(counts)), list(counts.values()), color="#dd8452")
        ax.set_xticks(range(len(counts)))
        ax.set_xticklabels([str(k).replace("Musicality-", "") for k in counts], rotation=30, fontsize=7)
        ax.set_title(col, fontsize=9)
    fig.suptitle(f"{len(rows)} samples", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
