"""tinygan.data: IDX / CIFAR / folder readers, downloads, the shipped subset, toys, the loader.

Every file a test reads is written by the test; downloads go to an HTTP server on 127.0.0.1
that the test starts and stops. No test touches the real network: TINYGAN_OFFLINE is set
for all of them except the download tests, which point every mirror at the local server.
"""
import functools
import gzip
import hashlib
import http.server
import io
import itertools
import json
import os
import re
import socket
import struct
import tarfile
import threading

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tinygan import data
from tinygan.data import cifar, download as dl, mnist, toys
from tinygan.data import (ChecksumError, DataFormatError, DataLoader, DataNotFoundError, Dataset,
                          DownloadError)


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """A fresh cache directory per test, and no network unless a test allows it."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("TINYGAN_DATA", str(cache))
    monkeypatch.setenv("TINYGAN_OFFLINE", "1")
    return cache


def write_mnist_like(folder, n=12, split="train", gz=True, seed=0):
    """Random 28×28 digits and labels written as the two IDX files of `split`."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    img_stem, lab_stem = mnist.SPLITS[split]
    ext = ".gz" if gz else ""
    data.write_idx(os.path.join(folder, img_stem + ext), images)
    data.write_idx(os.path.join(folder, lab_stem + ext), labels)
    return images, labels


# --------------------------------------------------------------------------------------------
# IDX
# --------------------------------------------------------------------------------------------

def test_idx_reads_hand_built_bytes(tmp_path):
    """An oracle independent of write_idx: the header assembled byte by byte, as the spec says."""
    pixels = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    raw = bytes([0, 0, 0x08, 3]) + struct.pack(">III", 2, 3, 4) + pixels.tobytes()
    (tmp_path / "a-idx3-ubyte").write_bytes(raw)
    np.testing.assert_array_equal(data.read_idx(str(tmp_path / "a-idx3-ubyte")), pixels)

    ints = np.array([1, -2, 300000], dtype=np.int32)
    raw = bytes([0, 0, 0x0C, 1]) + struct.pack(">I", 3) + ints.astype(">i4").tobytes()
    (tmp_path / "b.gz").write_bytes(gzip.compress(raw))
    got = data.read_idx(str(tmp_path / "b.gz"))
    assert got.dtype == np.int32 and got.dtype.isnative
    np.testing.assert_array_equal(got, ints)


@settings(max_examples=20, deadline=None)
@given(shape=st.lists(st.integers(0, 5), min_size=1, max_size=4),
       dtype=st.sampled_from(["uint8", "int8", "int16", "int32", "float32", "float64"]),
       gz=st.booleans(), seed=st.integers(0, 2**16))
def test_idx_round_trip(tmp_path_factory, shape, dtype, gz, seed):
    rng = np.random.default_rng(seed)
    a = (rng.standard_normal(shape) * 100).astype(dtype)
    path = str(tmp_path_factory.mktemp("idx") / ("x.idx" + (".gz" if gz else "")))
    data.write_idx(path, a)
    with open(path, "rb") as f:
        assert (f.read(2) == b"\x1f\x8b") == gz
    b = data.read_idx(path)
    assert b.dtype == a.dtype and b.shape == a.shape
    np.testing.assert_array_equal(a, b)


def test_idx_rejects_unsupported_dtype(tmp_path):
    with pytest.raises(TypeError, match="int64"):
        data.write_idx(str(tmp_path / "x"), np.zeros(3, np.int64))


