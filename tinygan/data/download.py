"""Downloads with the standard library only: into a cache, atomically, checksum-verified.

    cache directory   $TINYGAN_DATA, else ~/.cache/tinygan (one sub-folder per dataset)
    offline switch    TINYGAN_OFFLINE=1 makes every download fail at once, without a request
    checksums         "md5:<hex>" or "sha256:<hex>" (MNIST and CIFAR publish MD5 sums)

A file is streamed to `<name>.part<pid>` next to its destination, hashed on the way, and
renamed onto the destination only once its size and checksum are right: a cut connection
or a bad mirror never leaves a half file where a good one is expected.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.request

from .dataset import ChecksumError

CHUNK = 1 << 20


class DownloadError(OSError):
    """The network failed us: no connection, an HTTP error, a connection cut short.
    `reason` is the short cause ("Name or service not known", "HTTP 404 Not Found")."""

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.reason = reason or message


def cache_dir() -> str:
    folder = os.environ.get("TINYGAN_DATA") or os.path.join("~", ".cache", "tinygan")
    return os.path.expandvars(os.path.expanduser(folder))


def offline() -> bool:
    return os.environ.get("TINYGAN_OFFLINE", "").strip().lower() not in ("", "0", "false", "no")


def _algorithm(checksum: str) -> tuple[str, str]:
    algo, _, digest = checksum.partition(":")
    if algo not in ("md5", "sha256") or not digest:
        raise ValueError(f"checksum must be 'md5:<hex>' or 'sha256:<hex>', got {checksum!r}")
    return algo, digest.lower()


def file_checksum(path: str, algorithm: str = "sha256") -> str:
    """`algorithm:hexdigest` of a file, read in 1 MiB chunks."""
    h = hashlib.new(algorithm, usedforsecurity=False)     # an integrity check, also on FIPS hosts
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return f"{algorithm}:{h.hexdigest()}"


def verify(path: str, checksum: str) -> None:
    """Raise ChecksumError unless the file at `path` has `checksum`."""
    algo, digest = _algorithm(checksum)
    got = file_checksum(path, algo)
    if got != f"{algo}:{digest}":
        raise ChecksumError(f"{path}: checksum mismatch: expected {algo}:{digest}, got {got}")


def download(url: str, dest: str, checksum: str | None = None, timeout: float = 20.0,
             progress: bool | None = None) -> str:
    """Fetch `url` into the file `dest` (atomically, verified against `checksum`); returns dest.

    Raises DownloadError for network failures and ChecksumError for a wrong file; in both
    cases `dest` is left as it was and no temporary file remains.
    """
    if offline():
        raise DownloadError(f"{url}: not downloaded, TINYGAN_OFFLINE is set", "TINYGAN_OFFLINE is set")
    algo, digest = _algorithm(checksum) if checksum else ("sha256", None)
    tmp = f"{dest}.part{os.getpid()}"
    try:
        os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
        with urllib.request.urlopen(url, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            from tqdm import tqdm
            show = sys.stderr.isatty() if progress is None else progress
            h, received = hashlib.new(algo, usedforsecurity=False), 0
            with open(tmp, "wb") as f, tqdm(total=total, unit="B", unit_scale=True, disable=not show,
                                            desc=os.path.basename(dest)) as bar:
                for chunk in iter(lambda: response.read(CHUNK), b""):
                    f.write(chunk)
                    h.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        if total is not None and received != total:
            raise DownloadError(f"{url}: connection closed after {received} of {total} bytes",
                                "connection cut short")
        if digest is not None and h.hexdigest() != digest:
            raise ChecksumError(f"{url}: checksum mismatch: expected {algo}:{digest}, "
                                f"got {algo}:{h.hexdigest()} ({received} bytes); the file was not kept")
        os.replace(tmp, dest)
    except urllib.error.HTTPError as e:
        e.close()                                       # it holds the open response
        raise DownloadError(f"{url}: HTTP {e.code} {e.reason}", f"HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        raise DownloadError(f"{url}: {e.reason}", str(e.reason)) from None
    except (OSError, http.client.HTTPException) as e:
        if isinstance(e, DownloadError):
            raise
        raise DownloadError(f"{url}: {type(e).__name__}: {e}", f"{type(e).__name__}: {e}") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return dest


def fetch(files: dict[str, str], mirrors: list[str], folder: str, timeout: float = 20.0,
          progress: bool | None = None) -> dict[str, str]:
    """Make sure `folder` holds each of `files` ({filename: checksum}) with the right checksum,
    downloading the missing or damaged ones from the first mirror that serves them.

    Returns {filename: path}. Raises ChecksumError when a mirror served a wrong file and no
    other served a right one, else DownloadError listing why each mirror failed.
    """
    paths = {}
    for name, checksum in files.items():
        path = os.path.join(folder, name)
        if os.path.exists(path):
            try:
                verify(path, checksum)
                paths[name] = path
                continue
            except ChecksumError:
                pass                                    # damaged copy: download it again
        errors: list[Exception] = []
        for mirror in mirrors:
            try:
                paths[name] = download(mirror.rstrip("/") + "/" + name, path, checksum,
                                       timeout=timeout, progress=progress)
                break
            except (DownloadError, ChecksumError) as e:
                errors.append(e)
        else:
            bad = [e for e in errors if isinstance(e, ChecksumError)]
            if bad:
                raise bad[0]
            reasons = "; ".join(str(e) for e in errors) or "no mirror given"
            raise DownloadError(f"could not download {name}: {reasons}",
                                errors[0].reason if errors else "no mirror given")
    return paths
