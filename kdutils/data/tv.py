"""Import torchvision next to a CPU-only torch.

The registry's torchvision wheels are CUDA builds whose compiled ops reference CUDA symbols; next to a CPU
torch their meta registrations fail with "operator torchvision::nms does not exist". Declaring the two missing
operator schemas first lets the pure-Python parts (datasets, download helpers, transforms) import. On a CUDA
torch the plain import already works and nothing is patched.
"""
from __future__ import annotations

import sys
from types import ModuleType

import torch

_FRAGMENT: torch.library.Library | None = None


def _declare_missing_ops() -> None:
    global _FRAGMENT
    if _FRAGMENT is not None:
        return
    _FRAGMENT = torch.library.Library("torchvision", "FRAGMENT")
    for schema in (
        "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
        "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    ):
        try:
            _FRAGMENT.define(schema)
        except RuntimeError:  # already defined by a working build
            pass


def import_torchvision() -> ModuleType:
    """Return the torchvision module, patching the CPU-torch import failure if needed."""
    try:
        import torchvision
        return torchvision
    except RuntimeError as err:
        if "torchvision::" not in str(err):
            raise
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    _declare_missing_ops()
    import torchvision
    return torchvision
