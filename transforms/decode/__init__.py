"""Decode stage: a song URI in; 48 kHz stereo and 16 kHz mono in the work dir out.

``DecodeAudio`` reads the file through Beam's FileSystems, decodes it (soundfile
for wav / flac / ogg / mp3 / opus, ffmpeg for the rest, e.g. m4a), gives the song
its id (sha256 of the decoded PCM, so one recording under two names is one song),
reads embedded tags (mutagen) and sidecars (NAME.json, NAME.txt, NAME.lrc), takes the song's
reference lyrics from the first of its lyric sources (``transforms.decode.reference``), cuts
songs at ``--decode_max_seconds`` and writes ``mix`` (48 kHz stereo) and ``mix16k``
(16 kHz mono) to the work dir. The file is opened as a seekable stream and read no
further than the cut; the decoded cut goes through a block at a time, twice (checks
and id, then the work-dir copies: ``transforms.decode.source``), so decode's memory
does not grow with the song.

Failures (dead letters, stage "decode"): empty file, undecodable bytes, no
samples, digital silence, unreadable sidecar JSON.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import posixpath
import re
import subprocess
from typing import BinaryIO, Optional, Tuple, Union

import apache_beam as beam
import numpy as np

from schemas.records import SourceInfo, Song
from transforms.core import audio as au
from transforms.core import claims
from transforms.core import workdir
from transforms.core.facts import MAX_SONG_SECONDS
from transforms.core.stage import FAILED, StageFn, StageTransform
from transforms.decode import reference
from transforms.decode.reference import parse_lyrics  # noqa: F401 - part of this package's API
from transforms.decode.source import (RawSource, SoundfileSource, Source, copy_to_local, ffmpeg_to_raw,
                                       write_work_copies)

SILENCE_PEAK = 1e-4  # below -80 dBFS peak the song is digital silence


class DecodeError(ValueError):
    """The file's bytes are not audio any decoder here can read."""


class EmptyAudio(ValueError):
    """The file is empty, has no samples, or holds only silence."""


def _ffprobe_codec(path: str) -> Tuple[str, str]:
    try:
        out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name:format=format_name",
                              "-of", "json", path], capture_output=True, timeout=60, check=True).stdout
        info = json.loads(out or b"{}")
        codec = (info.get("streams") or [{}])[0].get("codec_name", "")
        return info.get("format", {}).get("format_name", ""), codec
    except (OSError, subprocess.SubprocessError, ValueError):
        return "", ""


def _one_line(stderr: bytes) -> str:
    """A tool's error output on one line, temporary file names left out (they mean nothing later)."""
    text = " ".join(stderr.decode("utf-8", errors="replace").split())
    return re.sub(r"\S*songshard-\w+\.\w+:?\s*", "", text)


def _ffprobe_duration(path: str) -> float:
    """The container's duration in seconds (0.0 when ffprobe cannot tell)."""
    try:
        out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path],
                             capture_output=True, timeout=60, check=True).stdout.decode().strip()
        return float(out) if out and out != "N/A" else 0.0
    except (OSError, subprocess.SubprocessError, ValueError):
        return 0.0


def _ffmpeg_source(stream: BinaryIO, suffix: str, max_seconds: float = 0.0) -> Source:
    """ffmpeg decodes the cut (at the file's native rate and channel count) to a raw float32 file on local
    disk; the stream is first copied to a local file a block at a time (ffmpeg seeks in some containers)."""
    local = copy_to_local(stream, suffix)
    raw = local + ".f32"
    try:
        container, codec = _ffprobe_codec(local)
        probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
                                "stream=sample_rate,channels", "-of", "csv=p=0", local],
                               capture_output=True, timeout=60)
        fields = probe.stdout.decode().strip().split(",")
        if probe.returncode != 0 or len(fields) < 2 or not fields[0].isdigit():
            raise DecodeError(f"no audio stream found ({_one_line(probe.stderr)[-200:] or 'ffprobe'})")
        proc = ffmpeg_to_raw(local, raw, max_seconds)
        if proc.returncode != 0 and not (os.path.exists(raw) and os.path.getsize(raw)):
            raise DecodeError(f"ffmpeg could not decode: {_one_line(proc.stderr)[-300:]}")
        return RawSource(raw, int(fields[0]), int(fields[1]), container, codec, _ffprobe_duration(local))
    except BaseException:
        if os.path.exists(raw):
            os.unlink(raw)
        raise
    finally:
        os.unlink(local)


def decode_bytes(data: bytes, name: str = "", max_seconds: float = 0.0) -> Tuple[np.ndarray, int, str, str, float]:
    """:func:`decode_stream` of bytes in memory."""
    if not data:
        raise EmptyAudio("file is empty (0 bytes)")
    return decode_stream(io.BytesIO(data), name, max_seconds)


