"""Reading the input on workers: the songs an input names, less those OUT already holds.

The driver never pickles the song list into the job graph (Dataflow rejects graphs over ~10 MB,
about 10^5 URIs): URIs are matched with ``fileio.MatchFiles`` or read from a list file with
``ReadFromText`` on workers, and OUT's earlier records (index, failures, filtered) are read on
workers too and joined away by URI. The graph's size does not grow with the number of songs.
"""

from __future__ import annotations

import json

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems

from schemas.records import SourceInfo, Song
from transforms.core import workdir
from transforms.discover import input_kind, input_root, is_audio, is_hidden
from transforms.core.lyrics_input import join_key
from transforms.discover.lyrics_table import lyrics_table


def _exists(pattern: str) -> bool:
    """Whether anything in OUT matches ``pattern``. A folder or prefix not there yet holds nothing to
    skip; an error from the store raises (:func:`workdir.list_uris`): were it taken for "nothing", the
    run would redo and publish again every song OUT holds."""
    return bool(workdir.list_uris(pattern))


def _list_lines(text: str):
    line = text.strip()
    if line and not line.startswith("#"):
        yield line


class InputUris(beam.PTransform):
    """PBegin -> the audio URIs ``input_spec`` names (folder, glob, list file or one file), read on workers."""

    def __init__(self, input_spec: str):
        super().__init__()
        self.spec = input_spec
        self.kind = input_kind(input_spec)

    def expand(self, pbegin):
        if self.kind == "list":
            return pbegin | "ReadList" >> beam.io.ReadFromText(self.spec) | "Lines" >> beam.FlatMap(_list_lines)
        if self.kind == "file":
            return pbegin | "OneFile" >> beam.Create([self.spec])
        root = self.spec.rstrip("/") + "/"
        pattern = self.spec if self.kind == "glob" else root + "**"
        keep = ((lambda u: is_audio(u)) if self.kind == "glob"
                else (lambda u: is_audio(u) and not is_hidden(u, root)))
        return (pbegin | "Match" >> fileio.MatchFiles(pattern) | "Paths" >> beam.Map(lambda m: m.path)
                | "AudioOnly" >> beam.Filter(keep))


class DoneRecords(beam.PTransform):
    """PBegin -> (uri, song id) of every record OUT holds: its index, and its failures and drops
    unless they are to be retried. Song id is "" for failures and drops."""

    def __init__(self, output: str, retry_failed: bool = False):
        super().__init__()
        self.output = output.rstrip("/")
        self.retry_failed = retry_failed

    def expand(self, pbegin):
        parts = []
        index = FileSystems.join(self.output, "index", "*.parquet")
        if _exists(index):
            parts.append(pbegin | "ReadIndex" >> beam.io.ReadFromParquet(index, columns=["uri", "key"])
                         | "IndexPairs" >> beam.Map(lambda r: (r["uri"], r["key"])))
        finished = FileSystems.join(self.output, "_parts", "*.json")  # songs a killed run finished
        if _exists(finished):
            parts.append(pbegin | "ReadParts" >> beam.io.ReadFromText(finished)
                         | "PartPairs" >> beam.Map(lambda line: (json.loads(line)["uri"], json.loads(line)["key"])))
        for part in ("failures", "filtered") if not self.retry_failed else ():
            pattern = FileSystems.join(self.output, part, "*.jsonl")
            if _exists(pattern):
                parts.append(pbegin | f"Read_{part}" >> beam.io.ReadFromText(pattern)
                             | f"{part}Pairs" >> beam.Map(lambda line: (json.loads(line)["uri"], "")))
        if not parts:
            return pbegin | "NothingDone" >> beam.Create([])
        return parts | "AllDone" >> beam.Flatten()


def _new_only(item):
    """Songs of one join key: each input URI under it, unless OUT holds it; with the lyrics table's text
    (the first in sort order where the table has several rows for it) left in ``Song.source``."""
    _, groups = item
    uris = sorted(set(groups["input"]))
    if not uris or list(groups["done"]):
        return
    texts = sorted(groups.get("lyrics", ()))
    for uri in uris:
        source = None
        if texts:
            source = SourceInfo(uri=uri, reference_lyrics_source="table", reference_lyrics_raw=texts[0][0],
                                reference_lyrics_chars=int(texts[0][1]))
        yield Song(uri=uri, source=source)


class ReadSongs(beam.PTransform):
    """PBegin -> ``(songs to do, song ids OUT holds)``: ``Song(uri=...)`` for every input URI that OUT
    does not hold yet (a join by URI, on workers), and the content ids of OUT's records, for the decode
    stage's duplicate check (read as a side input, also on workers).

    ``lyrics_table``: a ``--lyrics_table`` path (checked here, in the driver); its rows are read on
    workers and joined to the input URIs in the same ``CoGroupByKey`` (before decode, no added
    shuffle): a song the table names carries its text in ``Song.source`` into decode."""

    def __init__(self, input_spec: str, output: str, retry_failed: bool = False, lyrics_table: str = ""):
        super().__init__()
        self.input_spec, self.output, self.retry_failed = input_spec, output, retry_failed
        self.table = lyrics_table_read(lyrics_table, input_spec)

    def expand(self, pbegin):
        uris = pbegin | "InputUris" >> InputUris(self.input_spec)
        done = pbegin | "DoneRecords" >> DoneRecords(self.output, self.retry_failed)
        groups = {"input": uris | "KeyInput" >> beam.Map(lambda u: (join_key(u), u)),
                  "done": done | "KeyDone" >> beam.Map(lambda pair: (join_key(pair[0]), pair[1]))}
        if self.table is not None:
            groups["lyrics"] = pbegin | "LyricsTable" >> self.table
        songs = groups | "JoinDone" >> beam.CoGroupByKey() | "NewOnly" >> beam.FlatMap(_new_only)
        done_ids = done | "DoneIds" >> beam.FlatMap(lambda pair: [pair[1]] if pair[1] else [])
        return songs, done_ids


def lyrics_table_read(path: str, input_spec: str):
    """The table's read (None without a table); a relative ``path`` column starts at the input's root."""
    return lyrics_table(path, input_root(input_spec)) if path else None


__all__ = ["ReadSongs", "InputUris", "DoneRecords"]
