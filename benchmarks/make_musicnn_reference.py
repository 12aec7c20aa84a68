"""Make ``tests/data/musicnn_reference.npz``: TensorFlow's musicnn outputs for the test clips.

Run once, by hand; the fixture is committed and the tests never need TensorFlow.
TensorFlow lives in a throwaway venv, never in songshard's:

    python3.11 -m venv /tmp/tfvenv
    /tmp/tfvenv/bin/pip install tensorflow-cpu==2.12.1 'numpy<2' librosa==0.11.0 soundfile
    /tmp/tfvenv/bin/pip install --no-deps musicnn==0.1.0
    .venv/bin/python benchmarks/make_musicnn_reference.py --tf-python /tmp/tfvenv/bin/python

The script runs in two halves. In songshard's venv it synthesises the clips
(``make_clips`` of the test file), computes songshard's log-mel patches and
hands clips and patches to a second run of this same file under the throwaway
venv's python (``--tf-stage``). That half rebuilds the network from the
package's own ``models.py`` (its ``.meta`` graph does not import), restores the
shipped checkpoints with TensorFlow's Saver, runs the patches, computes the
package's own log-mel for one clip with its ``batch_data`` and reads a few
variables with TensorFlow's checkpoint reader. Feeding the same patches to both
sides keeps the model comparison apart from the feature comparison.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(ROOT, "tests", "data", "musicnn_reference.npz")
MODELS = ("MTT_musicnn", "MSD_musicnn")
HOP_FRAMES = 64  # overlapping patches: more windows per clip for the same fixture size
FEATURE_CLIP = "beat"  # its loudest bands exercise the float16 -> float32 widening
CHECKED_VARIABLES = ("dense_1/bias", "batch_normalization/moving_mean", "conv2d_5/kernel")


def clip_stats(audio: np.ndarray) -> np.ndarray:
    """A few numbers that pin a synthesised clip: length, rms, peak, sum of the first 1000 samples."""
    a = audio.astype(np.float64)
    return np.array([a.size, np.sqrt(np.mean(a * a)), np.abs(a).max(), a[:1000].sum()])


def songshard_stage(tf_python: str, out_path: str) -> None:
    """Clips and patches from songshard's code, TF outputs from the throwaway venv -> fixture file."""
    sys.path.insert(0, ROOT)
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from test_tagging_musicnn import make_clips
    from transforms.core.musicnn import features

    clips = make_clips()
    handoff = {}
    for name, audio in clips.items():
        handoff[f"clip/{name}"] = audio
        handoff[f"patches/{name}"] = features.patches(features.log_mel(audio), hop_frames=HOP_FRAMES)
    with tempfile.TemporaryDirectory() as tmp:
        inp, out = os.path.join(tmp, "in.npz"), os.path.join(tmp, "out.npz")
        np.savez(inp, **handoff)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")  # TensorFlow logs every unfed placeholder at INFO
        subprocess.run([tf_python, os.path.abspath(__file__), "--tf-stage", inp, out], check=True, env=env)
        with np.load(out) as tf_out:
            fixture = dict(tf_out)
    for name, audio in clips.items():
        fixture[f"stats/{name}"] = clip_stats(audio)
    fixture["hop_frames"] = np.array(HOP_FRAMES)
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    np.savez_compressed(out_path, **fixture)
    print(f"wrote {out_path}: {os.path.getsize(out_path)} bytes, {len(fixture)} arrays")


def tf_model_outputs(folder: str, model: str, patches: dict) -> dict:
    """Run the package's graph for ``model`` restored from ``folder`` -> {clip: (logits, scores)}."""
    import tensorflow as tf
    from musicnn import models

    tf.compat.v1.reset_default_graph()
    with tf.name_scope("model"):
        x = tf.compat.v1.placeholder(tf.float32, [None, 187, 96])
        is_training = tf.compat.v1.placeholder(tf.bool)
        logits = models.define_model(x, is_training, model, 50)[0]
        scores = tf.nn.sigmoid(logits)
    out = {}
    with tf.compat.v1.Session() as sess:
        # No try/except around restore: a failed restore must not yield random-weight references.
        tf.compat.v1.train.Saver().restore(sess, os.path.join(folder, model, ""))
        for clip, batch in patches.items():
            out[clip] = sess.run([logits, scores], feed_dict={x: batch, is_training: False})
    return out


def tf_stage(inp: str, out: str) -> None:
    """Under the throwaway venv: TF model outputs, the package's log-mel, TF checkpoint reads."""
    import importlib.util

    import soundfile as sf
    import tensorflow as tf

    tf.compat.v1.disable_eager_execution()
    from musicnn import extractor

    folder = importlib.util.find_spec("musicnn").submodule_search_locations[0]
    with np.load(inp) as data:
        handoff = dict(data)
    clips = {k.split("/", 1)[1]: v for k, v in handoff.items() if k.startswith("clip/")}
    patches = {k.split("/", 1)[1]: v for k, v in handoff.items() if k.startswith("patches/")}
    result = {}
    for model in MODELS:
        for clip, (logits, scores) in tf_model_outputs(folder, model, patches).items():
            result[f"{model}/{clip}/logits"] = logits.astype(np.float32)
            result[f"{model}/{clip}/scores"] = scores.astype(np.float32)
        reader = tf.compat.v1.train.NewCheckpointReader(os.path.join(folder, model, ""))
        result[f"ckpt/{model}/count"] = np.array(len(reader.get_variable_to_shape_map()))
        for name in CHECKED_VARIABLES:
            value = reader.get_tensor(name)
            result[f"ckpt/{model}/{name}"] = value[:, :4, :, :4] if value.ndim == 4 else value
    with tempfile.TemporaryDirectory() as tmp:
        wav = os.path.join(tmp, "clip.wav")
        sf.write(wav, clips[FEATURE_CLIP], 16000, subtype="FLOAT")
        batch, spectrogram = extractor.batch_data(wav, 187, 187)
    result[f"features/{FEATURE_CLIP}"] = spectrogram.astype(np.float32)
    result[f"features/{FEATURE_CLIP}/windows"] = np.array(batch.shape[0])
    np.savez(out, **result)


def main(argv=None) -> None:
    """Parse the command line and run the half this interpreter is for."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tf-python", default="/tmp/tfvenv/bin/python",
                        help="python of the throwaway venv with tensorflow-cpu and musicnn")
    parser.add_argument("--tf-stage", nargs=2, metavar=("IN", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--out", default=FIXTURE)
    args = parser.parse_args(argv)
    if args.tf_stage:
        tf_stage(*args.tf_stage)
    else:
        songshard_stage(args.tf_python, args.out)


if __name__ == "__main__":
    main()
