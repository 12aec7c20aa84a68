"""Find the songs to process: a folder, a glob, or a text file of URIs.

:func:`discover` runs in the driver (the count shown in progress, and a clear
error for a missing input); the job itself reads the input on workers
(:class:`transforms.discover.read.ReadSongs`). Both go through Beam's
FileSystems, so local paths, gs:// and s3:// work alike wherever the matching
Beam extra is installed.
"""

from __future__ import annotations

from typing import List

from apache_beam.io.filesystems import FileSystems

AUDIO_EXTENSIONS = (".mp3", ".flac", ".wav", ".ogg", ".opus", ".m4a", ".aac", ".aif", ".aiff", ".wma")
LIST_EXTENSIONS = (".txt", ".lst", ".list")


def is_audio(uri: str) -> bool:
    return uri.lower().endswith(AUDIO_EXTENSIONS)


def is_hidden(uri: str, root: str = "") -> bool:
    """True when a path component below ``root`` starts with '_' or '.' (work dirs, truth stems)."""
    rel = uri[len(root):] if root and uri.startswith(root) else uri
    parts = [p for p in rel.replace("\\", "/").split("/") if p]
    return any(p.startswith(("_", ".")) for p in parts)


def _match(pattern: str) -> List[str]:
    result = FileSystems.match([pattern])[0]
    return [m.path for m in result.metadata_list]


def input_kind(input_spec: str) -> str:
    """"glob" | "list" (a text file of URIs) | "file" (one audio file) | "folder"."""
    if any(ch in input_spec for ch in "*?["):
        return "glob"
    if input_spec.lower().endswith(LIST_EXTENSIONS) and FileSystems.exists(input_spec):
        return "list"
    if FileSystems.exists(input_spec) and is_audio(input_spec):
        return "file"
    return "folder"


def input_root(input_spec: str) -> str:
    """The folder a lyrics table's relative ``path`` column starts from: the input folder; a glob's
    folder before its first wildcard; a list file's or a single audio file's folder."""
    kind = input_kind(input_spec)
    if kind == "folder":
        return input_spec.rstrip("/")
    head = input_spec[:min(input_spec.index(ch) for ch in "*?[" if ch in input_spec)] if kind == "glob" else input_spec
    return head.rsplit("/", 1)[0] if "/" in head else ""


def discover(input_spec: str) -> List[str]:
    """Sorted, de-duplicated audio URIs named by ``input_spec``.

    * a folder: every audio file below it, recursively, skipping components that
      start with ``_`` or ``.``;
    * a glob (``*``, ``?``, ``[``): every audio file it matches;
    * a text file (``.txt`` / ``.lst``): one URI per line, ``#`` comments allowed
      (listed URIs are taken as they are, whatever their extension).

    Raises FileNotFoundError when the input does not exist and ValueError when it
    names no audio at all.
    """
    if not input_spec:
        raise ValueError("--input is required: a folder, a glob, or a text file of URIs")
    if any(ch in input_spec for ch in "*?["):
        uris = [u for u in _match(input_spec) if is_audio(u)]
    elif input_spec.lower().endswith(LIST_EXTENSIONS) and FileSystems.exists(input_spec):
        with FileSystems.open(input_spec) as f:
            lines = f.read().decode("utf-8").splitlines()
        uris = [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]
    elif FileSystems.exists(input_spec) and is_audio(input_spec):
        uris = [input_spec]
    else:
        root = input_spec.rstrip("/") + "/"
        # FileSystems globs '**' recursively on local, GCS and S3 alike. A bucket has no folders, only
        # names with a prefix: a folder there exists when something is under it, at any depth.
        found = _match(root + "**")
        if not found and not FileSystems.exists(input_spec):
            raise FileNotFoundError(f"input {input_spec!r} does not exist")
        uris = [u for u in found if is_audio(u) and not is_hidden(u, root)]
    uris = sorted(set(uris))
    if not uris:
        raise ValueError(f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) found under {input_spec!r}")
    return uris
