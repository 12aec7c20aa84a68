"""songshard's pipeline options: one PipelineOptions subclass gathering each stage's own group.

The run-level flags (where to read and write, resume behaviour, progress) are
declared here; every other flag belongs to a stage, is declared by the stage's
``add_options`` and starts with the stage's name (``--separate_*``,
``--lyrics_*``, ``--filter_*`` ...). Nothing else in songshard reads
``sys.argv`` or environment variables.
"""

from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions

from transforms.core.workdir import AUDIO_FORMATS


class SongshardOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        from pipeline.graph import configurable_stages

        io = parser.add_argument_group("input / output")
        io.add_argument("--input", help="folder, glob, or text file of URIs (local, gs://, s3://)")
        io.add_argument("--output", help="output folder for shards, index, failures, stats")
        io.add_argument("--work_dir", default=None,
                        help="where decoded audio and stems live during the run (default OUT/_work)")
        io.add_argument("--overwrite", action="store_true",
                        help="delete what OUT holds and start over (default: resume, skipping done songs)")
        io.add_argument("--retry_failed", action="store_true",
                        help="on resume, process again songs that failed in an earlier run")
        io.add_argument("--keep_work", action="store_true", help="keep the work dir after the run")
        io.add_argument("--work_audio", default="auto", choices=["auto"] + sorted(AUDIO_FORMATS),
                        help="how decoded audio and stems are stored in the work dir: npz (float32, bit-exact), "
                             "flac24 (a third of the bytes, 112-122 dB signal-to-error), flac16 (74 dB); auto "
                             "(default): npz on a local work dir, flac24 on a remote one (gs://, s3://)")
        io.add_argument("--worker_threads", type=int, default=0,
                        help="CPU threads per worker process (default 0: a local run's cores / worker processes; "
                             "on Dataflow 1, as it runs one SDK process per vCPU, or every core with "
                             "--experiments no_use_multiple_sdk_containers)")
        io.add_argument("--progress_interval", type=float, default=5.0,
                        help="seconds between progress lines (0: none)")
        io.add_argument("--song_time_limit", type=float, default=1800.0,
                        help="seconds of compute a song may take over all stages; past it the song becomes "
                             "a dead letter and the run goes on (0: no limit)")
        io.add_argument("--dedupe", default="claims", choices=["claims", "group"],
                        help="how copies of one song are found: claims (default), the first copy decoded claims "
                             "its content id in the work dir (local or gs://) and no song waits for another; "
                             "group, songs are grouped by content id and the smallest URI is kept, but no song "
                             "is separated before every song is decoded (for work dirs without atomic create)")
        for stage in configurable_stages():
            stage.add_options(parser.add_argument_group(f"stage {stage.stage}"))