@pytest.mark.parametrize("gz", [False, True])
def test_idx_errors(tmp_path, gz):
    good = tmp_path / ("good" + (".gz" if gz else ""))
    data.write_idx(str(good), np.zeros((4, 28, 28), np.uint8))
    raw = data.idx.read_bytes(str(good))

    def write(name, content):
        p = tmp_path / name
        p.write_bytes(gzip.compress(content) if gz else content)
        return str(p)

    with pytest.raises(DataFormatError, match="bad IDX magic"):
        data.read_idx(write("magic", b"\x01\x02" + raw[2:]))
    with pytest.raises(DataFormatError, match=r"size mismatch \(truncated\)"):
        data.read_idx(write("short", raw[:-5]))
    with pytest.raises(DataFormatError, match=r"size mismatch \(trailing bytes\)"):
        data.read_idx(write("long", raw + b"\0"))
    with pytest.raises(DataFormatError, match="too short"):
        data.read_idx(write("tiny", b"\0\0"))
    with pytest.raises(DataFormatError, match="truncated IDX header"):
        data.read_idx(write("header", raw[:9]))
    with pytest.raises(DataFormatError, match="unknown IDX type code 0x07"):
        data.read_idx(write("code", b"\0\0\x07\x01" + raw[4:]))


def test_truncated_gzip_is_a_clear_error(tmp_path):
    p = tmp_path / "cut.gz"
    data.write_idx(str(p), np.arange(1000, dtype=np.int32))
    p.write_bytes(p.read_bytes()[:-20])
    with pytest.raises(DataFormatError, match="corrupt or truncated gzip"):
        data.read_idx(str(p))


# --------------------------------------------------------------------------------------------
# MNIST / Fashion-MNIST from a folder
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [False, True])
def test_mnist_from_root(tmp_path, gz):
    images, labels = write_mnist_like(str(tmp_path), n=12, gz=gz)
    ds = data.load("mnist", root=str(tmp_path))
    assert ds.name == "mnist" and ds.kind == "image"
    assert ds.shape == (12, 1, 28, 28) and ds.x.shape == (12, 1, 28, 28)
    assert ds.x.dtype == np.float32
    np.testing.assert_array_equal(ds.x[:, 0], images / np.float32(127.5) - 1)
    np.testing.assert_array_equal(ds.labels, labels)
    assert ds.labels.dtype == np.int64 and ds.num_classes == 10


def test_mnist_test_split_and_subfolder(tmp_path):
    images, labels = write_mnist_like(str(tmp_path / "mnist"), n=5, split="test")
    ds = data.load("mnist", root=str(tmp_path), split="test")
    np.testing.assert_array_equal(ds.data[:, 0], images)
    with pytest.raises(ValueError, match="unknown split"):
        data.load("mnist", root=str(tmp_path), split="val")


def test_fashion_mnist_from_root(tmp_path):
    images, labels = write_mnist_like(str(tmp_path), n=7, gz=False)
    ds = data.load("fashion-mnist", root=str(tmp_path))
    assert ds.name == "fashion-mnist" and ds.shape == (7, 1, 28, 28)
    assert ds.classes[0] == "T-shirt/top" and ds.num_classes == 10


def test_mnist_missing_files_say_where_to_put_them(tmp_path):
    where = re.escape(str(tmp_path))
    with pytest.raises(DataNotFoundError, match=f"train-images-idx3-ubyte.gz .* in {where}"):
        data.load("mnist", root=str(tmp_path))


def test_mnist_count_mismatch(tmp_path):
    write_mnist_like(str(tmp_path), n=6)
    data.write_idx(str(tmp_path / "train-labels-idx1-ubyte.gz"), np.zeros(5, np.uint8))
    with pytest.raises(DataFormatError, match="6 images but .* 5 labels"):
        data.load("mnist", root=str(tmp_path))


def test_mnist_bad_label(tmp_path):
    write_mnist_like(str(tmp_path), n=3)
    data.write_idx(str(tmp_path / "train-labels-idx1-ubyte.gz"), np.array([1, 2, 10], np.uint8))
    with pytest.raises(DataFormatError, match="label 10"):
        data.load("mnist", root=str(tmp_path))


# --------------------------------------------------------------------------------------------
# The shipped subset and the offline fallback
# --------------------------------------------------------------------------------------------

def test_shipped_subset():
    ds = data.load("mnist-subset")
    assert ds.shape == (5000, 1, 28, 28)
    x = ds.x
    assert x.dtype == np.float32 and x.min() == -1.0 and x.max() == 1.0
    assert np.array_equal(np.bincount(ds.labels, minlength=10), np.full(10, 500))
    # Real digits: mostly black background, ~13% ink (MNIST's mean pixel is 0.13 of 255),
    # and the ink is centred (the border rows are almost empty).
    assert -0.8 < x.mean() < -0.65
    assert (x[:, :, :2] > 0).mean() < 0.01
    per_class = np.stack([x[ds.labels == c].mean(0) for c in range(10)])
    assert np.corrcoef(per_class.reshape(10, -1)).min() < 0.9      # classes differ


