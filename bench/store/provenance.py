"""What a run records about the software it ran: package versions and the git commit."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

# distribution -> (key in the manifest's ``versions``, module name)
_PACKAGES = {"torch": ("torch", "torch"), "torchvision": ("torchvision", "torchvision"),
             "bench-gen": ("bench", "bench"), "torch-fidelity": ("torch_fidelity", "torch_fidelity")}


def package_version(distribution: str, module: str | None = None) -> str | None:
    """The version of an imported module if it is loaded (torch's includes its build, e.g.
    ``+cu130``), else of the installed distribution."""
    loaded = sys.modules.get(module or distribution)
    if loaded is not None and isinstance(getattr(loaded, "__version__", None), str):
        return loaded.__version__
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def versions() -> dict:
    """Python and the packages that decide a result, read from their metadata (nothing imported)."""
    return {"python": sys.version.split()[0],
            **{key: package_version(dist, module) for dist, (key, module) in _PACKAGES.items()}}


def git_commit() -> str | None:
    """The commit of the bench source tree, if it is a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                             timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None
