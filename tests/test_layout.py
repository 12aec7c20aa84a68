"""The project's layout as an architecture: configuration resolved once, one name per stage, one way imports.

These are the promises of the README's "Layout" and "Adding a stage" sections,
checked on the code itself.
"""

from __future__ import annotations

import ast
import dataclasses
import glob
import os

import pytest
from apache_beam.io.filesystem import BeamIOError

from pipeline import finalize
from pipeline.config import resolve
from pipeline.graph import MODEL_STAGES, configurable_stages

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _argv(tmp_path, *extra, out="out", work=None):
    argv = ["--input", str(tmp_path), "--output", str(tmp_path / out)]
    return argv + (["--work_dir", str(tmp_path / work)] if work else []) + list(extra)


def test_same_flags_same_hash_wherever_the_run_lives(tmp_path):
    _, a = resolve(_argv(tmp_path, "--lyrics_gate_db", "25"))
    _, b = resolve(_argv(tmp_path, "--lyrics_gate_db", "25", out="elsewhere", work="scratch"))
    assert a.sha256 == b.sha256 and a.to_dict() == b.to_dict()
    assert "out" not in repr(a.to_dict()) and str(tmp_path) not in repr(a.to_dict())


@pytest.mark.parametrize("flag, value", [("--lyrics_gate_db", "20"), ("--separate", "demucs"),
                                         ("--quality_tiers", "0.9,0.8,0.6,0.4"), ("--decode_max_seconds", "200"),
                                         ("--filter_min_duration", "30"), ("--tokens_codebook_size", "512")])
def test_a_flag_that_changes_labels_changes_the_hash(tmp_path, flag, value):
    _, base = resolve(_argv(tmp_path))
    _, changed = resolve(_argv(tmp_path, flag, value))
    assert changed.sha256 != base.sha256


def test_stage_params_and_backend_params_are_split_and_frozen(tmp_path):
    _, config = resolve(_argv(tmp_path, "--lyrics_gate_db", "12", "--lyrics_language", "en"))
    lyrics = config.stage("lyrics")
    assert lyrics.backend == "faster-whisper"
    assert lyrics.params == {"gate_db": 12.0, "language": "en", "vad": "silero", "vad_threshold": 0.3,
                             "share_model": False, "table": ""}
    assert "share_model" not in lyrics.backend_params  # how the model is hosted is the stage's affair
    assert "gate_db" not in lyrics.backend_params and lyrics.backend_params["compute_type"] == "int8"
    with pytest.raises(dataclasses.FrozenInstanceError):
        lyrics.backend = "whisper"
    lyrics.params["gate_db"] = 0.0  # a copy: the config itself does not change
    assert lyrics.get("gate_db") == 12.0


def test_every_stage_has_one_name_for_flags_package_and_labels():
    for stage in configurable_stages():
        package = stage.__module__.split(".")[1]
        assert package == stage.stage, (stage, package)
    for stage in MODEL_STAGES:
        assert stage.fn_class.stage == stage.stage
        for target in stage.backends.values():
            assert target.startswith(f"transforms.{stage.stage}."), target


@pytest.mark.parametrize("flags, message", [
    (["--filter_min_musicality", "great"], "minimum musicality"),
    (["--quality_tiers", "1,2,3"], "thresholds"),
    (["--split_valid_fraction", "0.7", "--split_test_fraction", "0.5"], "split fractions"),
    (["--separate", "nope"], "unknown separate backend"),
])
def test_bad_values_stop_the_run_before_any_song_is_read(tmp_path, capsys, flags, message):
    from pipeline.cli import main

    (tmp_path / "song.wav").write_bytes(b"never read")
    assert main(["run", *_argv(tmp_path, *flags)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_a_listing_error_is_an_error_not_an_empty_folder(tmp_path, monkeypatch):
    (tmp_path / "train-000000.tar").write_bytes(b"")
    assert finalize.list_uris(str(tmp_path / "*.tar")) == [str(tmp_path / "train-000000.tar")]
    assert finalize.list_uris(str(tmp_path / "missing" / "*.jsonl")) == []

    def broken(patterns, limits=None):
        raise BeamIOError("listing failed", {patterns[0]: OSError("connection reset")})

    monkeypatch.setattr(finalize.FileSystems, "match", broken)
    with pytest.raises(BeamIOError):
        finalize.next_shard_numbers(str(tmp_path))


def _imports(path):
    tree = ast.parse(open(path).read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def _py_files(*tops):
    return [p for top in tops for p in glob.glob(os.path.join(ROOT, top, "**", "*.py"), recursive=True)]


def test_imports_run_one_way():
    stages = {os.path.basename(os.path.dirname(p)) for p in glob.glob(os.path.join(ROOT, "transforms", "*", ""))}
    for path in _py_files("schemas"):
        assert not any(m.startswith(("transforms", "pipeline")) for m in _imports(path)), path
    for path in _py_files("transforms"):
        mods = list(_imports(path))
        assert not any(m.startswith("pipeline") for m in mods), path
        own = path.split(os.sep + "transforms" + os.sep)[1].split(os.sep)[0]
        others = {m.split(".")[1] for m in mods if m.startswith("transforms.") and m.count(".") >= 1}
        if own == "core":
            assert others <= {"core"}, (path, others)
        else:
            assert others <= {"core", own}, (path, others - {"core", own})
    assert "core" in stages
    assert [os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "transforms", "*.py"))] == ["__init__.py"]


def test_files_and_functions_stay_small():
    for path in _py_files("pipeline", "transforms", "schemas"):
        source = open(path).read()
        assert source.count("\n") <= 400, path
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                assert node.end_lineno - node.lineno < 80, f"{path}:{node.name}"


def test_a_local_run_uses_every_core_unless_told_otherwise():
    from pipeline.config import local_defaults

    assert local_defaults(["--input", "x"], cores=4)[-4:] == ["--direct_running_mode", "multi_processing",
                                                            "--direct_num_workers", "4"]
    for given in (["--direct_num_workers", "1"], ["--direct_running_mode=in_memory"],
                  ["--runner", "DataflowRunner"], ["--runner=PortableRunner"]):
        assert local_defaults(given, cores=4) == given