def test_mnist_offline_falls_back_to_subset_with_a_notice(capsys):
    ds = data.load("mnist")
    assert ds.name == "mnist" and ds.shape == (5000, 1, 28, 28)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "5,000" in err and "TINYGAN_OFFLINE" in err


def test_fashion_mnist_offline_is_a_clear_error(isolated_cache):
    with pytest.raises(DataNotFoundError, match="put train-images-idx3-ubyte.gz and .* in " +
                       re.escape(str(isolated_cache / "fashion-mnist"))):
        data.load("fashion-mnist")


def test_unknown_name_lists_known_ones():
    with pytest.raises(ValueError, match="did you mean mnist.*known: mnist, mnist-subset, "
                       "fashion-mnist, cifar10, folder:PATH, ring8, grid25, swissroll"):
        data.load("mnsit")


# --------------------------------------------------------------------------------------------
# Downloads against a local HTTP server
# --------------------------------------------------------------------------------------------

class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, fmt, *args):            # record instead of printing
        self.server.requests.append(self.path)

    def do_GET(self):
        if self.path == "/cut":                   # promises 1000 bytes, sends 10, hangs up
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"0123456789")
            return
        super().do_GET()


@pytest.fixture
def server(tmp_path, monkeypatch):
    """(folder served, base URL, request log); the server stops with the test, or after 60 s."""
    monkeypatch.delenv("TINYGAN_OFFLINE")
    served = tmp_path / "served"
    served.mkdir()
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Handler, directory=str(served)))
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    watchdog = threading.Timer(60, httpd.shutdown)
    watchdog.daemon = True
    watchdog.start()
    try:
        yield served, f"http://127.0.0.1:{httpd.server_port}/", httpd.requests
    finally:
        watchdog.cancel()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def _md5(path):
    return "md5:" + hashlib.md5(path.read_bytes()).hexdigest()


def _closed_port_url():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()                                      # nothing listens there now: refused
    return f"http://127.0.0.1:{port}/"


def test_download_verifies_and_is_atomic(server, tmp_path):
    served, url, requests = server
    payload = os.urandom(3000)
    (served / "blob.bin").write_bytes(payload)
    dest = tmp_path / "out" / "blob.bin"
    good = "sha256:" + hashlib.sha256(payload).hexdigest()

    with pytest.raises(ChecksumError, match="checksum mismatch"):
        dl.download(url + "blob.bin", str(dest), checksum="md5:" + "0" * 32)
    assert not dest.exists() and os.listdir(dest.parent) == []      # no half file, no .part

    assert dl.download(url + "blob.bin", str(dest), checksum=good) == str(dest)
    assert dest.read_bytes() == payload
    dl.verify(str(dest), good)
    with pytest.raises(ChecksumError):
        dl.verify(str(dest), "sha256:" + "1" * 64)

    with pytest.raises(DownloadError, match="HTTP 404"):
        dl.download(url + "missing.bin", str(tmp_path / "m"))
    with pytest.raises(DownloadError, match="after 10 of 1000 bytes"):
        dl.download(url + "cut", str(tmp_path / "c"))
    assert not (tmp_path / "m").exists() and not (tmp_path / "c").exists()
    with pytest.raises(DownloadError):
        dl.download(_closed_port_url() + "x", str(tmp_path / "x"), timeout=5)
    with pytest.raises(ValueError, match="md5:<hex>"):
        dl.download(url + "blob.bin", str(tmp_path / "y"), checksum="crc32:1234")


