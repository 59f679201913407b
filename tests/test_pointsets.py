"""Point-set loaders: set-MNIST conversion, ModelNet40 (shared real subset + small files written here in the
official layouts), hls4ml jets (small file in the official HDF5 layout), and the missing-file errors."""
from __future__ import annotations

import csv
import os
import stat
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from helpers import DATA_ROOT, write_tar_gz
import kdutils.data.datasets
import kdutils.data.registry
from kdutils.data.datasets import ArrayDataset
from kdutils.data.jets import JET_CLASSES, PARTICLE_FEATURES, load_hls4ml_jets
from kdutils.data.modelnet import (MODELNET40_SPLIT_COUNTS, find_modelnet40_resampled, load_modelnet40,
                                   load_modelnet40_h5, modelnet40_split_files)
from kdutils.data.pointsets import load_set_mnist, mnist_to_pointset, normalize_points

SUBSET_ARCHIVE = DATA_ROOT / "ModelNet40" / "modelnet40_normal_resampled_subset156.tar.xz"
MANIFEST = DATA_ROOT / "ModelNet40" / "subset156_manifest.csv"


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A private $KDUTILS_CACHE for the module: the subset is extracted there once, and the cache is
    removed with the temporary folder."""
    path = tmp_path_factory.mktemp("kdcache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KDUTILS_CACHE", str(path))
        yield path


# ---- set-MNIST -------------------------------------------------------------------------------------------

def test_mnist_to_pointset_few_pixels_by_hand():
    img = torch.zeros(1, 1, 28, 28, dtype=torch.uint8)
    img[0, 0, 0, 0] = 255   # top-left  -> (-1,  1)
    img[0, 0, 27, 27] = 51  # bottom-right -> (1, -1)
    img[0, 0, 9, 18] = 102  # -> (2*18/27 - 1, 1 - 2*9/27)
    pts = mnist_to_pointset(img, n_points=5, seed=0)
    assert pts.shape == (1, 5, 3) and pts.dtype == torch.float32
    expected = {(-1.0, 1.0, 1.0), (1.0, -1.0, 0.2), (2 * 18 / 27 - 1, 1 - 2 * 9 / 27, 0.4)}
    got = {tuple(round(v, 5) for v in p) for p in pts[0].tolist()}
    assert got == {tuple(round(v, 5) for v in e) for e in expected}  # all 3 present, 2 duplicates


def test_mnist_to_pointset_many_pixels_distinct_lit_and_seeded():
    g = torch.Generator().manual_seed(0)
    imgs = (torch.rand(6, 1, 28, 28, generator=g) > 0.6).to(torch.uint8) * torch.randint(
        1, 256, (6, 1, 28, 28), generator=g, dtype=torch.uint8)
    imgs[5] = 0  # a blank image must not crash
    for sampling in ("uniform", "intensity"):
        pts = mnist_to_pointset(imgs, n_points=50, seed=3, sampling=sampling)
        assert pts.shape == (6, 50, 3)
        for b in range(5):
            cols = torch.round((pts[b, :, 0] + 1) * 27 / 2).long()
            rows = torch.round((1 - pts[b, :, 1]) * 27 / 2).long()
            flat = rows * 28 + cols
            assert len(set(flat.tolist())) == 50  # distinct pixels
            vals = imgs[b, 0, rows, cols].float() / 255
            assert (vals > 0).all()
            torch.testing.assert_close(pts[b, :, 2], vals)
            assert torch.equal(flat, flat.sort().values)  # raster order
        assert (pts[5, :, 2] == 0).all()
        assert torch.equal(pts, mnist_to_pointset(imgs, n_points=50, seed=3, sampling=sampling))
    assert not torch.equal(mnist_to_pointset(imgs, 50, seed=3), mnist_to_pointset(imgs, 50, seed=4))
    with pytest.raises(ValueError, match="unknown sampling"):
        mnist_to_pointset(imgs, sampling="gauss")


def test_set_mnist_loader_converts_the_mnist_split(monkeypatch):
    imgs = torch.zeros(4, 1, 28, 28, dtype=torch.uint8)
    imgs[:, 0, 10:20, 5:15] = 200
    fake = ArrayDataset(imgs, torch.tensor([3, 1, 4, 1]), [str(i) for i in range(10)], "mnist")
    calls = []

    def fake_load(name, split="train", root=None, download=None):
        calls.append((name, split, root, download))
        return fake

    monkeypatch.setattr(kdutils.data.datasets, "load_idx_dataset", fake_load)
    ds = load_set_mnist("test", root="/somewhere", download=False, n_points=30, seed=1)
    assert calls == [("mnist", "test", "/somewhere", False)]
    assert ds.x.shape == (4, 30, 3) and ds.name == "set_mnist" and ds.y.tolist() == [3, 1, 4, 1]
    assert torch.equal(ds.x, mnist_to_pointset(imgs, 30, seed=1))
    assert {"set_mnist", "set_mnist_jitter", "modelnet40", "modelnet40_h5", "hls4ml_jets"} <= set(
        kdutils.data.registry.dataset_names())  # registered by the core, before any chapter is imported


def test_set_mnist_on_real_mnist_if_present():
    if not (DATA_ROOT / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"real MNIST absent under {DATA_ROOT}")
    images = kdutils.data.registry.load_dataset("mnist", "test", root=DATA_ROOT).x[:500]
    pts = mnist_to_pointset(images, n_points=100, seed=0)
    cols = torch.round((pts[..., 0] + 1) * 27 / 2).long()
    rows = torch.round((1 - pts[..., 1]) * 27 / 2).long()
    vals = images[torch.arange(500)[:, None], 0, rows, cols]
    assert (vals > 0).all()  # every element is a lit pixel of its own digit
    torch.testing.assert_close(pts[..., 2], vals.float() / 255)
    lit = (images > 0).flatten(1).sum(1)
    distinct = torch.tensor([len(set((r * 28 + c).tolist())) for r, c in zip(rows, cols)])
    assert torch.equal(distinct, lit.clamp(max=100))  # duplicates only when fewer than 100 lit pixels


# ---- ModelNet40: the shared real subset -----------------------------------------------------------------

@pytest.fixture(scope="module")
def subset(cache):
    if not SUBSET_ARCHIVE.is_file():
        pytest.skip(f"shared ModelNet40 subset archive absent: {SUBSET_ARCHIVE}")
    before = sorted(p.name for p in SUBSET_ARCHIVE.parent.iterdir())
    train = load_modelnet40("train", root=DATA_ROOT)
    test = load_modelnet40("test", root=DATA_ROOT)
    after = sorted(p.name for p in SUBSET_ARCHIVE.parent.iterdir())
    assert before == after, "the loader wrote into the read-only shared folder"
    return train, test


def test_modelnet40_subset_shapes_classes_and_split(subset, cache):
    train, test = subset
    assert train.x.shape == (127, 1000, 3) and test.x.shape == (29, 1000, 3)
    assert train.x.dtype == torch.float32 and train.y.dtype == torch.int64
    assert len(train.classes) == 40 and train.classes[0] == "airplane" and train.classes == test.classes
    for ds in subset:
        assert 0 <= ds.y.min() and ds.y.max() < 40
        # NormalizeScale: centred, largest |coordinate| just below 1 for every shape
        assert ds.x.mean(dim=1).abs().max() < 1e-5
        torch.testing.assert_close(ds.x.abs().amax(dim=(1, 2)), torch.full((len(ds),), 0.999999))
    # extracted into the private cache, not next to the archive
    ds_dir = find_modelnet40_resampled(DATA_ROOT)
    assert cache in ds_dir.parents
    # the derived split equals the manifest's official_split_derived column
    with open(MANIFEST, newline="") as f:
        rows = list(csv.DictReader(f))
    for split, n in (("train", 127), ("test", 29)):
        derived = modelnet40_split_files(ds_dir, split)
        assert len(derived) == n
        assert sorted(derived) == sorted(r["path"] for r in rows if r["official_split_derived"] == split)
        assert sorted(modelnet40_split_files(ds_dir, split, manifest=MANIFEST)) == sorted(derived)
    # labels agree with the manifest's class_idx
    by_path = {r["path"]: int(r["class_idx"]) for r in rows}
    assert train.y.tolist() == [by_path[p] for p in modelnet40_split_files(ds_dir, "train")]


def test_modelnet40_subset_first_points_by_hand_and_cache(subset, cache):
    ds_dir = find_modelnet40_resampled(DATA_ROOT)
    rel = modelnet40_split_files(ds_dir, "test")[0]
    raw = np.loadtxt(ds_dir / rel, delimiter=",", dtype=np.float64)[:200]
    ds = load_modelnet40("test", root=DATA_ROOT, n_points=200, sampling="first", normals=True, cache=False)
    c = raw[:, :3] - raw[:, :3].mean(0)
    expected = c / (np.abs(c).max() / 0.999999)
    np.testing.assert_allclose(ds.x[0, :, :3].numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(ds.x[0, :, 3:].numpy(), raw[:, 3:], atol=1e-6)  # normals untouched
    assert list((cache / "pointsets").glob("modelnet40-*.pt"))  # the default loads were cached


def test_split_counts_total_official_sizes():
    assert sum(v[0] for v in MODELNET40_SPLIT_COUNTS.values()) == 9843
    assert sum(v[1] for v in MODELNET40_SPLIT_COUNTS.values()) == 2468
    assert len(MODELNET40_SPLIT_COUNTS) == 40


# ---- ModelNet40: small archives in the resampled layout ------------------------------------------------

def _write_resampled_archive(path: Path, n_lines: int = 30) -> dict[str, np.ndarray]:
    """A tar.gz like the shared one (leading data/ folder): 40 shape names, a filelist with the official
    per-class totals for airplane and bed, and 4 shape files (ids around the train/test boundary)."""
    rng = np.random.default_rng(0)
    names = list(MODELNET40_SPLIT_COUNTS)
    files = {"airplane/airplane_0626.txt": None, "airplane/airplane_0627.txt": None,
             "bed/bed_0001.txt": None, "bed/bed_0600.txt": None}
    filelist = [f"{c}/{c}_{i:04d}.txt" for c in ("airplane", "bed")
                for i in range(1, sum(MODELNET40_SPLIT_COUNTS[c]) + 1)]
    members = {"modelnet40_shape_names.txt": "\n".join(names) + "\n", "filelist.txt": "\n".join(filelist) + "\n"}
    for rel in files:
        arr = rng.normal(size=(n_lines, 6)) + np.array([5.0, -2.0, 1.0, 0, 0, 0])
        files[rel] = arr
        members[rel] = "\n".join(",".join(f"{v:.6f}" for v in row) for row in arr) + "\n"
    write_tar_gz(path, {f"data/modelnet40_normal_resampled/{name}": text for name, text in members.items()})
    return files


def test_resampled_archive_extracts_into_writable_root_and_derives_split(tmp_path, cache):
    (tmp_path / "ModelNet40").mkdir()
    files = _write_resampled_archive(tmp_path / "ModelNet40" / "modelnet40_normal_resampled.tar.gz")
    train = load_modelnet40("train", root=tmp_path, n_points=10, cache=False)
    test = load_modelnet40("test", root=tmp_path, n_points=10, cache=False)
    assert (tmp_path / "ModelNet40" / "modelnet40_normal_resampled" / "bed" / "bed_0600.txt").is_file()
    # airplane: 626 train -> 0626 train, 0627 test; bed: 515 train -> 0001 train, 0600 test
    assert train.y.tolist() == [0, 2] and test.y.tolist() == [0, 2]
    assert train.x.shape == (2, 10, 3)
    # random sampling: distinct rows of the file, reproducible per seed, normalised
    raw = files["airplane/airplane_0626.txt"][:, :3]
    full = load_modelnet40("train", root=tmp_path, n_points=None, normalize="none", cache=False)
    np.testing.assert_allclose(full.x[0].numpy(), raw, atol=1e-5)
    sub = load_modelnet40("train", root=tmp_path, n_points=10, normalize="none", cache=False)
    rows = [int(np.argmin(np.abs(raw - p).sum(1))) for p in sub.x[0].numpy()]
    assert len(set(rows)) == 10
    again = load_modelnet40("train", root=tmp_path, n_points=10, normalize="none", cache=False)
    other = load_modelnet40("train", root=tmp_path, n_points=10, normalize="none", seed=1, cache=False)
    assert torch.equal(sub.x, again.x) and not torch.equal(sub.x, other.x)
    sph = load_modelnet40("train", root=tmp_path, n_points=10, normalize="sphere", cache=False)
    torch.testing.assert_close(sph.x.norm(dim=-1).amax(dim=1), torch.ones(2))


def test_official_list_files_take_precedence_and_missing_shapes_fail(tmp_path):
    (tmp_path / "ModelNet40").mkdir()
    _write_resampled_archive(tmp_path / "ModelNet40" / "modelnet40_normal_resampled.tar.gz")
    ds_dir = find_modelnet40_resampled(tmp_path)
    (ds_dir / "modelnet40_train.txt").write_text("bed_0600\nairplane_0627\n")
    assert modelnet40_split_files(ds_dir, "train") == ["bed/bed_0600.txt", "airplane/airplane_0627.txt"]
    (ds_dir / "modelnet40_test.txt").write_text("bed_0601\n")
    with pytest.raises(FileNotFoundError, match="bed_0601"):
        modelnet40_split_files(ds_dir, "test")


def test_read_only_root_extracts_into_cache(tmp_path, cache):
    ro = tmp_path / "ro"
    (ro / "ModelNet40").mkdir(parents=True)
    _write_resampled_archive(ro / "ModelNet40" / "modelnet40_normal_resampled_tiny.tar.gz")
    for d in (ro / "ModelNet40", ro):
        d.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)
    try:
        ds_dir = find_modelnet40_resampled(ro)
        assert ds_dir == cache / "ModelNet40" / "modelnet40_normal_resampled_tiny" / "modelnet40_normal_resampled"
        assert sorted(p.name for p in (ro / "ModelNet40").iterdir()) == ["modelnet40_normal_resampled_tiny.tar.gz"]
        assert len(load_modelnet40("test", root=ro, n_points=5, cache=False)) == 2
    finally:
        for d in (ro, ro / "ModelNet40"):
            d.chmod(stat.S_IRWXU)


# ---- ModelNet40: HDF5 layout -----------------------------------------------------------------------------

def test_modelnet40_h5_reads_files_in_order(tmp_path):
    d = tmp_path / "modelnet40_ply_hdf5_2048"
    d.mkdir()
    (d / "shape_names.txt").write_text("\n".join(MODELNET40_SPLIT_COUNTS) + "\n")
    rng = np.random.default_rng(1)
    parts = []
    for i, n in enumerate([3, 2]):  # written as train1 before train0: the loader must sort
        data = rng.normal(size=(n, 64, 3)).astype(np.float32)
        label = np.array([[5 * i + j] for j in range(n)], dtype=np.uint8)
        parts.append((data, label))
    for i in (1, 0):
        with h5py.File(d / f"ply_data_train{i}.h5", "w") as h:
            h["data"], h["label"] = parts[i]
    ds = load_modelnet40_h5("train", root=tmp_path, n_points=20, sampling="first", cache=False)
    assert ds.x.shape == (5, 20, 3) and ds.y.tolist() == [0, 1, 2, 5, 6] and len(ds.classes) == 40
    first = parts[0][0][0, :20].astype(np.float64)
    c = first - first.mean(0)
    np.testing.assert_allclose(ds.x[0].numpy(), c / (np.abs(c).max() / 0.999999), atol=1e-6)
    rnd = load_modelnet40_h5("train", root=tmp_path, n_points=20, normalize="none", cache=False)
    raw = parts[0][0][0]
    rows = [int(np.argmin(np.abs(raw - p).sum(1))) for p in rnd.x[0].numpy()]
    assert len(set(rows)) == 20 and rows == sorted(rows)
    with pytest.raises(FileNotFoundError, match="ply_data_test0.h5"):
        load_modelnet40_h5("test", root=tmp_path, cache=False)


# ---- hls4ml jets -------------------------------------------------------------------------------------------

def _write_jet_file(path: Path, constituents: np.ndarray, onehot: np.ndarray, label_cols: list[int]) -> None:
    n = constituents.shape[0]
    jet_names = [f"j_feat{i}" for i in range(59)]
    for name, col in zip(["j_g", "j_q", "j_w", "j_z", "j_t"], label_cols):
        jet_names[col] = name
    jets = np.zeros((n, 59), dtype=np.float32)
    jets[:, label_cols] = onehot
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as h:
        h["jetConstituentList"] = constituents.astype(np.float32)
        h["jets"] = jets
        h["jetFeatureNames"] = np.array([s.encode() for s in jet_names])
        h["particleFeatureNames"] = np.array([s.encode() for s in PARTICLE_FEATURES])


def test_hls4ml_jets_sorting_cut_padding_and_labels(tmp_path):
    n, p = 3, 150
    const = np.zeros((n, p, 16))
    i_pt, i_eta, i_phi = (PARTICLE_FEATURES.index(f) for f in ("j1_pt", "j1_etarel", "j1_phirel"))
    rng = np.random.default_rng(2)
    # jet 0: 20 constituents with distinct pt in shuffled order; jet 1: pts 1.5 (cut), 30, 4;
    # jet 2: only constituents below 2 GeV -> dropped
    pts0 = rng.permutation(np.arange(3.0, 23.0))
    const[0, :20, i_pt] = pts0
    const[1, :3, i_pt] = [1.5, 30.0, 4.0]
    const[2, :2, i_pt] = [1.0, 2.0]
    const[:, :, i_eta] = const[:, :, i_pt] * 0.1
    const[:, :, i_phi] = -const[:, :, i_pt]
    onehot = np.eye(5)[[3, 0, 4]]
    # label columns deliberately not at 53..57: the loader must find them by name
    path = tmp_path / "hls4ml_jets" / "train" / "jetImage_0_150p_0_10000.h5"
    _write_jet_file(path, const, onehot, [2, 7, 11, 40, 58])
    ds = load_hls4ml_jets("train", root=tmp_path, cache=False)
    assert ds.x.shape == (2, 16, 3) and ds.x.dtype == torch.float32
    assert ds.y.tolist() == [3, 0] and ds.classes == JET_CLASSES == ["g", "q", "w", "z", "t"]
    expected0 = np.arange(22.0, 6.0, -1.0)  # the 16 largest of 3..22, descending
    np.testing.assert_allclose(ds.x[0, :, 0].numpy(), expected0)
    np.testing.assert_allclose(ds.x[0, :, 1].numpy(), expected0 * 0.1, rtol=1e-6)
    np.testing.assert_allclose(ds.x[0, :, 2].numpy(), -expected0)
    np.testing.assert_allclose(ds.x[1, :3, 0].numpy(), [30.0, 4.0, 0.0])  # 1.5 GeV cut, then zero padding
    assert (ds.x[1, 2:] == 0).all()
    # no cut: jet 2 is kept, 1.5 GeV constituent comes back
    nocut = load_hls4ml_jets("train", root=tmp_path, min_pt=None, n_constituents=4, features=("pt", "eta"), cache=False)
    assert nocut.x.shape == (3, 4, 2) and nocut.y.tolist() == [3, 0, 4]
    np.testing.assert_allclose(nocut.x[1, :, 0].numpy(), [30.0, 4.0, 1.5, 0.0])
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "hls4ml_jets" / "val")):
        load_hls4ml_jets("test", root=tmp_path, cache=False)
    with pytest.raises(ValueError, match="unknown particle feature"):
        load_hls4ml_jets("train", root=tmp_path, features=("mass",), cache=False)


# ---- missing data ------------------------------------------------------------------------------------------

def test_missing_files_raise_file_not_found_naming_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "modelnet40_normal_resampled")):
        load_modelnet40("train", root=tmp_path)
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "modelnet40_ply_hdf5_2048")):
        load_modelnet40_h5("train", root=tmp_path)
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "hls4ml_jets" / "train")):
        load_hls4ml_jets("train", root=tmp_path)
    with pytest.raises(ValueError, match="unknown split"):
        load_modelnet40("val", root=tmp_path)
    assert os.listdir(tmp_path) == []  # nothing created while failing


def test_normalize_points_rejects_unknown_mode():
    with pytest.raises(ValueError, match="unknown normalize"):
        normalize_points(np.zeros((1, 3, 3)), "minmax")
