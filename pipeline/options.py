"""songshard's pipeline options: one PipelineOptions subclass, flags grouped per stage.

Each stage's flags share a prefix (``--separator*``, ``--structure*``, ``--asr*`` ...);
the flag without suffix picks the backend and every ``PREFIX_*`` flag is handed to
that backend (see ``transforms.base.backend_choice``). Nothing else in songshard
reads ``sys.argv`` or environment variables.
"""

from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions


class SongshardOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        io = parser.add_argument_group("input / output")
        io.add_argument("--input", help="folder, glob, or text file of URIs (local, gs://, s3://)")
        io.add_argument("--output", help="output folder for shards, index, failures, stats")
        io.add_argument("--work_dir", default=None,
                        help="where decoded audio and stems live during the run (default OUT/_work)")
        io.add_argument("--overwrite", action="store_true",
                        help="delete what OUT holds and start over (default: resume, skipping done songs)")
        io.add_argument("--retry_failed", action="store_true",
                        help="on resume, process again songs that failed in an earlier run")
        io.add_argument("--write_audio", action="store_true",
                        help="put the mix and the vocal / accompaniment stems in each sample as FLAC")
        io.add_argument("--keep_work", action="store_true", help="keep the work dir after the run")
        io.add_argument("--progress_interval", type=float, default=5.0,
                        help="seconds between progress lines (0: none)")
        io.add_argument("--progress_dir", default=None,
                        help="where workers drop progress markers (default: in the run's work dir)")

        dec = parser.add_argument_group("decode")
        dec.add_argument("--max_song_seconds", type=float, default=360.0,
                         help="songs are cut to this length (the training side caps at 360 s)")

        sep = parser.add_argument_group("separation")
        sep.add_argument("--separator", default="dsp",
                         help="dsp (embedded, no weights) | demucs (htdemucs from --separator_weights)")
        sep.add_argument("--separator_weights", default=None,
                         help="demucs checkpoint file, a demucs model-repo folder, or a model name in the torch hub cache")
        sep.add_argument("--separator_model", default="htdemucs", help="demucs model name in a repo folder")
        sep.add_argument("--separator_device", default="cpu", help="cpu | cuda")
        sep.add_argument("--separator_segment", type=float, default=None,
                         help="seconds per demucs segment (default: the model's own)")
        sep.add_argument("--separator_overlap", type=float, default=0.25)
        sep.add_argument("--separator_batch", type=int, default=1, help="segments per forward pass")
        sep.add_argument("--separator_shifts", type=int, default=0)

        st = parser.add_argument_group("structure")
        st.add_argument("--structure", default="dsp",
                        help="dsp (embedded: beats + self-similarity sections) | madmom | allin1")
        st.add_argument("--structure_weights", default=None, help="allin1 weights folder")
        st.add_argument("--structure_device", default="cpu")

        asr = parser.add_argument_group("lyrics / ASR")
        asr.add_argument("--asr", default="faster-whisper",
                         help="faster-whisper (default, shipped weights) | whisper | none")
        asr.add_argument("--asr_model", default=None,
                         help="model name in the library's cache, a checkpoint file or a CTranslate2 folder")
        asr.add_argument("--asr_device", default="cpu")
        asr.add_argument("--asr_compute_type", default="int8", help="faster-whisper compute type")
        asr.add_argument("--asr_language", default=None, help="force a language (default: detect)")
        asr.add_argument("--asr_beam_size", type=int, default=1)
        asr.add_argument("--asr_sample_len", type=int, default=None,
                         help="most tokens decoded per 30 s window (default: the library's)")
        asr.add_argument("--asr_threads", type=int, default=0, help="CPU threads for ASR (0: library default)")
        asr.add_argument("--asr_gate_db", type=float, default=30.0,
                         help="vocal gate: frames more than this many dB below the stem's loud level are not transcribed")
        asr.add_argument("--asr_compression_ratio_threshold", type=float, default=2.4,
                         help="drop decoded segments more compressible than this (loops)")
        asr.add_argument("--asr_log_prob_threshold", type=float, default=-1.0,
                         help="drop decoded segments whose average log-probability is below this")
        asr.add_argument("--asr_no_speech_threshold", type=float, default=0.6,
                         help="drop segments whose no-speech probability is above this (unless confidently decoded)")

        tag = parser.add_argument_group("tags and quality")
        tag.add_argument("--tagger", default="dsp",
                         help="dsp (metadata + signal descriptors) | clap (zero-shot, --tagger_weights)")
        tag.add_argument("--tagger_weights", default=None)
        tag.add_argument("--tagger_device", default="cpu")
        tag.add_argument("--quality_tiers", default=None,
                         help="comma-separated musicality score thresholds, high to low (4 numbers)")
        tag.add_argument("--tagger_min_confidence", type=float, default=0.3,
                         help="clap: probability a gender / genre / emotion pick needs (and twice the uniform share)")
        tag.add_argument("--tagger_windows", type=int, default=6,
                         help="clap: evenly spaced 10 s windows averaged per song")
        tag.add_argument("--quality_scorer_weights", default=None,
                         help="learned aesthetic scorer file (transforms.tagging.scorer.save_scorer); "
                              "blended into the musicality score")
        tag.add_argument("--filter_max_clipping_ratio", type=float, default=None,
                         help="drop songs with more than this share of clipped samples (e.g. 0.001)")
        tag.add_argument("--filter_min_bandwidth_hz", type=float, default=None,
                         help="drop songs whose effective bandwidth is below this (e.g. 11000: low bit rate / upsampled)")
        tag.add_argument("--filter_max_silence_ratio", type=float, default=None,
                         help="drop songs with more than this share of silent 100 ms frames")
        tag.add_argument("--filter_min_loudness_lufs", type=float, default=None,
                         help="drop songs quieter than this integrated loudness (LUFS)")
        tag.add_argument("--filter_drop_fake_stereo", action="store_true",
                         help="drop songs whose two channels carry the same signal")

        codec = parser.add_argument_group("codec tokens")
        codec.add_argument("--codec", default="kmeans",
                           help="kmeans (embedded, codebook learnt from the corpus) | encodec | songgen")
        codec.add_argument("--codec_weights", default=None,
                           help="kmeans: codebook .npz (default OUT/codec/codebook.npz, fitted when missing); "
                                "encodec: checkpoint folder (config.json + model.safetensors); "
                                "songgen: SongGeneration's ckpt folder")
        codec.add_argument("--codec_codebook_size", type=int, default=16384,
                           help="kmeans: at most this many codes (fewer for small corpora: frames / 8)")
        codec.add_argument("--codec_device", default="cpu", help="cpu | cuda (encodec, songgen)")
        codec.add_argument("--codec_code_dir", default=None,
                           help="songgen: a SongGeneration checkout whose codeclm package is imported")
        codec.add_argument("--codec_threads", type=int, default=0,
                           help="encodec, songgen: torch CPU threads (0: torch's default)")

        flt = parser.add_argument_group("filter")
        flt.add_argument("--filter_min_duration", type=float, default=60.0,
                         help="drop songs shorter than this (seconds)")
        flt.add_argument("--filter_max_duration", type=float, default=3600.0,
                         help="drop inputs longer than this before the cut (seconds)")
        flt.add_argument("--filter_min_language_probability", type=float, default=0.9)
        flt.add_argument("--filter_min_language_coverage", type=float, default=0.8)
        flt.add_argument("--filter_min_musicality", default=None,
                         help="drop songs below this tier (very-low | low | medium | high)")

        spl = parser.add_argument_group("split")
        spl.add_argument("--split_valid_fraction", type=float, default=0.05)
        spl.add_argument("--split_test_fraction", type=float, default=0.05)

        sh = parser.add_argument_group("shards")
        sh.add_argument("--shard_max_samples", type=int, default=1000)
        sh.add_argument("--shard_max_bytes", type=float, default=1e9)