def test_fetch_tries_mirrors_and_keeps_good_copies(server, tmp_path):
    served, url, requests = server
    (served / "a.bin").write_bytes(b"hello")
    files = {"a.bin": _md5(served / "a.bin")}
    folder = tmp_path / "dl"
    paths = dl.fetch(files, [_closed_port_url(), url], str(folder), timeout=5)
    assert paths["a.bin"] == str(folder / "a.bin") and (folder / "a.bin").read_bytes() == b"hello"
    n = len(requests)
    dl.fetch(files, [url], str(folder))                # already there and verified: no request
    assert len(requests) == n
    (folder / "a.bin").write_bytes(b"damaged")         # a damaged copy is fetched again
    dl.fetch(files, [url], str(folder))
    assert (folder / "a.bin").read_bytes() == b"hello" and len(requests) == n + 1
    with pytest.raises(ChecksumError):
        dl.fetch({"a.bin": "md5:" + "f" * 32}, [url], str(tmp_path / "dl2"))
    with pytest.raises(DownloadError, match="could not download b.bin"):
        dl.fetch({"b.bin": files["a.bin"]}, [url], str(tmp_path / "dl3"))


def test_load_mnist_downloads_into_the_cache(server, monkeypatch, isolated_cache):
    served, url, requests = server
    images, labels = write_mnist_like(str(served), n=9)
    names = [s + ".gz" for s in mnist.SPLITS["train"]]
    monkeypatch.setitem(mnist.SOURCES["mnist"], "mirrors", [url])
    monkeypatch.setitem(mnist.SOURCES["mnist"], "files", {n: _md5(served / n) for n in names})
    ds = data.load("mnist")
    assert ds.shape == (9, 1, 28, 28)
    np.testing.assert_array_equal(ds.data[:, 0], images)
    np.testing.assert_array_equal(ds.labels, labels)
    assert sorted(os.listdir(isolated_cache / "mnist")) == sorted(names)
    n = len(requests)
    data.load("mnist")                                  # served from the cache
    assert len(requests) == n


def test_load_mnist_checksum_mismatch_is_an_error(server, monkeypatch, isolated_cache):
    served, url, _ = server
    write_mnist_like(str(served), n=4)
    names = [s + ".gz" for s in mnist.SPLITS["train"]]
    monkeypatch.setitem(mnist.SOURCES["mnist"], "mirrors", [url])
    monkeypatch.setitem(mnist.SOURCES["mnist"], "files", {n: "md5:" + "0" * 32 for n in names})
    with pytest.raises(ChecksumError, match="checksum mismatch"):
        data.load("mnist")
    assert not os.path.exists(isolated_cache / "mnist" / names[0])


def test_load_mnist_unreachable_mirror_falls_back(monkeypatch, capsys):
    monkeypatch.delenv("TINYGAN_OFFLINE")
    monkeypatch.setitem(mnist.SOURCES["mnist"], "mirrors", [_closed_port_url()])
    ds = data.load("mnist")
    assert ds.shape == (5000, 1, 28, 28)
    assert "using the 5,000 real digits" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# CIFAR-10 binary records
# --------------------------------------------------------------------------------------------

