"""Claims on content ids: one winner per id, however many processes race, and retries keep theirs."""

import multiprocessing as mp
import sys
import types

import pytest

from transforms.core import claims


def test_the_first_claim_wins_and_claiming_again_is_idempotent(tmp_path):
    work = str(tmp_path / "work")
    assert claims.claim(work, "abc", "gs://b/one.flac") == "gs://b/one.flac"
    assert claims.claim(work, "abc", "gs://b/two.flac") == "gs://b/one.flac"
    assert claims.claim(work, "abc", "gs://b/one.flac") == "gs://b/one.flac"  # a retried bundle goes on
    assert claims.claim(work, "def", "gs://b/two.flac") == "gs://b/two.flac"
    assert sorted(p.name for p in (tmp_path / "work" / claims.CLAIMS_FOLDER).iterdir()) == ["abc", "def"]


def _race(args):
    work, owner = args
    return claims.claim(work, "same-id", owner)


@pytest.mark.parametrize("hard_links", [True, False])
def test_processes_racing_for_one_id_get_one_winner(tmp_path, monkeypatch, hard_links):
    if not hard_links:  # the O_EXCL path: forked racers inherit the patched module
        monkeypatch.setattr(claims.os, "link", lambda src, dst: (_ for _ in ()).throw(OSError(95, "no links")))
    work = str(tmp_path / "work")
    owners = [f"/songs/{i:02d}.wav" for i in range(16)]
    with mp.get_context("fork").Pool(8) as pool:
        seen = pool.map(_race, [(work, o) for o in owners], chunksize=1)
    assert len(set(seen)) == 1 and seen[0] in owners
    assert sum(s == o for s, o in zip(seen, owners)) == 1  # exactly one process was told it won


def test_claims_work_on_a_filesystem_without_hard_links(tmp_path, monkeypatch):
    def no_links(src, dst):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(claims.os, "link", no_links)
    work = str(tmp_path / "work")
    assert claims.claim(work, "abc", "/songs/a.wav") == "/songs/a.wav"
    assert claims.claim(work, "abc", "/songs/b.wav") == "/songs/a.wav"
    assert claims.claim(work, "abc", "/songs/a.wav") == "/songs/a.wav"
    assert sorted(p.name for p in (tmp_path / "work" / claims.CLAIMS_FOLDER).iterdir()) == ["abc"]


def test_bad_keys_and_work_dirs_without_atomic_create_are_refused(tmp_path):
    with pytest.raises(ValueError, match="one path segment"):
        claims.claim(str(tmp_path), "a/b", "x")
    with pytest.raises(ValueError, match="--dedupe group"):
        claims.claim("s3://bucket/work", "abc", "x")
    assert claims.supported("/tmp/w") and claims.supported("file:///tmp/w") and claims.supported("gs://b/w")
    assert not claims.supported("s3://b/w")


def test_gcs_claims_use_create_if_absent(monkeypatch):
    """The gs:// path against a stand-in for google-cloud-storage's blob API (no bucket here)."""

    class PreconditionFailed(Exception):
        pass

    objects, calls = {}, []

    class Blob:
        def __init__(self, name):
            self.name = name

        def upload_from_string(self, data, if_generation_match=None):
            calls.append((self.name, if_generation_match))
            if if_generation_match == 0 and self.name in objects:
                raise PreconditionFailed(self.name)
            objects[self.name] = data

        def download_as_bytes(self):
            return objects[self.name]

    class Client:
        def bucket(self, name):
            assert name == "bucket"
            return types.SimpleNamespace(blob=Blob)

    google = types.ModuleType("google")
    cloud, api_core, exceptions = (types.ModuleType(n) for n in ("google.cloud", "google.api_core",
                                                                  "google.api_core.exceptions"))
    cloud.storage = types.SimpleNamespace(Client=Client)
    exceptions.PreconditionFailed = PreconditionFailed
    for name, module in {"google": google, "google.cloud": cloud, "google.api_core": api_core,
                         "google.api_core.exceptions": exceptions}.items():
        monkeypatch.setitem(sys.modules, name, module)
    assert claims.claim("gs://bucket/work/run1", "abc", "gs://in/a.flac") == "gs://in/a.flac"
    assert claims.claim("gs://bucket/work/run1", "abc", "gs://in/b.flac") == "gs://in/a.flac"
    assert calls == [("work/run1/claims/abc", 0)] * 2
