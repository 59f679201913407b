"""Helpers shared by several test files: the data root with its skip markers, and small archives written on
the fly. Fixtures live in conftest.py; what is here is imported (`from helpers import ...`)."""
from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Mapping

import pytest

from kdutils.paths import data_root

DATA_ROOT = data_root()
"""The datasets the tests read: $KDUTILS_DATA, which the root conftest.py points at ../shared/data when there."""

needs_mnist = pytest.mark.skipif(not (DATA_ROOT / "MNIST" / "raw").is_dir(),
                                 reason=f"real MNIST not found under {DATA_ROOT}/MNIST/raw (set KDUTILS_DATA)")
needs_fashion = pytest.mark.skipif(not (DATA_ROOT / "FashionMNIST" / "raw").is_dir(),
                                   reason=f"real Fashion-MNIST not found under {DATA_ROOT}/FashionMNIST/raw")


def write_tar_gz(path: Path, members: Mapping[str, str | bytes]) -> Path:
    """A .tar.gz at `path` holding each {name: text or bytes} as a regular file, in the order given."""
    with tarfile.open(path, "w:gz") as tf:
        for name, content in members.items():
            blob = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tf.addfile(info, io.BytesIO(blob))
    return path