def write_cifar_batch(path, n, seed):
    """n records: label byte, then the R, G and B planes; returns (images NCHW, labels)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    with open(path, "wb") as f:
        for img, lab in zip(images, labels):
            f.write(bytes([lab]) + img[0].tobytes() + img[1].tobytes() + img[2].tobytes())
    return images, labels


def test_cifar10_from_bin_files_and_archive(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    parts = [write_cifar_batch(folder / f"data_batch_{i}.bin", 3, seed=i) for i in range(1, 6)]
    test_images, test_labels = write_cifar_batch(folder / "test_batch.bin", 4, seed=9)
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])

    ds = data.load("cifar10", root=str(tmp_path))
    assert ds.name == "cifar10" and ds.shape == (15, 3, 32, 32) and ds.classes[0] == "airplane"
    np.testing.assert_array_equal(ds.data, images)          # channel 0 is the red plane
    np.testing.assert_array_equal(ds.labels, labels)
    assert ds.x.min() >= -1 and ds.x.max() <= 1
    np.testing.assert_array_equal(data.load("cifar10", root=str(tmp_path), split="test").data,
                                  test_images)

    archive_dir = tmp_path / "archive"
    archive_dir.mkdir()
    with tarfile.open(archive_dir / cifar.ARCHIVE, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-bin")
    ds2 = data.load("cifar10", root=str(archive_dir))
    np.testing.assert_array_equal(ds2.data, images)
    np.testing.assert_array_equal(ds2.labels, labels)


def test_cifar10_errors(tmp_path):
    for i in range(1, 5):
        write_cifar_batch(tmp_path / f"data_batch_{i}.bin", 2, seed=i)
    with pytest.raises(DataNotFoundError, match="found only data_batch_1.bin.*data_batch_4.bin"):
        data.load("cifar10", root=str(tmp_path))
    write_cifar_batch(tmp_path / "data_batch_5.bin", 2, seed=5)
    with open(tmp_path / "data_batch_5.bin", "ab") as f:
        f.write(b"\0" * 100)                               # a partial record
    with pytest.raises(DataFormatError, match="not a whole number of 3073-byte"):
        data.load("cifar10", root=str(tmp_path))
    raw = bytearray((tmp_path / "data_batch_4.bin").read_bytes())
    raw[cifar.RECORD] = 12                                 # second record's label
    (tmp_path / "data_batch_5.bin").write_bytes(bytes(raw))
    with pytest.raises(DataFormatError, match="record 1 has label 12"):
        data.load("cifar10", root=str(tmp_path))

    cut = tmp_path / "cut"
    cut.mkdir()
    with tarfile.open(cut / cifar.ARCHIVE, "w:gz") as tar:
        tar.add(tmp_path / "data_batch_1.bin", arcname="cifar-10-batches-bin/data_batch_1.bin")
    with pytest.raises(DataFormatError, match="lacks data_batch_2.bin"):
        data.load("cifar10", root=str(cut))
    (cut / cifar.ARCHIVE).write_bytes((cut / cifar.ARCHIVE).read_bytes()[:50])
    with pytest.raises(DataFormatError, match="corrupt or truncated archive"):
        data.load("cifar10", root=str(cut))


def test_cifar10_offline_says_where_to_put_files(isolated_cache):
    with pytest.raises(DataNotFoundError, match="put cifar-10-binary.tar.gz .* in " +
                       re.escape(str(isolated_cache / "cifar10"))):
        data.load("cifar10")


# --------------------------------------------------------------------------------------------
# folder:PATH
# --------------------------------------------------------------------------------------------

def test_folder_of_mixed_images(tmp_path):
    from PIL import Image
    (tmp_path / "sub").mkdir()
    Image.new("RGB", (40, 30), (255, 0, 0)).save(tmp_path / "a.png")
    Image.new("L", (20, 20), 255).save(tmp_path / "b.png")                 # greyscale
    Image.new("RGB", (50, 70), (0, 0, 255)).save(tmp_path / "sub" / "c.jpg", quality=95)
    Image.new("RGBA", (16, 16), (0, 255, 0, 128)).save(tmp_path / "d.png")  # alpha dropped
    Image.new("P", (8, 12), 0).save(tmp_path / "e.PNG")
    (tmp_path / "notes.txt").write_text("not an image")

    ds = data.load(f"folder:{tmp_path}", size=16)
    assert ds.name == f"folder:{tmp_path}" and ds.labels is None
    assert ds.shape == (5, 3, 16, 16) and ds.x.dtype == np.float32
    x = ds.x
    assert x.min() >= -1 and x.max() <= 1
    # sorted order a, b, d, e, sub/c; constant images stay constant through crop + resize
    def solid(r, g, b):
        return np.broadcast_to(np.array([r, g, b], np.float32)[:, None, None], (3, 16, 16))
    np.testing.assert_array_equal(x[0], solid(1, -1, -1))
    np.testing.assert_array_equal(x[1], solid(1, 1, 1))       # grey 255 → white RGB
    np.testing.assert_array_equal(x[2], solid(-1, 1, -1))
    assert np.abs(x[4] - solid(-1, -1, 1)).max() < 0.05       # JPEG is lossy

    assert data.load(f"folder:{tmp_path}").shape == (5, 3, 64, 64)             # default size 64


def test_folder_of_greyscale_images_has_one_channel(tmp_path):
    from PIL import Image
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (8, 8), dtype=np.uint8)
    Image.fromarray(pixels, "L").save(tmp_path / "x.png")
    Image.new("L", (30, 10), 0).save(tmp_path / "y.png")
    ds = data.load(f"folder:{tmp_path}", size=8)
    assert ds.shape == (2, 1, 8, 8)
    np.testing.assert_array_equal(ds.data[0, 0], pixels)       # already 8×8: kept exactly
    assert np.all(ds.x[1] == -1)


def test_folder_path_may_start_with_a_tilde(tmp_path, monkeypatch):
    """`--data folder:~/faces`: the shell leaves that ~ alone, so the loader expands it."""
    from PIL import Image
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "faces").mkdir()
    Image.new("RGB", (12, 12), (255, 0, 0)).save(tmp_path / "faces" / "a.png")
    ds = data.load("folder:~/faces", size=8)
    # the name a run records is where the images were, so a resume finds the same folder
    assert ds.shape == (1, 3, 8, 8) and ds.name == f"folder:{tmp_path / 'faces'}"
    assert data.canonical_name("folder:~/faces") == ds.name
    assert data.canonical_name("mnist") == "mnist"


def test_folder_size_in_the_name(tmp_path, monkeypatch):
    """`--data folder:PATH?size=32`: the command line's way to pick the image size; the
    suffix stays in the recorded name (a resume must find the same size), except the default."""
    from PIL import Image
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "f").mkdir()
    Image.new("RGB", (50, 40), (0, 255, 0)).save(tmp_path / "f" / "a.png")
    ds = data.load("folder:~/f?size=32")
    assert ds.shape == (1, 3, 32, 32) and ds.name == f"folder:{tmp_path / 'f'}?size=32"
    assert data.canonical_name("folder:~/f?size=32") == ds.name
    assert data.canonical_name("folder:~/f?size=64") == f"folder:{tmp_path / 'f'}"
    assert data.load("folder:~/f?size=8", size=16).shape == (1, 3, 8, 8)     # the suffix wins
    for bad in ("0", "x", "", "-3"):
        with pytest.raises(ValueError, match="size must be a positive whole number"):
            data.load(f"folder:~/f?size={bad}")


def test_folder_skips_unreadable_images_with_one_warning(tmp_path):
    """A folder scraped from the web has a bad file or two: the run goes on without them."""
    from PIL import Image
    for i in range(3):
        Image.new("RGB", (20, 16), (40 * i, 0, 0)).save(tmp_path / f"ok{i}.png")
    Image.new("L", (9, 9), 7).save(tmp_path / "grey.jpg")                  # other mode and size
    (tmp_path / "junk.png").write_bytes(b"this is not an image")
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)).save(buf, "PNG")
    (tmp_path / "cut.png").write_bytes(buf.getvalue()[:2000])              # truncated PNG
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "zero.jpg").write_bytes(b"")
    (tmp_path / "sub" / "zz.webp").write_bytes(b"RIFF")
    with pytest.warns(UserWarning) as record:
        ds = data.load(f"folder:{tmp_path}", size=8)
    assert len(record) == 1
    msg = str(record[0].message)
    assert "skipped 4 unreadable image files of 8" in msg and "training on the other 4" in msg
    assert "cut.png, junk.png, sub/zero.jpg and 1 more" in msg       # sorted, the first three
    assert ds.shape == (4, 3, 8, 8)
    assert np.abs(ds.data[0].astype(int) - 7).max() <= 1          # grey.jpg, first in order, as RGB
    np.testing.assert_array_equal(ds.data[3, 0], 80)                   # ok2.png's red


def test_folder_errors(tmp_path):
    with pytest.raises(DataNotFoundError, match="no such folder"):
        data.load(f"folder:{tmp_path / 'nope'}")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("")
    with pytest.raises(DataNotFoundError, match="no images"):
        data.load(f"folder:{tmp_path / 'empty'}")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "broken.png").write_bytes(b"\x89PNG not really")
    (tmp_path / "bad" / "empty.jpg").write_bytes(b"")
    with pytest.raises(DataFormatError, match=r"none of the 2 image files .*bad.*broken\.png"):
        data.load(f"folder:{tmp_path / 'bad'}")
    with pytest.raises(ValueError, match="size"):
        data.load(f"folder:{tmp_path / 'bad'}", size=0)
    with pytest.raises(ValueError, match="needs a path"):
        data.load("folder:")


# --------------------------------------------------------------------------------------------
# 2-D toys
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, k, std", [("ring8", 8, 0.02), ("grid25", 25, 0.05)])
def test_toy_mixtures_lie_near_their_modes(name, k, std):
    n = 20000
    ds = data.load(name, n=n, seed=1)
    assert ds.shape == (n, 2) and ds.x.dtype == np.float32 and ds.kind == "toy"
    assert ds.mode_centers.shape == (k, 2) and ds.mode_std == std and ds.num_classes == k
    d = np.linalg.norm(ds.x[:, None] - ds.mode_centers[None], axis=-1)
    nearest = d.argmin(1)
    np.testing.assert_array_equal(nearest, ds.labels)          # labels are the mode indices
    r = d.min(1)
    assert r.max() < 6 * std                                   # P(r > 6σ) = e^-18 per point
    assert abs(r.mean() / (std * np.sqrt(np.pi / 2)) - 1) < 0.03     # Rayleigh mean
    counts = np.bincount(nearest, minlength=k)
    assert np.all(np.abs(counts - n / k) < 5 * np.sqrt(n / k))
    np.testing.assert_array_equal(data.load(name, n=n, seed=1).x, ds.x)     # same seed, same points


def test_toy_centres():
    ring = toys.ring_centers()
    np.testing.assert_allclose(np.linalg.norm(ring, axis=1), 2.0)
    np.testing.assert_allclose(ring[2], [0, 2], atol=1e-12)
    grid = {tuple(c) for c in toys.grid_centers().tolist()}
    assert grid == set(itertools.product([-4.0, -2.0, 0.0, 2.0, 4.0], repeat=2))


def test_swissroll():
    ds = data.load("swissroll", n=5000)
    assert ds.shape == (5000, 2) and ds.labels is None and ds.mode_centers is None
    assert np.abs(ds.x).max() < 2.3 and np.abs(ds.x).max(0).min() > 1.6      # about [-2, 2]
    np.testing.assert_array_equal(data.load("swissroll", n=5000).x, ds.x)    # same seed, same points
    assert not np.array_equal(data.load("swissroll", n=5000, seed=1).x, ds.x)


# --------------------------------------------------------------------------------------------
# The loader
# --------------------------------------------------------------------------------------------

def index_dataset(n):
    """A toy Dataset whose sample i is (i, i) and label i % 3: batches reveal their indices."""
    pts = np.repeat(np.arange(n, dtype=np.float32)[:, None], 2, axis=1)
    return Dataset("index", pts, labels=np.arange(n) % 3)


def take(loader, k):
    return [loader.__next__() for _ in range(k)]


def ids(batch):
    return batch[0][:, 0].astype(int)


def test_loader_seed_determinism_and_epochs():
    ds = index_dataset(50)
    a, b, c = DataLoader(ds, 16, seed=3), DataLoader(ds, 16, seed=3), DataLoader(ds, 16, seed=4)
    ba, bb, bc = take(a, 9), take(b, 9), take(c, 9)
    assert all(np.array_equal(ids(x), ids(y)) for x, y in zip(ba, bb))
    assert not all(np.array_equal(ids(x), ids(y)) for x, y in zip(ba, bc))
    assert a.steps_per_epoch == 3 and a.epoch == 2
    epochs = [np.concatenate([ids(x) for x in ba[3 * e:3 * e + 3]]) for e in range(3)]
    for e in epochs:
        assert len(e) == 48 and len(set(e)) == 48              # no repeats within an epoch
    assert not np.array_equal(epochs[0], epochs[1])            # a new order every epoch
    for x, y in ba:
        assert x.dtype == np.float32 and y.dtype == np.int64
        np.testing.assert_array_equal(y, ids((x, y)) % 3)      # labels travel with samples


def test_loader_without_drop_last_covers_everything():
    ds = index_dataset(10)
    loader = data.batches(ds, 4, seed=0, drop_last=False)
    assert loader.steps_per_epoch == 3
    sizes = [len(ids(b)) for b in take(loader, 6)]
    assert sizes == [4, 4, 2, 4, 4, 2]
    loader = DataLoader(ds, 4, seed=0, drop_last=False)
    assert sorted(np.concatenate([ids(b) for b in take(loader, 3)])) == list(range(10))
    unshuffled = DataLoader(ds, 5, shuffle=False)
    assert ids(next(unshuffled)).tolist() == [0, 1, 2, 3, 4]


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 40), b=st.integers(1, 12), k=st.integers(0, 15), seed=st.integers(0, 99),
       drop_last=st.booleans())
def test_loader_resume_is_exact(n, b, k, seed, drop_last):
    if drop_last and b > n:
        with pytest.raises(ValueError, match="drop_last"):
            DataLoader(index_dataset(n), b, seed=seed)
        return
    ds = index_dataset(n)
    straight = DataLoader(ds, b, seed=seed, drop_last=drop_last)
    take(straight, k)
    state = json.loads(json.dumps(straight.state_dict()))      # it survives a JSON checkpoint
    resumed = DataLoader(ds, b, seed=12345, drop_last=drop_last)
    resumed.load_state_dict(state)
    for x, y in zip(take(straight, 8), take(resumed, 8)):
        np.testing.assert_array_equal(x[0], y[0])
        np.testing.assert_array_equal(x[1], y[1])


def test_loader_on_images_and_errors():
    ds = data.load("mnist-subset")
    x, y = next(DataLoader(ds, 32, seed=0))
    assert x.shape == (32, 1, 28, 28) and x.dtype == np.float32 and -1 <= x.min() and x.max() <= 1
    assert y.shape == (32,) and y.dtype == np.int64
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(ds, 0)
    with pytest.raises(ValueError, match="for 7 samples"):
        DataLoader(ds, 8).load_state_dict({"seed": 0, "epoch": 1, "position": 0, "num_samples": 7})
    with pytest.raises(ValueError, match="lacks"):
        DataLoader(ds, 8).load_state_dict({"seed": 0})


def test_dataset_object():
    u8 = np.array([[[[0, 255], [51, 204]]]], np.uint8)
    ds = Dataset("tiny", u8, labels=[3], classes=tuple("abcd"))
    assert ds.images is ds.x and ds.shape == (1, 1, 2, 2) and len(ds) == 1
    np.testing.assert_allclose(ds.x, [[[[-1, 1], [-0.6, 0.6]]]], rtol=0, atol=1e-6)
    assert ds.x[0, 0, 0, 0] == -1 and ds.x[0, 0, 0, 1] == 1                  # the ends exactly
    assert ds.num_classes == 4 and "tiny" in repr(ds)
    with pytest.raises(TypeError, match="uint8"):
        Dataset("bad", u8.astype(np.float32))
    with pytest.raises(ValueError, match="labels"):
        Dataset("bad", u8, labels=[1, 2])


def test_make_shapes_folder_script_writes_a_loadable_folder(tmp_path):
    """scripts/make_shapes_folder.py: the folder the README's small-folder recipe was measured on."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "make_shapes_folder", os.path.join(os.path.dirname(__file__), "..", "scripts", "make_shapes_folder.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.main([str(tmp_path / "a"), "-n", "5", "--size", "16"])
    mod.main([str(tmp_path / "b"), "-n", "5", "--size", "16"])
    a, b = data.load(f"folder:{tmp_path / 'a'}?size=16"), data.load(f"folder:{tmp_path / 'b'}?size=16")
    assert a.shape == (5, 3, 16, 16)
    np.testing.assert_array_equal(a.data, b.data)                  # seeded: the same folder
    assert a.data.reshape(5, 3, -1).std(axis=2).min() > 0          # a shape on every background
