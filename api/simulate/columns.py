"""Arrow string columns built straight from their buffers, for the few distinct names a grid repeats."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def _string_array(offsets: np.ndarray, data: np.ndarray | bytes) -> pa.StringArray:
    return pa.StringArray.from_buffers(len(offsets) - 1, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data))


def repeat_names(codes: np.ndarray, names: list[str]) -> pa.StringArray:
    """names[codes], gathered with one repeat and one add over the bytes (3x a take)."""
    encoded = [n.encode() for n in names]
    pool = np.frombuffer(b"".join(encoded), np.uint8)
    name_len = np.array([len(e) for e in encoded], np.int64)
    name_start = np.concatenate([[0], np.cumsum(name_len)[:-1]]).astype(np.int64)
    lengths = name_len[codes]
    offsets = np.zeros(len(codes) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    shift = np.repeat(name_start[codes] - offsets[:-1], lengths)
    return _string_array(offsets, pool[shift + np.arange(offsets[-1])])


def tile_names(names: list[str], times: int) -> pa.StringArray:
    """names repeated `times` times in order: the row layout of a full (hours x doors) grid."""
    encoded = [n.encode() for n in names]
    pattern = b"".join(encoded)
    ends = np.cumsum([len(e) for e in encoded], dtype=np.int64)
    offsets = np.zeros(len(names) * times + 1, np.int64)
    offsets[1:] = (np.arange(times, dtype=np.int64)[:, None] * len(pattern) + ends[None, :]).ravel()
    return _string_array(offsets, pattern * times)


def tile_runs(names: list[str], counts: list[int], times: int) -> pa.StringArray:
    """Each of names[i] counts[i] times, that pattern repeated `times` times: the store column of a
    (hours x doors) grid of several stores, without a Python string per door."""
    encoded = [n.encode() for n in names]
    pattern = b"".join(e * c for e, c in zip(encoded, counts, strict=True))
    lengths = np.repeat(np.array([len(e) for e in encoded], np.int64), counts)
    ends = np.cumsum(lengths, dtype=np.int64)
    offsets = np.zeros(len(lengths) * times + 1, np.int64)
    offsets[1:] = (np.arange(times, dtype=np.int64)[:, None] * len(pattern) + ends[None, :]).ravel()
    return _string_array(offsets, pattern * times)
