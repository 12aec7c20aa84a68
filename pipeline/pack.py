"""``songshard pack OUT``: publish the finished parts in OUT as shards, from any machine.

The same packing that ends ``songshard run`` (``transforms.shard.pack.pack_parts``): idempotent
(a second call finds nothing to do), resumable (a crash leaves parts or whole shards; the next
call tidies and goes on) and concurrent. Use it when a run's launcher went away while its job
went on (a Dataflow job keeps running without it), or to publish what a killed run finished.
With ``--delete_work`` it then deletes the work dir (``OUT/_work`` or ``--work_dir``): only when no
run into OUT is going on. Beam's filesystem options (``--s3_endpoint_url`` ...) are accepted too.
"""

from __future__ import annotations

import argparse
import time
from typing import List, Optional

from transforms.core.bulk import IO_THREADS
from transforms.shard.pack import pack_parts


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="songshard pack", description=__doc__.split("\n\n")[0])
    p.add_argument("output", metavar="OUT", help="the run's output folder (local, gs://, s3://)")
    p.add_argument("--shard_max_samples", type=int, default=1000, help="samples per shard, at most")
    p.add_argument("--shard_max_bytes", type=float, default=1e9, help="bytes per shard, about")
    p.add_argument("--io_threads", type=int, default=IO_THREADS, help="requests in flight at once")
    p.add_argument("--delete_work", action="store_true",
                   help="then delete the work dir of every run into OUT (only when none is going on)")
    p.add_argument("--work_dir", default=None, help="the runs' --work_dir, if not OUT/_work")
    return p


def pack_main(argv: Optional[List[str]] = None) -> int:
    """Pack OUT's parts; prints one line of what was published. Returns 0."""
    from pipeline.run import new_run_id

    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions

    from transforms.core import workdir

    args, beam_args = parser().parse_known_args(argv)
    FileSystems.set_options(PipelineOptions(beam_args))
    if args.shard_max_samples < 1 or args.shard_max_bytes <= 0 or args.io_threads < 1:
        raise ValueError("--shard_max_samples, --shard_max_bytes and --io_threads must be positive")
    started = time.time()
    published = pack_parts(args.output, "pack-" + new_run_id(), args.shard_max_samples, args.shard_max_bytes,
                           args.io_threads)
    samples = sum(p["samples"] for p in published)
    names = f" ({published[0]['shard']} .. {published[-1]['shard']})" if published else ""
    print(f"[songshard] pack {args.output}: {samples} samples into {len(published)} shards{names} "
          f"in {time.time() - started:.1f} s", flush=True)
    if args.delete_work:
        work = (args.work_dir or workdir.join(args.output.rstrip("/"), "_work")).rstrip("/")
        workdir.delete_tree(work)
        print(f"[songshard] deleted the work dir {work}", flush=True)
    return 0