def open_source(stream: BinaryIO, name: str = "", max_seconds: float = 0.0) -> Source:
    """The decoded cut of a seekable binary stream (a local file, a bucket object's reader, BytesIO) as a
    :class:`~transforms.decode.source.Source`, already scanned (length, peak, finiteness, content id).

    Only the first ``max_seconds`` are decoded (0: all), and soundfile's formats are read no further
    than that, so a 3-hour file costs what the cut keeps. Raises EmptyAudio for an empty stream and
    DecodeError when no decoder can read it (soundfile first, then ffmpeg).
    """
    stream.seek(0, io.SEEK_END)
    if stream.tell() == 0:
        raise EmptyAudio("file is empty (0 bytes)")
    suffix = posixpath.splitext(name)[1].lower() or ".bin"
    errors = []
    if suffix not in (".m4a", ".aac", ".mp4", ".wma"):
        try:
            return SoundfileSource(stream, max_seconds)
        except Exception as exc:  # noqa: BLE001 - fall through to ffmpeg, keep the reason
            errors.append("soundfile: " + re.sub(r"<_io\.\w+[^>]*>:?\s*", "", str(exc)))
    try:
        return _ffmpeg_source(stream, suffix, max_seconds)
    except (DecodeError, OSError, subprocess.SubprocessError) as exc:
        errors.append(f"ffmpeg: {exc}")
    raise DecodeError("cannot decode audio: " + "; ".join(errors))


def decode_stream(stream: BinaryIO, name: str = "", max_seconds: float = 0.0) -> Tuple[np.ndarray, int, str, str, float]:
    """(audio [C, N] float32, native sample rate, container, codec, full length in s): the whole decoded
    cut of :func:`open_source` in memory (the stage itself reads it block by block)."""
    with open_source(stream, name, max_seconds) as src:
        blocks = list(src.blocks())
        audio = np.concatenate(blocks, axis=1) if blocks else np.zeros((src.channels, 0), np.float32)
        return audio, src.sample_rate, src.container, src.codec, src.duration


def content_id(audio: np.ndarray, sample_rate: int) -> str:
    """Stable song id: sha256 of the decoded PCM (16-bit) and its rate, 16 hex digits."""
    pcm = np.clip(np.round(audio * 32767.0), -32768, 32767).astype("<i2")
    h = hashlib.sha256(str(sample_rate).encode())
    h.update(np.ascontiguousarray(pcm).tobytes())
    return h.hexdigest()[:16]


def read_file_tags(data: Union[bytes, BinaryIO]) -> dict:
    """Embedded tags (ID3, Vorbis comments, MP4 atoms) as {lower-case key: first value}, from a file's
    bytes or a seekable binary stream."""
    try:
        import mutagen

        source = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
        source.seek(0)
        f = mutagen.File(source, easy=True)
    except Exception:  # noqa: BLE001 - tags are optional; undecodable tags mean none
        return {}
    if f is None or not getattr(f, "tags", None):
        return {}
    tags = {}
    for key, value in f.tags.items():
        if isinstance(value, (list, tuple)):
            value = value[0] if value else ""
        tags[str(key).lower()] = str(value)
    return tags


def sidecar_uris(uri: str) -> dict:
    """The sidecar URIs a song may have: NAME.json, NAME.txt, NAME.lrc beside it."""
    stem, _ = posixpath.splitext(uri)
    return {"json": stem + ".json", "txt": stem + ".txt", "lrc": stem + ".lrc"}


def read_sidecar_json(uri: str) -> dict:
    """The sidecar NAME.json of the song at ``uri`` ({} when there is none).

    One that exists but is not a JSON object raises ValueError: a mislabeled song is worse than a
    failed one.
    """
    path = sidecar_uris(uri)["json"]
    if not workdir.exists(path):
        return {}
    meta = json.loads(workdir.read_bytes(path).decode("utf-8"))
    if not isinstance(meta, dict):
        raise ValueError(f"sidecar {path} is not a JSON object")
    return meta


def read_sidecars(uri: str) -> Tuple[dict, str, str, list]:
    """(sidecar json, reference lyrics text, "txt"|"lrc"|"", lines) from the sidecars alone (json
    ``lyrics`` field, NAME.lrc, NAME.txt, in that precedence); ValueError as :func:`read_sidecar_json`."""
    meta = read_sidecar_json(uri)
    fields = reference.reference_fields(reference.sidecar_lyrics(meta, sidecar_uris(uri)))
    return (meta, fields.get("reference_lyrics", ""), fields.get("reference_lyrics_format", ""),
            fields.get("reference_lyrics_lines", []))


