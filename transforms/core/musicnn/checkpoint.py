"""Read a TensorFlow tensor-bundle checkpoint (``.index`` + ``.data-*``) without TensorFlow.

A bundle is two files. The ``.index`` file is an SSTable (the leveldb table
format): data blocks of prefix-compressed key/value entries, an index block
pointing at them, and a 48-byte footer. Each key is a variable name, each value
a ``BundleEntryProto`` (dtype, shape, shard id, offset, size). The empty key
holds the ``BundleHeaderProto``. The data file holds the raw little-endian
tensor bytes at the recorded offset and size. Both protobufs are decoded by
hand here (a few varint fields) so no protobuf schema or TensorFlow is needed.

Public API: ``read_checkpoint(prefix, names=None) -> {name: np.ndarray}`` and
``list_entries(prefix) -> {name: BundleEntry}``. Only what songshard's musicnn
checkpoints use is supported: one shard, uncompressed table blocks, plain
(unsliced) numeric tensors. Anything else raises ``CheckpointError``.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import Dict, Iterable, Iterator, List, Optional, Tuple

import numpy as np

# leveldb's table magic number, stored little-endian in the footer's last 8 bytes.
TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
BLOCK_TRAILER_SIZE = 5  # 1 byte compression type + 4 bytes masked crc32c

# TensorFlow DataType enum values -> numpy little-endian dtypes.
DTYPES = {1: "<f4", 2: "<f8", 3: "<i4", 4: "u1", 5: "<i2", 6: "i1", 9: "<i8", 10: "?", 19: "<f2"}


class CheckpointError(ValueError):
    """The files are not a tensor bundle this reader understands."""


@dataclass(frozen=True)
class BundleEntry:
    """Where one tensor lives: dtype code, shape, shard, byte offset and size in the data file."""

    dtype: int
    shape: Tuple[int, ...]
    shard_id: int
    offset: int
    size: int


def read_varint(buf: bytes, pos: int) -> Tuple[int, int]:
    """Decode one base-128 varint at ``pos``; return (value, next position). Raises on truncation."""
    value, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise CheckpointError("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def proto_fields(buf: bytes) -> Iterator[Tuple[int, int, object]]:
    """Yield (field number, wire type, value) for each field of a protobuf message.

    Varints come back as int, length-delimited fields as bytes, fixed32/64 as int.
    Raises ``CheckpointError`` on an unknown wire type (groups are never used here).
    """
    pos = 0
    while pos < len(buf):
        tag, pos = read_varint(buf, pos)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = read_varint(buf, pos)
        elif wire == 2:
            length, pos = read_varint(buf, pos)
            value, pos = buf[pos:pos + length], pos + length
        elif wire == 5:
            value, pos = struct.unpack_from("<I", buf, pos)[0], pos + 4
        elif wire == 1:
            value, pos = struct.unpack_from("<Q", buf, pos)[0], pos + 8
        else:
            raise CheckpointError(f"unsupported protobuf wire type {wire}")
        yield field, wire, value


def parse_shape(buf: bytes) -> Tuple[int, ...]:
    """TensorShapeProto bytes -> tuple of dims (field 2 = dim, whose field 1 = size)."""
    dims: List[int] = []
    for field, _, value in proto_fields(buf):
        if field == 2:
            size = 0
            for sub_field, _, sub_value in proto_fields(value):
                if sub_field == 1:
                    size = sub_value
            dims.append(size)
        elif field == 3 and value:
            raise CheckpointError("tensor of unknown rank")
    return tuple(dims)


def parse_entry(buf: bytes) -> BundleEntry:
    """BundleEntryProto bytes -> BundleEntry. Raises on sliced (partitioned) variables."""
    fields = {"dtype": 0, "shape": (), "shard_id": 0, "offset": 0, "size": 0}
    for field, _, value in proto_fields(buf):
        if field == 1:
            fields["dtype"] = value
        elif field == 2:
            fields["shape"] = parse_shape(value)
        elif field in (3, 4, 5):
            fields[("shard_id", "offset", "size")[field - 3]] = value
        elif field == 7:
            raise CheckpointError("sliced (partitioned) variables are not supported")
    return BundleEntry(**fields)


def block_entries(table: bytes, offset: int, size: int) -> Iterator[Tuple[bytes, bytes]]:
    """Yield (key, value) pairs of the SSTable block at ``offset`` (``size`` excludes the trailer).

    Keys are prefix-compressed against the previous key; the block ends with a
    uint32 restart array and its count, which a sequential reader skips.
    """
    if offset + size + BLOCK_TRAILER_SIZE > len(table):
        raise CheckpointError("block runs past the end of the index file")
    if table[offset + size] != 0:
        raise CheckpointError("compressed table blocks are not supported")
    block = table[offset:offset + size]
    num_restarts = struct.unpack_from("<I", block, size - 4)[0]
    end = size - 4 - 4 * num_restarts
    pos, key = 0, b""
    while pos < end:
        shared, pos = read_varint(block, pos)
        unshared, pos = read_varint(block, pos)
        value_len, pos = read_varint(block, pos)
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        yield key, block[pos:pos + value_len]
        pos += value_len


def table_items(table: bytes) -> Iterator[Tuple[bytes, bytes]]:
    """Yield every (key, value) of an SSTable held in memory, in key order."""
    if len(table) < FOOTER_SIZE:
        raise CheckpointError("index file too short for an SSTable footer")
    footer = table[-FOOTER_SIZE:]
    if struct.unpack_from("<Q", footer, FOOTER_SIZE - 8)[0] != TABLE_MAGIC:
        raise CheckpointError("bad SSTable magic number")
    _, pos = read_varint(footer, 0)  # metaindex offset (unused)
    _, pos = read_varint(footer, pos)  # metaindex size
    index_offset, pos = read_varint(footer, pos)
    index_size, _ = read_varint(footer, pos)
    for _, handle in block_entries(table, index_offset, index_size):
        data_offset, pos = read_varint(handle, 0)
        data_size, _ = read_varint(handle, pos)
        yield from block_entries(table, data_offset, data_size)


def list_entries(prefix: str) -> Dict[str, BundleEntry]:
    """Map each variable name of the bundle at ``prefix`` (path without ``.index``) to its entry.

    Raises ``FileNotFoundError`` without the index, ``CheckpointError`` when the
    bundle has several shards or is not little-endian.
    """
    with open(prefix + ".index", "rb") as f:
        table = f.read()
    entries: Dict[str, BundleEntry] = {}
    for key, value in table_items(table):
        if key == b"":
            header = {field: v for field, _, v in proto_fields(value)}
            if header.get(1, 1) != 1:
                raise CheckpointError(f"{header.get(1)} shards; only single-shard bundles are supported")
            if header.get(2, 0) != 0:
                raise CheckpointError("big-endian bundle")
            continue
        entries[key.decode("utf-8")] = parse_entry(value)
    return entries


def read_checkpoint(prefix: str, names: Optional[Iterable[str]] = None) -> Dict[str, np.ndarray]:
    """Load tensors of the bundle at ``prefix`` as {name: array} (all, or only ``names``).

    Arrays are native-endian copies with the checkpoint's dtype and shape.
    Raises ``KeyError`` for a requested name the bundle lacks and
    ``CheckpointError`` for an unsupported dtype or a size that does not match
    the shape.
    """
    entries = list_entries(prefix)
    wanted = list(entries) if names is None else list(names)
    data_path = prefix + ".data-00000-of-00001"
    out: Dict[str, np.ndarray] = {}
    with open(data_path, "rb") as f:
        for name in wanted:
            entry = entries[name]
            if entry.dtype not in DTYPES:
                raise CheckpointError(f"{name}: unsupported dtype code {entry.dtype}")
            dtype = np.dtype(DTYPES[entry.dtype])
            count = int(np.prod(entry.shape, dtype=np.int64))
            if count * dtype.itemsize != entry.size:
                raise CheckpointError(f"{name}: {entry.size} bytes for shape {entry.shape}")
            f.seek(entry.offset)
            raw = f.read(entry.size)
            if len(raw) != entry.size:
                raise CheckpointError(f"{name}: data file truncated")
            out[name] = np.frombuffer(raw, dtype=dtype).astype(dtype.newbyteorder("="))
            out[name] = out[name].reshape(entry.shape)
    return out


def bundle_prefix(folder: str) -> str:
    """The bundle prefix inside a checkpoint folder whose files are named ``.index`` / ``.data-*``."""
    return os.path.join(folder, "")
