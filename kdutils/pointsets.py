"""Point-set datasets of the invariance-KD experiments, each loaded whole as an ArrayDataset of float32
(N, P, F) sets with int64 labels.

Registered names (`DATASETS`; every loader is `fn(split="train"|"test", root=None, download=None, **kw)`):

* "set_mnist": MNIST digits as sets of lit pixels (x, y, intensity); see `mnist_to_pointset`.
* "modelnet40": the PointNet++ resampled ModelNet40 text files (x,y,z[,normals]), 1000 points per shape.
* "modelnet40_h5": the PointNet HDF5 release `modelnet40_ply_hdf5_2048`.
* "hls4ml_jets": the hls4ml LHC jet dataset (zenodo 3602260, 150-particle version), 16 leading
  constituents with (pt, eta_rel, phi_rel).

The data root is `kdutils.paths.data_root(root)`. These loaders never download: the files are large or have
no stable official URL. `download` is accepted only for the registry contract. Missing files raise
FileNotFoundError naming the paths we looked for and where the data comes from. ModelNet40 and jets are
parsed once and cached as tensors in `cache_dir()/pointsets/` (pass cache=False to skip the cache).
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import tarfile
import tempfile
import warnings
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Callable, Sequence

import numpy as np
import torch

from kdutils.data import ArrayDataset
from kdutils.paths import cache_dir, data_root

_CACHE_VERSION = 1

# ---------------------------------------------------------------------------------------------------------
# shared helpers


def _check_split(split: str) -> None:
    if split not in ("train", "test"):
        raise ValueError(f"unknown split {split!r}; choose 'train' or 'test'")


def _check_sampling(sampling: str) -> None:
    if sampling not in ("first", "random"):
        raise ValueError(f"unknown sampling {sampling!r}; choose 'first' or 'random'")


def _cached(name: str, key: dict, build: Callable[[], ArrayDataset], use_cache: bool) -> ArrayDataset:
    """Return build() and keep its tensors in cache_dir()/pointsets, keyed by `key`. Parsing the full
    ModelNet40 text tree takes minutes; the cached tensors load in a second."""
    if not use_cache:
        return build()
    digest = hashlib.sha1(json.dumps({"v": _CACHE_VERSION, **key}, sort_keys=True, default=str).encode())
    path = cache_dir() / "pointsets" / f"{name}-{digest.hexdigest()[:16]}.pt"
    if path.exists():
        from kdutils.store import DamagedFileError, load_tensors

        try:
            d = load_tensors(path)
            return ArrayDataset(d["x"], d["y"], list(d["classes"]), d["name"])
        except (DamagedFileError, KeyError, TypeError) as err:
            warnings.warn(f"{path}: damaged point-set cache ({err}); rebuilding it from the source files",
                          RuntimeWarning, stacklevel=2)
    ds = build()
    from kdutils.store import atomic_torch_save

    atomic_torch_save({"x": ds.x, "y": ds.y, "classes": list(ds.classes), "name": ds.name}, path)
    return ds


def _fingerprint(files: Sequence[Path]) -> str:
    """Cheap identity of a set of source files (names, sizes, mtimes) for the cache key."""
    h = hashlib.sha1()
    for f in files:
        st = f.stat()
        h.update(f"{f}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def normalize_points(xyz: np.ndarray, how: str = "pyg") -> np.ndarray:
    """Centre each set on its mean point, then scale (xyz: (..., P, 3), done per set):
    "pyg": divide by the largest |coordinate| (times 1/0.999999), so the set fits in (-1, 1)^3. This is
           torch_geometric's NormalizeScale, which the paper uses.
    "sphere": divide by the largest distance to the centre, which gives the unit ball (PointNet++'s
           pc_normalize).
    "none": leave the coordinates unchanged."""
    if how == "none":
        return xyz
    if how not in ("pyg", "sphere"):
        raise ValueError(f"unknown normalize {how!r}; choose 'pyg', 'sphere' or 'none'")
    c = xyz - xyz.mean(axis=-2, keepdims=True)
    if how == "pyg":
        scale = np.abs(c).max(axis=(-2, -1), keepdims=True) / 0.999999
    else:
        scale = np.sqrt((c ** 2).sum(axis=-1)).max(axis=-1)[..., None, None]
    return (c / np.where(scale > 0, scale, 1.0)).astype(np.float32)


def _subsample(n_total: int, n_points: int | None, sampling: str, rng_seed: list[int]) -> np.ndarray:
    """Row indices: the first n_points, or n_points distinct rows drawn from the per-item seed (in file order)."""
    if n_points is None:
        return np.arange(n_total)
    if n_points > n_total:
        raise ValueError(f"n_points={n_points} exceeds the {n_total} points available")
    if sampling == "first":
        return np.arange(n_points)
    return np.sort(np.random.default_rng(rng_seed).choice(n_total, n_points, replace=False))


# ---------------------------------------------------------------------------------------------------------
# set-MNIST


def mnist_to_pointset(images, n_points: int = 100, seed: int = 0, sampling: str = "uniform",
                      chunk: int = 8192) -> torch.Tensor:
    """Turn uint8 digit images (N, 1, H, W) or (N, H, W) into float32 sets (N, n_points, 3) of lit pixels.

    Each element is (x, y, intensity) for one pixel with intensity > 0:
    * x = 2 * col / (W - 1) - 1 and y = 1 - 2 * row / (H - 1) lie in [-1, 1], with y pointing up;
    * intensity = value / 255, in (0, 1].
    Which pixels:
    * if the image has at least n_points lit pixels, n_points *distinct* ones are drawn, either
      uniformly (sampling="uniform") or with probability proportional to intensity without replacement
      (sampling="intensity", successive weighted draws);
    * if it has fewer, all of them are kept and the rest of the set is drawn from them *with*
      replacement (same weighting), so the set contains duplicates;
    * a blank image is sampled uniformly from all its (zero) pixels.
    The elements of a set are listed in raster order (row-major), a canonical order for non-set
    students. The draws come from torch.Generator().manual_seed(seed), one chunk of `chunk` images at a
    time, so the same (images, n_points, seed, sampling) always gives the same sets."""
    if sampling not in ("uniform", "intensity"):
        raise ValueError(f"unknown sampling {sampling!r}; choose 'uniform' or 'intensity'")
    if n_points < 1:
        raise ValueError(f"n_points must be >= 1; got {n_points}")
    imgs = torch.as_tensor(images)
    if imgs.dim() == 4:
        if imgs.shape[1] != 1:
            raise ValueError(f"mnist_to_pointset needs single-channel images; got shape {tuple(imgs.shape)}")
        imgs = imgs[:, 0]
    if imgs.dim() != 3:
        raise ValueError(f"images must be (N, 1, H, W) or (N, H, W); got shape {tuple(imgs.shape)}")
    n, h, w = imgs.shape
    flat = imgs.reshape(n, h * w).float()
    gen = torch.Generator().manual_seed(seed)
    rows = torch.arange(h * w) // w
    cols = torch.arange(h * w) % w
    px = 2.0 * cols.float() / (w - 1) - 1.0
    py = 1.0 - 2.0 * rows.float() / (h - 1)
    out = torch.empty(n, n_points, 3, dtype=torch.float32)
    arange_p = torch.arange(n_points)
    for s in range(0, n, chunk):
        v = flat[s:s + chunk].cpu()
        lit = v > 0
        count = lit.sum(dim=1)
        weight = (lit.float() if sampling == "uniform" else v).clone()
        weight[count == 0] = 1.0  # blank image: uniform over all pixels
        # Weighted sampling without replacement via exponential keys -log(u)/w (smallest first);
        # unlit pixels get key +inf and come last.
        keys = -torch.log(torch.rand(weight.shape, generator=gen).clamp_min(1e-12)) / weight
        first = keys.argsort(dim=1)[:, :n_points]
        fill = torch.multinomial(weight, n_points, replacement=True, generator=gen)
        if first.shape[1] < n_points:  # n_points > H*W: pad, the tail is always drawn from `fill`
            first = torch.cat([first, fill[:, first.shape[1]:]], dim=1)
        idx = torch.where(arange_p[None, :] < count[:, None], first, fill)
        idx = idx.sort(dim=1).values
        out[s:s + chunk, :, 0] = px[idx]
        out[s:s + chunk, :, 1] = py[idx]
        out[s:s + chunk, :, 2] = torch.gather(v, 1, idx) / 255.0
    return out


def load_set_mnist(split: str = "train", root=None, download: bool | None = None, n_points: int = 100,
                   seed: int = 0, sampling: str = "uniform") -> ArrayDataset:
    """MNIST (via kdutils.data.load_dataset("mnist")) converted by `mnist_to_pointset`."""
    from kdutils.data import load_dataset

    _check_split(split)
    ds = load_dataset("mnist", split=split, root=root, download=download)
    x = mnist_to_pointset(ds.x, n_points=n_points, seed=seed, sampling=sampling)
    classes = list(ds.classes) if ds.classes else [str(i) for i in range(10)]
    return ArrayDataset(x, ds.y.long(), classes, "set_mnist")


# ---------------------------------------------------------------------------------------------------------
# ModelNet40, PointNet++ resampled text layout

RESAMPLED = "modelnet40_normal_resampled"
RESAMPLED_URL = "https://shapenet.cs.stanford.edu/media/modelnet40_normal_resampled.zip"

# Official ModelNet40 (Wu et al. 2015) split sizes per class: (train, test). They total 9,843 / 2,468.
# Each class numbers its test shapes after its train shapes, so shape id > n_train means test.
MODELNET40_SPLIT_COUNTS: dict[str, tuple[int, int]] = {
    "airplane": (626, 100), "bathtub": (106, 50), "bed": (515, 100), "bench": (173, 20),
    "bookshelf": (572, 100), "bottle": (335, 100), "bowl": (64, 20), "car": (197, 100),
    "chair": (889, 100), "cone": (167, 20), "cup": (79, 20), "curtain": (138, 20),
    "desk": (200, 86), "door": (109, 20), "dresser": (200, 86), "flower_pot": (149, 20),
    "glass_box": (171, 100), "guitar": (155, 100), "keyboard": (145, 20), "lamp": (124, 20),
    "laptop": (149, 20), "mantel": (284, 100), "monitor": (465, 100), "night_stand": (200, 86),
    "person": (88, 20), "piano": (231, 100), "plant": (240, 100), "radio": (104, 20),
    "range_hood": (115, 100), "sink": (128, 20), "sofa": (680, 100), "stairs": (124, 20),
    "stool": (90, 20), "table": (392, 100), "tent": (163, 20), "toilet": (344, 100),
    "tv_stand": (267, 100), "vase": (475, 100), "wardrobe": (87, 20), "xbox": (103, 20),
}


def _dir_writable(path: Path) -> bool:
    """Writable by us *and* not marked read-only by its permission bits. We check the bits too
    because root passes os.access on read-only shared folders."""
    p = path
    while not p.exists():
        if p.parent == p:
            return False
        p = p.parent
    return os.access(p, os.W_OK) and bool(p.stat().st_mode & 0o222)


def _member_relpath(name: str) -> Path | None:
    """Path of an archive member below its `modelnet40_normal_resampled/` component (None if it has none)."""
    pp = PurePosixPath(name)
    if pp.is_absolute() or ".." in pp.parts:
        raise ValueError(f"refusing unsafe archive member {name!r}")
    if RESAMPLED not in pp.parts:
        return None
    return Path(*pp.parts[pp.parts.index(RESAMPLED):])


def _extract_resampled(archive: Path, dest_parent: Path) -> Path:
    """Extract the `modelnet40_normal_resampled/` tree of a .tar[.xz|.gz] or .zip archive into dest_parent.
    Leading folders such as `data/` are dropped. Extraction goes to a temporary folder first and is then
    renamed into place, so an interrupted or concurrent extraction never leaves a half tree."""
    target = dest_parent / RESAMPLED
    dest_parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest_parent))
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    rel = None if info.is_dir() else _member_relpath(info.filename)
                    if rel is not None:
                        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                        with zf.open(info) as src, open(tmp / rel, "wb") as dst:
                            shutil.copyfileobj(src, dst)
        else:
            with tarfile.open(archive) as tf:
                for m in tf:
                    rel = _member_relpath(m.name) if m.isfile() else None
                    if rel is not None:
                        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                        with tf.extractfile(m) as src, open(tmp / rel, "wb") as dst:
                            shutil.copyfileobj(src, dst)
        if not (tmp / RESAMPLED / "modelnet40_shape_names.txt").is_file():
            raise FileNotFoundError(f"{archive} holds no {RESAMPLED}/modelnet40_shape_names.txt")
        if not target.exists():
            try:
                os.replace(tmp / RESAMPLED, target)
            except OSError:
                if not target.exists():  # not a lost race with another process: a real error
                    raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _archive_stem(archive: Path) -> str:
    name = archive.name
    for ext in (".tar.xz", ".tar.gz", ".tgz", ".tar.bz2", ".tar", ".zip"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return archive.stem


def find_modelnet40_resampled(root=None) -> Path:
    """The `modelnet40_normal_resampled` folder for a data root. We look in this order:
    1. <root>/modelnet40_normal_resampled, then <root>/ModelNet40/modelnet40_normal_resampled;
    2. an archive <root>[/ModelNet40]/modelnet40_normal_resampled*.{tar.xz,tar.gz,tar,zip}, extracted on
       first use into <root>/ModelNet40/ when that folder is writable. Otherwise (for example the
       read-only shared data folder) it goes to <cache_dir()>/ModelNet40/<archive name without
       extension>/, and later calls reuse that extraction. The data root is never required to be writable:
       if extracting there fails (PermissionError, a read-only mount that root's os.access does not see, ...)
       the cache is used instead.
    Neither found: FileNotFoundError naming the paths."""
    base = data_root(root)
    dirs = [base / RESAMPLED, base / "ModelNet40" / RESAMPLED]
    for d in dirs:
        if (d / "modelnet40_shape_names.txt").is_file():
            return d
    archives = sorted(p for folder in (base, base / "ModelNet40") if folder.is_dir()
                      for p in folder.glob(f"{RESAMPLED}*")
                      if p.is_file() and re.search(r"\.(tar\.xz|tar\.gz|tgz|tar\.bz2|tar|zip)$", p.name))
    if archives:
        archive = archives[0]
        cached = cache_dir() / "ModelNet40" / _archive_stem(archive)
        if (cached / RESAMPLED / "modelnet40_shape_names.txt").is_file():
            return cached / RESAMPLED
        if _dir_writable(base / "ModelNet40"):
            try:
                return _extract_resampled(archive, base / "ModelNet40")
            except FileNotFoundError:
                raise  # the archive lacks the expected files: the cache would not help
            except OSError as err:  # not writable after all: the data root stays untouched, use the cache
                warnings.warn(f"could not extract {archive} into {base / 'ModelNet40'} ({type(err).__name__}: "
                              f"{err}); extracting into {cached} instead", RuntimeWarning, stacklevel=2)
        return _extract_resampled(archive, cached)
    raise FileNotFoundError(
        f"ModelNet40 (resampled) not found: expected {dirs[0]}/modelnet40_shape_names.txt (or the same under "
        f"{dirs[1]}), or an archive {base}/ModelNet40/{RESAMPLED}*.tar.xz|.zip. The data is the PointNet++ "
        f"release {RESAMPLED}.zip ({RESAMPLED_URL}, no longer served; use a mirror); the book's shared data "
        "has a 156-shape subset archive. Set the root with root= or $KDUTILS_DATA.")


def _read_lines(path: Path) -> list[str]:
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]


def _split_id(relpath: str) -> tuple[str, int]:
    stem = PurePosixPath(relpath).stem  # e.g. airplane_0627
    cls, _, num = stem.rpartition("_")
    return cls, int(num)


def modelnet40_split_files(ds_dir: Path, split: str, manifest=None) -> list[str]:
    """Relative paths `<class>/<class>_NNNN.txt` of one split, from the first source that exists:
    1. the official list `modelnet40_{split}.txt` (every listed file must be present);
    2. a manifest CSV (`manifest=` path) with columns `path` and `official_split_derived`;
    3. otherwise derived from the files present: a shape is test iff its id > the official n_train
       of its class (`MODELNET40_SPLIT_COUNTS`). If filelist.txt is present, its per-class totals
       must equal the official train + test counts, or we raise. This is how the shared 156-shape
       subset gets its 127 train / 29 test shapes."""
    _check_split(split)
    listfile = ds_dir / f"modelnet40_{split}.txt"
    if listfile.is_file():
        rel = [f"{_split_id(n)[0]}/{n}.txt" for n in _read_lines(listfile)]
    elif manifest is not None:
        with open(manifest, newline="") as f:
            rows = list(csv.DictReader(f))
        if rows and not {"path", "official_split_derived"} <= set(rows[0]):
            raise ValueError(f"manifest {manifest} needs columns 'path' and 'official_split_derived'; "
                             f"has {sorted(rows[0])}")
        rel = [r["path"] for r in rows if r["official_split_derived"] == split]
    else:
        totals: dict[str, int] = {}
        if (ds_dir / "filelist.txt").is_file():
            for line in _read_lines(ds_dir / "filelist.txt"):
                c = line.split("/")[0]
                totals[c] = totals.get(c, 0) + 1
        rel = []
        for cls in _read_lines(ds_dir / "modelnet40_shape_names.txt"):
            if cls not in MODELNET40_SPLIT_COUNTS:
                raise ValueError(f"class {cls!r} is not a ModelNet40 class; cannot derive the official split "
                                 "(provide modelnet40_train.txt/modelnet40_test.txt or a manifest)")
            n_train, n_test = MODELNET40_SPLIT_COUNTS[cls]
            if cls in totals:
                if totals[cls] != n_train + n_test:
                    raise ValueError(f"filelist.txt has {totals[cls]} shapes of {cls!r}, the official ModelNet40 "
                                     f"has {n_train + n_test}; provide modelnet40_{{train,test}}.txt instead")
            files = sorted((ds_dir / cls).glob(f"{cls}_*.txt")) if (ds_dir / cls).is_dir() else []
            for f in files:
                is_test = _split_id(f.name)[1] > n_train
                if is_test == (split == "test"):
                    rel.append(f"{cls}/{f.name}")
    missing = [r for r in rel if not (ds_dir / r).is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} of {len(rel)} {split} shapes are missing, e.g. {ds_dir / missing[0]}")
    return rel


def load_modelnet40(split: str = "train", root=None, download: bool | None = None, n_points: int | None = 1000,
                    sampling: str = "random", seed: int = 0, normalize: str = "pyg", normals: bool = False,
                    manifest=None, cache: bool = True) -> ArrayDataset:
    """ModelNet40 from the PointNet++ resampled text files (10,000 "x,y,z,nx,ny,nz" lines per shape).

    Each shape gives n_points points. With sampling="random" (the default) they are distinct points drawn
    with numpy's default_rng([seed, crc32(relative path)]), so a shape's draw does not depend on which
    other files exist. sampling="first" takes the first n_points. The coordinates are then normalised
    (`normalize_points`, default "pyg" = NormalizeScale) and the normals are kept only if normals=True.
    x: float32 (N, n_points, 3 or 6); y: class index in modelnet40_shape_names.txt order (40 classes).
    The split comes from `modelnet40_split_files`; the data folder from `find_modelnet40_resampled`."""
    _check_split(split)
    _check_sampling(sampling)
    normalize_points(np.zeros((1, 2, 3), np.float32), normalize)  # validate the name early
    ds_dir = find_modelnet40_resampled(root)
    classes = _read_lines(ds_dir / "modelnet40_shape_names.txt")
    rel = modelnet40_split_files(ds_dir, split, manifest)
    if not rel:
        raise FileNotFoundError(f"no {split} shapes found under {ds_dir}")

    def build() -> ArrayDataset:
        xs, ys = [], []
        for r in rel:
            arr = np.loadtxt(ds_dir / r, delimiter=",", dtype=np.float32, ndmin=2)
            idx = _subsample(arr.shape[0], n_points, sampling, [seed, zlib.crc32(r.encode())])
            arr = arr[idx]
            pts = normalize_points(arr[None, :, :3], normalize)[0]
            xs.append(np.concatenate([pts, arr[:, 3:6]], axis=1) if normals else pts)
            ys.append(classes.index(_split_id(r)[0]))
        return ArrayDataset(torch.from_numpy(np.stack(xs)).float(), torch.tensor(ys, dtype=torch.long),
                            classes, "modelnet40")

    key = dict(dir=str(ds_dir.resolve()), split=split, n_points=n_points, sampling=sampling, seed=seed,
               normalize=normalize, normals=normals, files=_fingerprint([ds_dir / r for r in rel]))
    return _cached("modelnet40", key, build, cache)


# ---------------------------------------------------------------------------------------------------------
# ModelNet40, PointNet HDF5 layout

H5_DIR = "modelnet40_ply_hdf5_2048"
H5_URL = "https://shapenet.cs.stanford.edu/media/modelnet40_ply_hdf5_2048.zip"


def load_modelnet40_h5(split: str = "train", root=None, download: bool | None = None,
                       n_points: int | None = 1000, sampling: str = "random", seed: int = 0,
                       normalize: str = "pyg", cache: bool = True) -> ArrayDataset:
    """ModelNet40 from `<root>[/ModelNet40]/modelnet40_ply_hdf5_2048/ply_data_{train,test}{0..}.h5`.
    Each file has `data` (N, 2048, 3) and `label` (N, 1); the class names are in shape_names.txt.
    We read the files in numeric order, keep n_points of the 2048 points (the first ones, or distinct
    points drawn per file with default_rng([seed, crc32(file name)])), and normalise as `normalize_points`
    does. x: float32 (N, n_points, 3)."""
    import h5py

    _check_split(split)
    _check_sampling(sampling)
    normalize_points(np.zeros((1, 2, 3), np.float32), normalize)
    base = data_root(root)
    dirs = [base / H5_DIR, base / "ModelNet40" / H5_DIR]
    ds_dir = next((d for d in dirs if d.is_dir()), dirs[0])
    files = sorted(ds_dir.glob(f"ply_data_{split}*.h5"), key=lambda p: int(re.sub(r"\D", "", p.stem) or 0))
    names_file = ds_dir / "shape_names.txt"
    if not files or not names_file.is_file():
        raise FileNotFoundError(
            f"ModelNet40 HDF5 not found: expected {dirs[0]}/ply_data_{split}0.h5 ... and shape_names.txt "
            f"(or the same under {dirs[1]}). The data is PointNet's {H5_DIR}.zip ({H5_URL}, no longer served; "
            "use a mirror). Set the root with root= or $KDUTILS_DATA.")
    classes = _read_lines(names_file)

    def build() -> ArrayDataset:
        xs, ys = [], []
        for f in files:
            with h5py.File(f, "r") as h:
                data = np.asarray(h["data"][()], dtype=np.float32)
                label = np.asarray(h["label"][()]).reshape(-1).astype(np.int64)
            if n_points is not None:
                if n_points > data.shape[1]:
                    raise ValueError(f"n_points={n_points} exceeds the {data.shape[1]} points in {f}")
                if sampling == "first":
                    data = data[:, :n_points]
                else:
                    keys = np.random.default_rng([seed, zlib.crc32(f.name.encode())]).random(data.shape[:2])
                    idx = np.sort(np.argsort(keys, axis=1)[:, :n_points], axis=1)
                    data = np.take_along_axis(data, idx[:, :, None], axis=1)
            xs.append(normalize_points(data[..., :3], normalize))
            ys.append(label)
        y = torch.from_numpy(np.concatenate(ys))
        if len(y) and (y.min() < 0 or y.max() >= len(classes)):
            raise ValueError(f"labels in {ds_dir} run {int(y.min())}..{int(y.max())}, outside the "
                             f"{len(classes)} classes of {names_file}")
        return ArrayDataset(torch.from_numpy(np.concatenate(xs)).float(), y, classes, "modelnet40_h5")

    key = dict(dir=str(ds_dir.resolve()), split=split, n_points=n_points, sampling=sampling, seed=seed,
               normalize=normalize, files=_fingerprint(files))
    return _cached("modelnet40_h5", key, build, cache)


# ---------------------------------------------------------------------------------------------------------
# hls4ml LHC jets (zenodo 3602260, 150 particles)

JETS_DIR = "hls4ml_jets"
JETS_URL = "https://zenodo.org/records/3602260"
JET_CLASSES = ["g", "q", "w", "z", "t"]
JET_LABEL_COLUMNS = ("j_g", "j_q", "j_w", "j_z", "j_t")
JET_LABEL_COLUMNS_DEFAULT = (53, 54, 55, 56, 57)  # positions in `jets` (59 columns) when names are absent
PARTICLE_FEATURES = (  # the 16 per-particle features of `jetConstituentList`, in file order
    "j1_px", "j1_py", "j1_pz", "j1_e", "j1_erel", "j1_pt", "j1_ptrel", "j1_eta", "j1_etarel", "j1_etarot",
    "j1_phi", "j1_phirel", "j1_phirot", "j1_deltaR", "j1_costheta", "j1_costhetarel",
)


def _h5_names(h, key: str) -> list[str] | None:
    if key not in h:
        return None
    return [n.decode() if isinstance(n, bytes) else str(n) for n in np.asarray(h[key][()]).reshape(-1)]


def _feature_index(names: list[str], feature: str) -> int:
    for cand in (feature, f"j1_{feature}"):
        if cand in names:
            return names.index(cand)
    raise ValueError(f"unknown particle feature {feature!r}; the file has: {', '.join(names)}")


def jets_from_arrays(constituents: np.ndarray, jets: np.ndarray, particle_names: list[str] | None = None,
                     jet_names: list[str] | None = None, n_constituents: int = 16,
                     features: Sequence[str] = ("j1_pt", "j1_etarel", "j1_phirel"),
                     min_pt: float | None = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Process one file's arrays into (x float32 (N', n_constituents, len(features)), y int64 (N',)).

    1. If min_pt is set, drop constituents with pt <= min_pt and then drop jets left with none. This is
       what the invariance-KD authors' preprocessing does (2 GeV).
    2. Sort the remaining constituents by pt, descending (stable), and keep the first n_constituents.
    3. Zero-fill the slots of jets with fewer constituents.
    The label is the argmax of the one-hot columns j_g, j_q, j_w, j_z, j_t of `jets`, located by
    `jetFeatureNames` when given, else columns 53..57. The constituents' columns are located by
    `particleFeatureNames` when given, else the official order `PARTICLE_FEATURES`."""
    pnames = list(particle_names) if particle_names else list(PARTICLE_FEATURES)
    if constituents.ndim != 3 or constituents.shape[2] != len(pnames):
        raise ValueError(f"jetConstituentList must be (N, particles, {len(pnames)}); got {constituents.shape}")
    if not 1 <= n_constituents <= constituents.shape[1]:
        raise ValueError(f"n_constituents must be in 1..{constituents.shape[1]}; got {n_constituents}")
    fidx = [_feature_index(pnames, f) for f in features]
    pt = constituents[..., _feature_index(pnames, "j1_pt")]
    keep = pt > (min_pt if min_pt is not None else -np.inf)
    order = np.argsort(np.where(keep, -pt, np.inf), axis=1, kind="stable")[:, :n_constituents]
    x = np.take_along_axis(constituents[..., fidx], order[:, :, None], axis=1).astype(np.float32)
    valid = np.take_along_axis(keep, order, axis=1)
    x[~valid] = 0.0
    if jet_names:
        missing = [c for c in JET_LABEL_COLUMNS if c not in jet_names]
        if missing:
            raise ValueError(f"jetFeatureNames lacks the label columns {missing}")
        lcols = [jet_names.index(c) for c in JET_LABEL_COLUMNS]
    else:
        lcols = list(JET_LABEL_COLUMNS_DEFAULT)
    y = np.asarray(jets)[:, lcols].argmax(axis=1).astype(np.int64)
    has_any = valid.any(axis=1)
    return x[has_any], y[has_any]


def load_hls4ml_jets(split: str = "train", root=None, download: bool | None = None, n_constituents: int = 16,
                     features: Sequence[str] = ("j1_pt", "j1_etarel", "j1_phirel"), min_pt: float | None = 2.0,
                     cache: bool = True) -> ArrayDataset:
    """The hls4ml LHC jet dataset (zenodo 3602260, "150 particles"), as 5-class sets of constituents.

    Expected layout, as the official tarballs unpack: <root>/hls4ml_jets/train/jetImage_*_150p_*.h5
    (from hls4ml_LHCjet_150p_train.tar.gz) and <root>/hls4ml_jets/val/jetImage_*_150p_*.h5 (from
    hls4ml_LHCjet_150p_val.tar.gz). split="test" reads val/, the official held-out part, which is how
    Odagiu et al. use it. All files of the split are read in name order and processed by
    `jets_from_arrays`. Default x: float32 (N, 16, 3) = (pt, eta_rel, phi_rel) of the 16 leading
    constituents, unstandardised. Classes: g, q, w, z, t."""
    import h5py

    _check_split(split)
    folder = data_root(root) / JETS_DIR / ("train" if split == "train" else "val")
    files = sorted(folder.glob("jetImage_*_150p_*.h5")) if folder.is_dir() else []
    if not files:
        raise FileNotFoundError(
            f"hls4ml jets not found: expected {folder}/jetImage_*_150p_*.h5. Get "
            f"hls4ml_LHCjet_150p_{'train' if split == 'train' else 'val'}.tar.gz from {JETS_URL} and unpack it "
            f"into {folder.parent}/. Set the root with root= or $KDUTILS_DATA.")

    def build() -> ArrayDataset:
        xs, ys = [], []
        for f in files:
            with h5py.File(f, "r") as h:
                x, y = jets_from_arrays(np.asarray(h["jetConstituentList"][()]), np.asarray(h["jets"][()]),
                                        _h5_names(h, "particleFeatureNames"), _h5_names(h, "jetFeatureNames"),
                                        n_constituents, features, min_pt)
            xs.append(x)
            ys.append(y)
        return ArrayDataset(torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys)),
                            list(JET_CLASSES), "hls4ml_jets")

    key = dict(dir=str(folder.resolve()), n_constituents=n_constituents, features=list(features),
               min_pt=min_pt, files=_fingerprint(files))
    return _cached(f"hls4ml_jets_{split}", key, build, cache)


DATASETS = {
    "set_mnist": load_set_mnist,
    "modelnet40": load_modelnet40,
    "modelnet40_h5": load_modelnet40_h5,
    "hls4ml_jets": load_hls4ml_jets,
}
