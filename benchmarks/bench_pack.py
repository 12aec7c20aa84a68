"""Packing N parts in a bucket: requests and time, today's packer against the one before it.

Starts a Cloud Storage emulator (gcp-storage-emulator, its own process on 127.0.0.1), writes N parts
(``OUT/_parts/KEY.tar`` + ``KEY.json``, as the shard stage does) and packs them with each packer,
counting every HTTP request the driver sends (batch requests count once) and the wall time. The
packer before this build is read from git (``--before``, a commit) so both run the same harness.

    .venv/bin/python benchmarks/bench_pack.py [--parts 10000] [--before ebf5b3d] [--only before|this]

Prints one line per packer. The emulator handles one request at a time and scans every object it
holds to answer a listing, so its times grow with what it holds and with the request count, not with
the concurrency a real bucket serves. The packer before this build lists once per song (an
``exists`` check is a listing in gs://), so past a few thousand parts the emulator, not the packer,
takes most of that time.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
BUCKET = "bench"


# The emulator's own server takes one connection at a time with a listen backlog of 5: sixteen clients
# at once then wait for minutes in connect(). Here it accepts on threads, with a deep backlog, and
# handles one request at a time under a lock (its in-memory store has no locks of its own). It also
# rewrites all its metadata as one JSON file on every write, which nothing reads in memory: skipped.
EMULATOR = """
import http.server, sys, threading
from gcp_storage_emulator import server
class Accepting(http.server.ThreadingHTTPServer):
    request_queue_size = 256
http.server.HTTPServer = Accepting
lock, route = threading.Lock(), server.Router.handle
def handle(self, method):
    with lock:
        return route(self, method)
server.Router.handle = handle
from gcp_storage_emulator import storage  # in memory: nothing reads back the metadata file it rewrites
storage.Storage._write_config_to_file = lambda self: None  # whole on every write (quadratic time)
emulator = server.create_server("127.0.0.1", int(sys.argv[1]), in_memory=True, default_bucket=sys.argv[2])
emulator.start()
threading.Event().wait()
"""


def start_emulator() -> subprocess.Popen:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-c", EMULATOR, str(port), BUCKET],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.environ["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the emulator did not start")


class RequestCounter:
    """Counts every HTTP request this process sends (google-cloud-storage goes through requests)."""

    def __init__(self):
        import requests

        self.count, original = 0, requests.Session.request

        def counted(session, *args, **kwargs):
            self.count += 1
            return original(session, *args, **kwargs)

        requests.Session.request = counted


def write_parts(out: str, n: int) -> None:
    from transforms.core.bulk import map_concurrently
    from transforms.shard import PARTS, part_bytes, write_atomically

    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from test_pack import ROW

    def one(i: int) -> None:
        key = f"{i:08x}"
        data = part_bytes(key, {"json": json.dumps({"i": i}).encode(), "tokens.npy": bytes(2048)})
        write_atomically(f"{out}/{PARTS}/{key}.tar", data)
        rec = {"key": key, "uri": f"gs://{BUCKET}/songs/{key}.flac", "split": "train", "bytes": len(data),
               "row": {**ROW, "key": key, "uri": f"gs://{BUCKET}/songs/{key}.flac"}}
        write_atomically(f"{out}/{PARTS}/{key}.json", json.dumps(rec).encode())

    map_concurrently(one, range(n), threads=16)


def load_packer(commit: str):
    """transforms/shard/pack.py as it was at ``commit`` (git show), as a module, reading objects as
    the work-dir I/O of that time did (through FileSystems.open: a metadata request, then the data)."""
    import types

    from apache_beam.io.filesystems import FileSystems

    from transforms.core import workdir

    source = subprocess.run(["git", "show", f"{commit}:transforms/shard/pack.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    path = os.path.join(tempfile.mkdtemp(), "pack_before.py")
    with open(path, "w") as f:
        f.write(source)
    spec = importlib.util.spec_from_file_location("pack_before", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    def read_bytes(uri: str) -> bytes:
        with FileSystems.open(uri) as f:
            return f.read()

    module.workdir = types.SimpleNamespace(**{**vars(workdir), "read_bytes": read_bytes})
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", type=int, default=10_000)
    parser.add_argument("--before", default="ebf5b3d", help="the commit whose packer to compare against")
    parser.add_argument("--only", choices=["before", "this"], help="run one packer only")
    args = parser.parse_args()
    from apache_beam.internal.gcp import auth

    auth._Credentials._credentials_init, auth._Credentials._credentials = True, None  # anonymous: emulator
    from transforms.shard import pack

    counter = RequestCounter()
    packers = [("before (" + args.before + ")", load_packer(args.before)), ("this build", pack)]
    for label, packer in [p for p in packers if not args.only or p[0].startswith(args.only)]:
        emulator = start_emulator()  # a fresh one each: the emulator slows down as it fills
        try:
            out = f"gs://{BUCKET}/out"
            start = time.time()
            write_parts(out, args.parts)
            written = time.time() - start
            counter.count, start = 0, time.time()
            published = packer.pack_parts(out, "bench", 1000, 1e9)
            seconds, requests = time.time() - start, counter.count
        finally:
            emulator.terminate()
        samples = sum(p["samples"] for p in published)
        assert samples == args.parts, (samples, args.parts)
        print(f"{label:>18}: {args.parts} parts packed into {len(published)} shards in {seconds:7.1f} s, "
              f"{requests} requests ({requests / args.parts:.2f} per song); parts written in {written:.0f} s",
              flush=True)


if __name__ == "__main__":
    main()