def lyric_sources(song: Song, meta: dict, stream: BinaryIO) -> dict:
    """{source name: text} of every place the song's lyrics are found: the table join's text (left on
    ``song.source``), the sidecars and the file's tags (:mod:`transforms.decode.reference`)."""
    found = reference.sidecar_lyrics(meta, sidecar_uris(song.uri))
    found.update(reference.embedded_lyrics(stream))
    table = reference.table_text(song.source)
    if table:
        found["table"] = table
    return found


class DecodeFn(StageFn):
    stage = "decode"

    def process(self, song: Song, done_ids=None):
        """``done_ids``: a side input (mapping) of the content ids OUT already holds."""
        self.done_ids = done_ids if done_ids is not None else {}
        yield from super().process(song)

    def apply(self, song: Song) -> Optional[Song]:
        max_s = float(self.config.get("max_seconds", MAX_SONG_SECONDS))
        # read as far as the cut needs, never the whole file; the decoded cut a block at a time
        with workdir.open_read(song.uri) as stream, open_source(stream, song.uri, max_s) as src:
            return self._decoded(song, src, stream, max_s)

    def _decoded(self, song: Song, src: Source, stream: BinaryIO, max_s: float) -> Song:
        scan, sr = src.scan, src.sample_rate
        if scan.frames == 0:
            raise EmptyAudio("decoded zero samples (zero-length audio)")
        if not scan.finite:
            raise DecodeError("decoded samples are not finite")
        if scan.peak < SILENCE_PEAK:
            raise EmptyAudio(f"audio is digital silence (peak below {20 * np.log10(SILENCE_PEAK):.0f} dBFS)")
        song.song_id = scan.content_id
        if song.song_id in getattr(self, "done_ids", {}):
            # Same audio as a record OUT already holds: DropDuplicates records it as such.
            song.set_label("decode", {"already_in_output": True})
            return song
        if self.context.dedupe == "claims" and self.context.work_dir:
            owner = claims.claim(self.context.work_dir, song.song_id, song.uri)
            if owner != song.uri:  # another copy of this audio came first: DropDuplicates drops this one
                song.set_label("decode", {"duplicate_of": owner})
                return song
        size = stream.seek(0, io.SEEK_END)
        tags = read_file_tags(stream)
        meta = read_sidecar_json(song.uri)
        lyrics = reference.reference_fields(lyric_sources(song, meta, stream),
                                            song.source.reference_lyrics_chars if song.source else 0)
        duration = max(src.duration, scan.frames / sr)
        song.source = SourceInfo(
            uri=song.uri, size_bytes=int(size), container=src.container, codec=src.codec, sample_rate=sr,
            channels=src.channels, duration=round(duration, 3), file_tags=tags, sidecar=meta, **lyrics)
        song.artist = str(meta.get("artist") or tags.get("artist") or tags.get("albumartist") or "")
        song.title = str(meta.get("title") or tags.get("title") or
                          posixpath.splitext(posixpath.basename(song.uri))[0])
        keep = scan.frames
        if max_s and duration > max_s:
            keep = min(keep, int(max_s * sr))
            song.truncated = True
        work, fmt = self.context.work_dir, self.context.work_audio
        uris = {name: workdir.song_uri(work, song.song_id, name, fmt) for name in ("mix", "mix16k")}
        n_mix = write_work_copies(src, keep, uris["mix"], uris["mix16k"], fmt)
        song.audio.update(uris)
        song.duration = n_mix / au.CODEC_RATE  # what the codec sees fixes the frame count
        song.set_label("decode", {"source_sample_rate": sr, "source_channels": src.channels,
                                  "container": src.container, "codec": src.codec})
        return song


class DecodeAudio(StageTransform):
    """Songs (``Song(uri=...)``) in; decoded songs with ``mix`` / ``mix16k`` in the work dir out.

    ``done_ids``: an optional PCollection of the content ids OUT already holds (read on workers),
    used as a side input: a song whose audio is already there is marked for the dedupe stage.
    Flag: ``--decode_max_seconds``. Returns ``(songs, failures)``.
    """

    stage = "decode"
    fn_class = DecodeFn

    def __init__(self, config, context, done_ids=None):
        super().__init__(config, context)
        self.done_ids = done_ids

    @classmethod
    def add_options(cls, group) -> None:
        group.add_argument("--decode_max_seconds", type=float, default=MAX_SONG_SECONDS,
                           help="songs are cut to this length (the training side caps at 360 s)")

    def expand(self, pcoll):
        side = {}
        if self.done_ids is not None:
            side["done_ids"] = beam.pvalue.AsDict(self.done_ids | "IdsAsKeys" >> beam.Map(lambda k: (k, True)))
        results = pcoll | beam.ParDo(self.make_fn(), **side).with_outputs(FAILED, main="songs")
        return results.songs, results[FAILED]
