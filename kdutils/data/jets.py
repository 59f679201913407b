"""The hls4ml LHC jet dataset (zenodo 3602260, 150 particles) as point sets of constituents."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from kdutils.data.datasets import ArrayDataset
from kdutils.data.pointsets import _check_split, _cached, _fingerprint
from kdutils.paths import data_root


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
