"""Two-domain datasets: the offline tasks made from the shipped digits, and the paired:/unpaired:
folder formats, bad input included."""
import os

import numpy as np
import pytest
from PIL import Image

from tinygan import data
from tinygan.cli import main
from tinygan.data import DataFormatError, DataLoader, DataNotFoundError
from tinygan.data import digit_domains as dd
from tinygan.data.pairs import unpaired_rows


@pytest.fixture(scope="module")
def digits():
    ds = data.load("mnist-subset")
    return dd.pad_to(ds.data, 32), ds.labels


def test_edges2mnist_pairs_each_digit_with_its_outline(digits):
    u8, labels = digits
    ds = data.load("edges2mnist")
    train, test = dd.held_out(5000, 500, seed=0)
    assert ds.shape == (4500, 2, 32, 32) and ds.test.shape == (500, 2, 32, 32)
    assert (ds.domains, ds.paired, ds.channels, ds.scale) == (("edges", "digits"), True, 1, 1)
    np.testing.assert_array_equal(ds.data[:, 1:], u8[train])
    np.testing.assert_array_equal(ds.data[:, :1], dd.outline(u8[train]))
    np.testing.assert_array_equal(ds.test.data[:, 1:], u8[test])
    np.testing.assert_array_equal(ds.labels, labels[train])
    np.testing.assert_array_equal(ds.test.labels, labels[test])
    assert ds.labels_b is None and ds.test.test is None
    np.testing.assert_array_equal(data.load("edges2mnist").data, ds.data)     # deterministic


def test_mnist2thick_draws_each_domain_from_its_own_half(digits):
    u8, labels = digits
    ds = data.load("mnist2thick")
    train, test = dd.held_out(5000, 500, seed=0)
    half_a, half_b = dd.halves(train, seed=0)
    assert not ds.paired and ds.domains == ("digits", "thick digits") and len(ds) == 2250
    ra, rb = unpaired_rows(half_a, half_b)
    np.testing.assert_array_equal(ds.data[:, :1], u8[half_a[ra]])
    np.testing.assert_array_equal(ds.data[:, 1:], dd.thicken(u8[half_b[rb]]))
    np.testing.assert_array_equal(ds.labels, labels[half_a[ra]])
    np.testing.assert_array_equal(ds.labels_b, labels[half_b[rb]])
    assert set(half_a[ra]) == set(half_a) and not set(half_a) & set(half_b)   # no pair seen
    assert ds.test.paired and len(ds.test) == 500
    np.testing.assert_array_equal(ds.test.data[:, 1:], dd.thicken(u8[test]))


def test_mnist_x4_stores_8x8_inputs_losslessly_at_32x32(digits):
    u8, _ = digits
    ds = data.load("mnist_x4")
    train, _ = dd.held_out(5000, 500, seed=0)
    assert ds.scale == 4 and ds.shape == (4500, 2, 32, 32)
    np.testing.assert_array_equal(ds.data[:, :1, ::4, ::4], dd.downscale(u8[train], 4))
    np.testing.assert_array_equal(ds.data[:, :1], ds.data[:, :1, ::4, ::4].repeat(4, 2).repeat(4, 3))
    with pytest.raises(ValueError, match="only AtoB"):
        data.load("mnist_x4", direction="BtoA")
    with pytest.raises(ValueError, match="size=64 applies only to paired:PATH"):
        data.load("mnist_x4", size=64)


def test_direction_btoa_swaps_the_domains():
    ab, ba = data.load("edges2mnist"), data.load("edges2mnist", direction="BtoA")
    assert ba.domains == ("digits", "edges") and ba.test.domains == ("digits", "edges")
    np.testing.assert_array_equal(ba.data[:, :1], ab.data[:, 1:])
    np.testing.assert_array_equal(ba.test.data[:, 1:], ab.test.data[:, :1])
    thick = data.load("mnist2thick", direction="BtoA")       # unpaired: the labels travel too
    np.testing.assert_array_equal(thick.labels, data.load("mnist2thick").labels_b)
    with pytest.raises(ValueError, match="AtoB or BtoA"):
        data.load("edges2mnist", direction="sideways")


def test_a_two_domain_dataset_batches_like_any_other():
    ds = data.load("edges2mnist")
    x, y = next(DataLoader(ds, 8, seed=0))
    assert x.shape == (8, 2, 32, 32) and x.dtype == np.float32 and y.shape == (8,)
    assert x.min() >= -1 and x.max() <= 1


# -- user folders ---------------------------------------------------------------------------
def _save(path, array):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path)
    return array


def _pair(rng, h=16, rgb=False):
    shape = (h, 2 * h, 3) if rgb else (h, 2 * h)
    return rng.integers(0, 256, shape, dtype=np.uint8)


