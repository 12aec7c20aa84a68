#!/usr/bin/env bash
# Installs songshard and everything it uses into ./.venv on a fresh Debian machine:
# Debian's ffmpeg / sox / festival / espeak-ng (test audio) and chromium + chromium-driver (the report's
# browser test), the CPU build of torch, then the package.
# Re-running it is cheap: every step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES="ffmpeg sox festival espeak-ng chromium chromium-driver"
missing=""
for p in $APT_PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# The CPU wheel of torch first, so that nothing below pulls a CUDA build.
.venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/pip install -q "torch==2.13.0"
.venv/bin/pip install -q -e ".[test]"  # every optional backend's extra, so that the tests cover them all
# musicnn's weights (ISC) for the default tagger; its metadata pins TensorFlow and an old numpy, which
# songshard does not use, so without its dependencies.
.venv/bin/python -c "import importlib.util as u; assert u.find_spec('musicnn')" 2>/dev/null \
  || .venv/bin/pip install -q --no-deps "musicnn==0.1.0"
# BeatNet's beat / downbeat weights (CC BY 4.0) for --structure beatnet; the package pins an old numba
# and imports pyaudio and madmom at import time, none of which songshard uses.
.venv/bin/python -c "import importlib.util as u; assert u.find_spec('BeatNet')" 2>/dev/null \
  || .venv/bin/pip install -q --no-deps "BeatNet==1.1.3"
# tempocnn's tempo classifiers (AGPL-3.0 code and models), the structure stage's tempo evidence; its metadata
# pins TensorFlow, which songshard does not use (it reads the model files with h5py and runs them in torch).
.venv/bin/python -c "import importlib.util as u; assert u.find_spec('tempocnn')" 2>/dev/null \
  || .venv/bin/pip install -q --no-deps "tempocnn==0.0.8"
# librosa caches its numba code next to its sources; two processes compiling it at once can leave a
# cache that segfaults every later run (transforms/core/numba_cache.py). Fill it once, here.
.venv/bin/python -m transforms.core.numba_cache
echo "songshard installed in .venv"
