"""``songshard fit-codec``: fit the kmeans codec's codebook on a corpus, as a job of its own.

    songshard fit-codec --input SONGS --output CODEBOOK.npz [--max_songs 200] [--frames_per_song 500]
                        [--tokens_codebook_size 16384] [--separate ...] [Beam options]

Reads at most ``--max_songs`` songs spread evenly over the sorted input, decodes and separates
them with the same stages (and flags) as the main job, draws log-mel frames from each song's mix,
vocal and accompaniment and fits the codebook. The main job then only reads it
(``--tokens_weights CODEBOOK.npz``, or put it at OUT/codec/codebook.npz), so no song there waits
for the corpus. An existing file at ``--output`` is kept, not refitted.
"""

from __future__ import annotations

import argparse
import tempfile
from typing import List, Optional

import apache_beam as beam

from pipeline.config import resolve
from schemas.records import Song
from transforms.core import workdir
from transforms.core.config import RunContext
from transforms.decode import DecodeAudio
from transforms.discover import discover
from transforms.separate import SeparateStems
from transforms.tokens import frames
from transforms.tokens.fit import FIT_FRAMES_PER_SONG, FitCodebook


def spread(uris: List[str], n: int) -> List[str]:
    """At most ``n`` of ``uris`` spread evenly over the list (deterministic)."""
    if n <= 0 or len(uris) <= n:
        return list(uris)
    step = len(uris) / float(n)
    return [uris[int(i * step)] for i in range(n)]


def fit_codec(argv: Optional[List[str]] = None) -> str:
    """Fit and write the codebook; returns its URI. ValueError / FileNotFoundError for bad input."""
    parser = argparse.ArgumentParser(prog="songshard fit-codec", add_help=False)
    parser.add_argument("--output", required=True, help="where the codebook .npz goes (any Beam filesystem)")
    parser.add_argument("--max_songs", type=int, default=200, help="songs to fit on, spread over the input")
    parser.add_argument("--frames_per_song", type=int, default=FIT_FRAMES_PER_SONG)
    args, rest = parser.parse_known_args(argv)
    with tempfile.TemporaryDirectory(prefix="songshard-fit-") as scratch:
        pipeline_options, config = resolve(rest + ["--output", scratch])
        uris = spread(discover(config.input), args.max_songs)
        context = RunContext(run_id="fit-codec", output=scratch, work_dir=workdir.join(scratch, "work"))
        size = int(config.stage("tokens").backend_params.get("codebook_size") or frames.CODEBOOK_SIZE)
        print(f"[songshard] fit-codec: {len(uris)} songs, at most {size} codes -> {args.output}", flush=True)
        with beam.Pipeline(options=pipeline_options) as p:
            songs = p | "ListSongs" >> beam.Create([Song(uri=u) for u in uris]) | "Spread" >> beam.Reshuffle()
            songs, _ = songs | "decode" >> DecodeAudio(config.stage("decode"), context)
            songs, _ = songs | "separate" >> SeparateStems(config.stage("separate"), context)
            _ = songs | "fit" >> FitCodebook(args.output, size, per_song=args.frames_per_song)
    if not workdir.exists(args.output):
        raise ValueError(f"no codebook written: none of the {len(uris)} songs could be decoded and separated")
    print(f"[songshard] fit-codec: wrote {args.output}", flush=True)
    return args.output
