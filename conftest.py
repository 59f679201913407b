"""Test-wide environment, set before any notebook kernel starts (kernels inherit it).

Everything the tests train goes to a throw-away results store and cache at the smoke profile, so the suite
never touches the committed results/ nor the user's cache.
"""
import os
import tempfile
from pathlib import Path

_scratch = Path(tempfile.mkdtemp(prefix="kdutils-tests-"))
os.environ["KDUTILS_PROFILE"] = "smoke"
os.environ["KDUTILS_RESULTS"] = str(_scratch / "results")
os.environ["KDUTILS_CACHE"] = str(_scratch / "cache")
os.environ["KDUTILS_PROGRESS"] = "0"
os.environ.setdefault("KDUTILS_DEVICE", "cpu")
_shared = Path(__file__).resolve().parent.parent / "shared" / "data"
if "KDUTILS_DATA" not in os.environ and _shared.is_dir():
    os.environ["KDUTILS_DATA"] = str(_shared)
