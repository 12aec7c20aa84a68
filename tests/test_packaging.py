"""A built wheel holds every file the code reads, so non-editable installs (Dataflow's --setup_file) work."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("pipeline", "transforms", "schemas")


def _data_files():
    """Every non-Python file inside the packages (what the code reads at run time), relative to the root."""
    found = []
    for top in PACKAGES:
        for path in glob.glob(os.path.join(ROOT, top, "**", "*"), recursive=True):
            rel = os.path.relpath(path, ROOT)
            if os.path.isfile(path) and not rel.endswith((".py", ".pyc")) and "__pycache__" not in rel:
                found.append(rel.replace(os.sep, "/"))
    return sorted(found)


def test_wheel_holds_every_data_file(tmp_path):
    wanted = _data_files()
    assert "transforms/tags/vocabulary.json" in wanted
    # a clean copy of the source: an in-tree build/ left by an earlier build would hide missing files
    src = tmp_path / "src"
    top = {".git", "build", ".venv", "data", "out", "tests", "benchmarks", "docs"}

    def ignore(folder, names):
        here = top if os.path.samefile(folder, ROOT) else set()
        return [n for n in names if n in here or n == "__pycache__" or n.endswith(".egg-info")]

    shutil.copytree(ROOT, src, ignore=ignore)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), str(src)], check=True, capture_output=True, timeout=300)
    (wheel,) = glob.glob(str(tmp_path / "songshard-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [f for f in wanted if f not in names]
    assert not missing, f"the wheel lacks {missing}"
    assert "pipeline/cli.py" in names and "transforms/core/stage.py" in names
