"""The IDX format of MNIST and Fashion-MNIST (LeCun, Cortes, Burges), read and written with NumPy.

An IDX file is a header and one big-endian, row-major array:

    bytes 0-1   0x00 0x00                    (the magic number's zero half)
    byte  2     type code: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
    byte  3     d, the number of dimensions
    then        d sizes, each a big-endian uint32
    then        prod(sizes) items of the type

MNIST's images are `00 00 08 03` + (N, 28, 28) uint8, its labels `00 00 08 01` + (N,) uint8.
The files are usually distributed gzipped; `read_idx` recognises gzip by its own magic bytes
(0x1f 0x8b), whatever the file is called.
"""
from __future__ import annotations

import gzip
import os
import struct
import zlib

import numpy as np

from .dataset import DataFormatError

TYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
         0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
CODES = {dt.newbyteorder("="): code for code, dt in TYPES.items()}
GZIP_MAGIC = b"\x1f\x8b"


def read_bytes(path: str) -> bytes:
    """The file's bytes, un-gzipped when it is gzip; a damaged gzip is a DataFormatError."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] != GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:     # BadGzipFile is an OSError; a cut file, EOFError
        raise DataFormatError(f"{path}: corrupt or truncated gzip file ({e})") from None


def parse_idx(raw: bytes, where: str = "<bytes>") -> np.ndarray:
    """The array held by the IDX bytes `raw` (native byte order, writable)."""
    if len(raw) < 4:
        raise DataFormatError(f"{where}: {len(raw)} bytes is too short for an IDX header (4 bytes)")
    if raw[0] != 0 or raw[1] != 0:
        raise DataFormatError(f"{where}: bad IDX magic 0x{raw[:4].hex()} (an IDX file starts "
                              f"with two zero bytes, e.g. 0x00000803 for MNIST images): not an IDX file")
    code, ndim = raw[2], raw[3]
    if code not in TYPES:
        raise DataFormatError(f"{where}: unknown IDX type code 0x{code:02x} "
                              f"(known: {', '.join(f'0x{c:02x}' for c in TYPES)})")
    start = 4 + 4 * ndim
    if len(raw) < start:
        raise DataFormatError(f"{where}: truncated IDX header: {ndim} dimensions need {start} "
                              f"bytes, the file has {len(raw)}")
    dims = struct.unpack(f">{ndim}I", raw[4:start])
    dtype = TYPES[code]
    count = int(np.prod(dims, dtype=np.int64))
    expected = start + count * dtype.itemsize
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "trailing bytes"
        raise DataFormatError(f"{where}: size mismatch ({what}): the header says {dims} "
                              f"{dtype.newbyteorder('=')} = {expected} bytes, the file has {len(raw)}")
    arr = np.frombuffer(raw, dtype, count=count, offset=start).reshape(dims)
    return arr.astype(dtype.newbyteorder("="))     # a native-order, writable copy


def read_idx(path: str) -> np.ndarray:
    """Read an IDX file (plain or gzipped)."""
    return parse_idx(read_bytes(path), where=path)


def write_idx(path: str, array: np.ndarray) -> str:
    """Write `array` as an IDX file; gzipped when `path` ends with .gz."""
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in CODES:
        raise TypeError(f"write_idx: IDX has no type for {array.dtype} "
                        f"(it stores uint8, int8, int16, int32, float32, float64)")
    code = CODES[native]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + np.ascontiguousarray(array, TYPES[code]).tobytes()
    if path.endswith(".gz"):
        raw = gzip.compress(raw, mtime=0)           # mtime=0: the same array, the same bytes
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as f:
        f.write(raw)
    return path
