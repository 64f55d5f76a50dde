"""Where the project's data folders (config/, assets/, launch/) and the hand's asset files live."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

PACKAGE = "inhand"
SOURCE_ROOT = Path(__file__).resolve().parent.parent


def share_directory() -> Path:
    """$(find-pkg-share inhand): the source tree of a checkout (an editable install), else <prefix>/share/inhand."""
    # a wheel installs sim/ into site-packages, whose parent is no checkout: the package.xml marks the source tree
    if (SOURCE_ROOT / "package.xml").is_file() and (SOURCE_ROOT / "config").is_dir():
        return SOURCE_ROOT
    return Path(sys.prefix) / "share" / PACKAGE


def data_path(relative: str | Path) -> Path:
    """A file under config/, assets/ or launch/ of the package, whatever the current folder."""
    candidate = share_directory() / relative
    if candidate.exists():
        return candidate
    raise FileNotFoundError(f"{relative}: not found under {share_directory()}; is inhand installed?")


def package_file(path: str | Path) -> Path:
    """`path` as given when it exists or is absolute, else the package's file of that name (config/env_nominal.yaml
    named by a checkpoint works from any folder); a path found nowhere comes back as given, for its error."""
    candidate = Path(path)
    if candidate.is_absolute() or candidate.exists() or not (share_directory() / candidate).exists():
        return candidate
    return share_directory() / candidate


def hand_assets_dir() -> Path:
    """The envs/assets folder of the installed gymnasium-robotics package (hand MJCF, meshes, textures)."""
    spec = importlib.util.find_spec("gymnasium_robotics")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("gymnasium-robotics is not installed; its Shadow Hand model files are required")
    assets = Path(next(iter(spec.submodule_search_locations))) / "envs" / "assets"
    if not (assets / "hand" / "robot.xml").is_file():
        raise FileNotFoundError(f"{assets}/hand/robot.xml missing: the installed gymnasium-robotics lacks the hand model")
    return assets