def test_paired_folder_splits_each_image_into_its_halves(tmp_path):
    rng = np.random.default_rng(0)
    train = [_save(str(tmp_path / "train" / f"{i}.png"), _pair(rng)) for i in range(3)]
    val = [_save(str(tmp_path / "val" / f"{i}.png"), _pair(rng)) for i in range(2)]
    ds = data.load(f"paired:{tmp_path}", size=16)
    assert ds.shape == (3, 2, 16, 16) and ds.paired and ds.channels == 1 and ds.labels is None
    for row, img in zip(ds.data, train):          # size 16 = each half's size: pixels kept
        np.testing.assert_array_equal(row[0], img[:, :16])
        np.testing.assert_array_equal(row[1], img[:, 16:])
    assert ds.test.shape == (2, 2, 16, 16)
    np.testing.assert_array_equal(ds.test.data[1, 1], val[1][:, 16:])
    assert ds.name == f"paired:{tmp_path}"
    swapped = data.load(f"paired:{tmp_path}", size=16, direction="BtoA")
    np.testing.assert_array_equal(swapped.data[0, 0], train[0][:, 16:])
    assert data.load(f"paired:{tmp_path}", size=8).shape == (3, 2, 8, 8)    # resized


def test_paired_folder_without_train_and_val_trains_on_everything_in_colour(tmp_path):
    rng = np.random.default_rng(1)
    _save(str(tmp_path / "a.png"), _pair(rng, rgb=True))
    _save(str(tmp_path / "sub" / "b.jpg"), _pair(rng, rgb=True))
    ds = data.load(f"paired:{tmp_path}")                      # default size 32
    assert ds.shape == (2, 6, 32, 32) and ds.channels == 3 and ds.test is None


def test_unpaired_folder_cycles_the_shorter_domain(tmp_path):
    rng = np.random.default_rng(2)
    a = [_save(str(tmp_path / "trainA" / f"{i}.png"), rng.integers(0, 256, (8, 8), np.uint8))
         for i in range(3)]
    b = [_save(str(tmp_path / "trainB" / f"{i}.png"), rng.integers(0, 256, (8, 8, 3), np.uint8))
         for i in range(5)]
    ds = data.load(f"unpaired:{tmp_path}", size=8)
    assert ds.shape == (5, 6, 8, 8) and not ds.paired and ds.test is None
    rows_a = {ds.data[i, 0].tobytes() for i in range(5)}      # grey A repeated to 3 channels
    assert rows_a == {img.tobytes() for img in a}
    np.testing.assert_array_equal(ds.data[:, 0], ds.data[:, 2])
    assert {ds.data[i, 3:].transpose(1, 2, 0).tobytes() for i in range(5)} == {img.tobytes() for img in b}
    for d in ("testA", "testB"):
        _save(str(tmp_path / d / "0.png"), rng.integers(0, 256, (8, 8, 3), np.uint8))
    assert data.load(f"unpaired:{tmp_path}", size=8).test.shape == (1, 6, 8, 8)


def _corrupt(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n not really a png")


@pytest.mark.parametrize("make, name, error, match", [
    (lambda p: _corrupt(str(p / "train" / "bad.png")), "paired", DataFormatError, "cannot read image .*bad.png"),
    (lambda p: os.makedirs(p / "train"), "paired", DataNotFoundError, "no images"),
    (lambda p: None, "paired", DataNotFoundError, "no images"),
    (lambda p: _save(str(p / "trainA" / "0.png"), np.zeros((4, 4), np.uint8)), "unpaired",
     DataNotFoundError, "found trainA/ but no trainB/"),
    (lambda p: None, "unpaired", DataNotFoundError, "expected folders trainA/ and trainB/"),
    (lambda p: (os.makedirs(p / "trainA"), os.makedirs(p / "trainB")), "unpaired",
     DataNotFoundError, "no images"),
    (lambda p: (_save(str(p / "trainA" / "0.png"), np.zeros((4, 4), np.uint8)),
                _corrupt(str(p / "trainB" / "x.jpg"))), "unpaired", DataFormatError, "x.jpg"),
])
def test_bad_folders_fail_with_one_clear_error(tmp_path, make, name, error, match):
    make(tmp_path)
    with pytest.raises(error, match=match):
        data.load(f"{name}:{tmp_path}")


def test_bad_folders_exit_2_from_the_cli_with_one_line(tmp_path, capsys):
    _save(str(tmp_path / "trainB" / "0.png"), np.zeros((4, 4), np.uint8))
    assert main(["train", "gan", "--data", f"unpaired:{tmp_path}", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("tinygan train: ") and "no trainA/" in err
    assert main(["train", "gan", "--data", "paired:/no/such/folder"]) == 2
    assert "no such folder /no/such/folder" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "run")


def test_two_domain_names_are_known_and_expanded(monkeypatch):
    assert {"edges2mnist", "mnist2thick", "mnist_x4", "paired:PATH", "unpaired:PATH"} <= set(data.NAMES)
    monkeypatch.setenv("PAIRS_HOME", "/data")
    assert data.canonical_name("paired:$PAIRS_HOME/facades") == "paired:/data/facades"
    with pytest.raises(ValueError, match="did you mean edges2mnist"):
        data.load("edges2mnst")
