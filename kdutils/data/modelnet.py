"""ModelNet40 point clouds in the PointNet++ resampled text layout and the PointNet HDF5 layout (never
downloaded: the files are large; the error names what to place where)."""
from __future__ import annotations

import csv
import os
import re
import shutil
import tarfile
import tempfile
import warnings
import zipfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from kdutils.data.datasets import ArrayDataset
from kdutils.data.pointsets import _check_split, _cached, _check_sampling, _fingerprint, _subsample, normalize_points
from kdutils.paths import cache_dir, data_root


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
                    reader = tf.extractfile(m) if rel is not None else None  # a regular file always has one
                    if rel is not None and reader is not None:
                        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                        with reader, open(tmp / rel, "wb") as dst:
                            shutil.copyfileobj(reader, dst)
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
            for shape_file in files:
                is_test = _split_id(shape_file.name)[1] > n_train
                if is_test == (split == "test"):
                    rel.append(f"{cls}/{shape_file.name}")
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
