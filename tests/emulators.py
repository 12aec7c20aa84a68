"""Object stores on 127.0.0.1 for tests: Cloud Storage (gcp-storage-emulator) and S3 (moto's server).

Import the fixtures into a test module (``from emulators import gcs, s3``) and ask for them by name.
Each test gets a fresh, empty store on a free port with one bucket, the environment its clients
honour, and Beam's process-wide state reset (and restored afterwards), so tests do not see each
other's stores:

- ``gcs``: ``STORAGE_EMULATOR_HOST`` points google-cloud-storage (Beam's GcsIO and songshard's
  claims) at the emulator. Beam looks for credentials once per process and, finding none here,
  retries for about 20 s before going anonymous: the fixture seeds Beam's credentials cache with
  "none" (the emulator takes anonymous requests) and clears it afterwards.
- ``s3``: ``AWS_ENDPOINT_URL`` and test keys point boto3 (Beam's S3 filesystem) at moto, whose
  state (kept in the process, not in the server) is reset first.
  Beam's S3 filesystem needs pipeline options in ``FileSystems`` (it refuses to build a client
  without them); the fixture sets empty ones, as a Beam pipeline would, and restores the old.

gcp-storage-emulator ignores ``ifGenerationMatch`` (the precondition claims rely on): the fixture
makes its upload handler answer 412 to ``ifGenerationMatch=0`` when the object exists, as Cloud
Storage does, so that claims are checked against the precondition and not against a store that
lets the second claim overwrite the first. moto honours S3's ``If-None-Match: *`` itself.

A test is skipped, with the reason, only when the emulator's package is not installed.
"""

from __future__ import annotations

import logging
import socket
import threading
import types
import urllib.request
from dataclasses import dataclass
from typing import Callable

import pytest

GCS_BUCKET = "songshard-test"
S3_BUCKET = "songshard-test"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Store:
    """A running store: ``root`` is ``scheme://bucket``, ``url`` its endpoint, ``stop()`` ends it early."""

    scheme: str
    bucket: str
    url: str
    stop: Callable[[], None]

    @property
    def root(self) -> str:
        return f"{self.scheme}://{self.bucket}"

    def uri(self, *parts: str) -> str:
        return "/".join([self.root, *(p.strip("/") for p in parts)])


def _once(fn: Callable[[], None]) -> Callable[[], None]:
    """``fn`` that runs on its first call only (a test may stop its store early; teardown stops it again)."""
    done = []

    def call() -> None:
        if not done:
            done.append(True)
            fn()
    return call


def _reset_beam(monkeypatch, options=None) -> None:
    """Beam's process-wide state the stores depend on: filesystem options, cached GCP credentials, and
    songshard's cached Cloud Storage client."""
    from apache_beam.internal.gcp import auth
    from apache_beam.io.filesystems import FileSystems

    from transforms.core import workdir

    monkeypatch.setattr(FileSystems, "_pipeline_options", options)
    monkeypatch.setattr(workdir, "_GCS_IO", {})  # its cached client would talk to an earlier test's store
    monkeypatch.setattr(auth._Credentials, "_credentials_init", True)  # "none found": anonymous clients
    monkeypatch.setattr(auth._Credentials, "_credentials", None)


def _precondition_failed(response, name: str) -> None:
    from http import HTTPStatus

    response.status = HTTPStatus.PRECONDITION_FAILED
    response.json({"error": {"code": 412, "message": f"object {name} exists: ifGenerationMatch=0 failed",
                             "errors": [{"reason": "conditionNotMet", "domain": "global"}]}})


def _with_create_if_absent(insert):
    """The emulator's upload handler, answering 412 to ``ifGenerationMatch=0`` for an existing object.

    The emulator serves one request at a time (a plain HTTPServer), so check and create are atomic.
    """
    from gcp_storage_emulator.exceptions import NotFound

    def handler(request, response, storage, *args, **kwargs):
        if request.query.get("ifGenerationMatch") == ["0"]:
            name = (request.query.get("name") or [None])[0]
            if name is None and request.query.get("uploadType") == ["multipart"]:
                name = request.data["meta"].get("name")
            try:
                storage.get_file_obj(request.params["bucket_name"], name)
                return _precondition_failed(response, name)
            except NotFound:
                pass
        return insert(request, response, storage, *args, **kwargs)

    return handler


