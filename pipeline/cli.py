"""The ``songshard`` command.

    songshard run --input SONGS --output OUT [any Beam option]
    songshard pack OUT [--shard_max_samples N] [--io_threads N]
    songshard inspect OUT [KEY] [--export DIR] [--plot PNG]
    songshard report OUT [--sample N]
    songshard fit-codec --input SONGS --output CODEBOOK.npz [--max_songs N] [any run option]
    songshard sample-corpus DIR [--n_songs N] [--seed S]

``run`` takes every Beam option (``--runner``, ``--direct_num_workers``,
``--setup_file`` ...) next to songshard's own; see ``songshard run --help``.
Exit status: 0 when the run finished (failed songs are dead letters, not
errors), 2 for bad arguments or a backend that cannot run.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import List, Optional

USAGE = __doc__


def _run(argv: List[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        from pipeline.options import SongshardOptions

        parser = argparse.ArgumentParser(prog="songshard run", description="raw songs in, training shards out")
        SongshardOptions._add_argparse_args(parser)
        parser.print_help()
        print("\nAny Apache Beam pipeline option is accepted too (--runner, --direct_num_workers, ...).")
        return 0
    from pipeline.run import run

    return _exit_status(run, argv)


def _exit_status(command, argv: List[str]) -> int:
    """0 when ``command(argv)`` finished; 2 with one line on stderr for bad input or an unusable backend."""
    from transforms.core.stage import BackendUnavailable

    try:
        command(argv)
    except (BackendUnavailable, ValueError, FileNotFoundError) as exc:
        print(f"songshard: {exc}", file=sys.stderr)
        return 2
    return 0


def _inspect(argv: List[str]) -> int:
    from pipeline import inspect_shards as ins

    parser = argparse.ArgumentParser(prog="songshard inspect")
    parser.add_argument("target", help="output folder or shard .tar")
    parser.add_argument("key", nargs="?", help="a sample key (song id) to show in full")
    parser.add_argument("--export", metavar="DIR", help="write the sample's audio, tokens and json to DIR")
    parser.add_argument("--plot", metavar="PNG", help="draw the record (or, without KEY, the index) to PNG")
    args = parser.parse_args(argv)
    if args.key is None:
        if args.plot:
            from pipeline import finalize, plots

            print(f"wrote {plots.plot_summary(finalize.read_index(args.target), args.plot)}")
        if args.target.endswith(".tar"):
            for sample in ins.iter_samples(args.target):
                rec = ins.decode_sample(sample)
                print(f"{sample['__key__']}  {rec['json'].get('duration', 0):7.2f}s  "
                      f"{' '.join(sorted(k for k in sample if not k.startswith('__')))}")
        else:
            print(ins.summary_text(args.target))
        return 0
    sample = ins.find_sample(args.target, args.key)
    if sample is None:
        print(f"songshard: no sample {args.key!r} in {args.target}", file=sys.stderr)
        return 1
    print(ins.record_text(sample))
    if args.plot:
        from pipeline import plots

        print(f"wrote {plots.plot_record(sample, args.plot)}")
    if args.export:
        for path in ins.export_sample(sample, args.export):
            print(f"wrote {path}")
    return 0


def _sample_corpus(argv: List[str]) -> int:
    from pipeline import sample_corpus

    return sample_corpus.main(argv) or 0


def _report(argv: List[str]) -> int:
    from pipeline.report import report_main

    return report_main(argv)


def _pack(argv: List[str]) -> int:
    from pipeline.pack import pack_main

    return _exit_status(pack_main, argv)


def _fit_codec(argv: List[str]) -> int:
    from pipeline import fit_codec as module

    if argv and argv[0] in ("-h", "--help"):
        print(module.__doc__)
        return 0
    return _exit_status(module.fit_codec, argv)


COMMANDS = {"run": _run, "pack": _pack, "inspect": _inspect, "report": _report, "fit-codec": _fit_codec,
            "sample-corpus": _sample_corpus}


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # Beam warns at import that Google Cloud client libraries are absent; local runs do not need them.
    logging.getLogger().addFilter(lambda record: "apitools not found" not in record.getMessage())
    if not argv or argv[0] not in COMMANDS:
        print(USAGE, file=sys.stderr)
        return 2
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