def _patch_emulator(monkeypatch) -> None:
    from gcp_storage_emulator import server as emulator_server
    from gcp_storage_emulator.handlers import objects

    checked = _with_create_if_absent(objects.insert)
    for _, handlers in emulator_server.HANDLERS:
        for method, fn in list(handlers.items()):
            if fn is objects.insert:
                monkeypatch.setitem(handlers, method, checked)
    monkeypatch.setattr(objects, "insert", checked)  # the router's fallback for uploads without /upload


@pytest.fixture
def gcs(monkeypatch):
    """A fresh Cloud Storage emulator with bucket :data:`GCS_BUCKET`; yields a :class:`Store`."""
    pytest.importorskip("gcp_storage_emulator", reason="gcp-storage-emulator is not installed "
                        "(pip install -e '.[test]')")
    from gcp_storage_emulator.server import create_server

    logging.getLogger("gcp_storage_emulator").setLevel(logging.ERROR)  # one warning per download else
    _patch_emulator(monkeypatch)
    port = free_port()
    server = create_server("127.0.0.1", port, in_memory=True, default_bucket=GCS_BUCKET)
    server.start()
    url = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
    _reset_beam(monkeypatch)
    stop = _once(server.stop)

    yield Store("gs", GCS_BUCKET, url, stop)
    stop()


class _SharedSession:
    """One boto3 session whose clients every Beam S3 call gets (one at a time: sessions are not thread-safe)."""

    def __init__(self):
        import boto3

        self._session, self._lock = boto3.session.Session(), threading.Lock()

    def client(self, *args, **kwargs):
        with self._lock:
            return self._session.client(*args, **kwargs)


def _share_boto3_session(monkeypatch) -> None:
    """Beam builds a new boto3 session and client for every S3 call, which parses botocore's JSON
    service models afresh (about 0.2 s of CPU a call, most of a test run's time); here they share one
    session, whose loader keeps the models. What each call sends is unchanged."""
    from apache_beam.io.aws.clients.s3 import boto3_client

    shared = _SharedSession()
    sessions = types.SimpleNamespace(Session=lambda: shared)
    monkeypatch.setattr(boto3_client, "boto3", types.SimpleNamespace(session=sessions))


@pytest.fixture
def s3(monkeypatch):
    """A fresh moto S3 server with bucket :data:`S3_BUCKET`; yields a :class:`Store`."""
    pytest.importorskip("moto.server", reason="moto[server] is not installed (pip install -e '.[test]')")
    import boto3
    from apache_beam.options.pipeline_options import PipelineOptions
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request else
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    for name, value in {"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    # moto keeps its buckets in the process, not in the server: start from none
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10).close()
    boto3.client("s3").create_bucket(Bucket=S3_BUCKET)
    _reset_beam(monkeypatch, PipelineOptions([]))
    _share_boto3_session(monkeypatch)
    stop = _once(server.stop)

    yield Store("s3", S3_BUCKET, url, stop)
    stop()


def object_names(store: Store, prefix: str = "") -> list:
    """Every object name in the store's bucket under ``prefix``, sorted (read with the store's own client)."""
    if store.scheme == "gs":
        from google.cloud import storage

        client = storage.Client.create_anonymous_client()
        return sorted(b.name for b in client.list_blobs(store.bucket, prefix=prefix or None))
    import boto3

    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=store.bucket, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def put_object(store: Store, name: str, data: bytes) -> str:
    """Write ``data`` as object ``name`` with the store's own client; returns its URI."""
    if store.scheme == "gs":
        from google.cloud import storage

        storage.Client.create_anonymous_client().bucket(store.bucket).blob(name).upload_from_string(data)
    else:
        import boto3

        boto3.client("s3").put_object(Bucket=store.bucket, Key=name, Body=data)
    return store.uri(name)


def read_object(store: Store, name: str) -> bytes:
    if store.scheme == "gs":
        from google.cloud import storage

        return storage.Client.create_anonymous_client().bucket(store.bucket).blob(name).download_as_bytes()
    import boto3

    return boto3.client("s3").get_object(Bucket=store.bucket, Key=name)["Body"].read()


__all__ = ["gcs", "s3", "Store", "free_port", "object_names", "put_object", "read_object"]
