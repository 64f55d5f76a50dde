"""The ROS environment of a process: ROS_DOMAIN_ID, and where the ROS 2 wheels from PyPI keep the shared libraries
rclpy needs.

The `ros-*` wheels put rcl, rmw and Fast DDS libraries in `site-packages/ros_*.libs` and ship a `.pth` hook
(ros_wheels_bootstrapper) that re-executes every Python of the environment once with LD_LIBRARY_PATH pointing
there, because the dynamic loader reads LD_LIBRARY_PATH only at process start. The launcher hands children that
environment directly, so they start with it and are not executed twice.
"""
from __future__ import annotations

import functools
import os
import sys
import sysconfig
from collections.abc import Mapping
from pathlib import Path

from sim.config_loading import ConfigError

BOOTSTRAP_GUARD = "_ROS_WHEELS_BOOTSTRAP_COMPLETE"  # set by ros_wheels_bootstrapper once it has re-executed


def ros_library_dirs() -> list[str]:
    """The folders holding the ROS 2 wheels' shared libraries: <prefix>/lib and site-packages/ros_*.libs."""
    site_packages = Path(sysconfig.get_paths()["purelib"])
    folders = [str(path.resolve()) for path in sorted(site_packages.glob("ros_*.libs")) if path.is_dir()]
    return [str(Path(sys.prefix) / "lib"), *folders] if folders else []


def ros_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """`base` (default os.environ) with LD_LIBRARY_PATH extended so a child process can load rclpy as it starts."""
    environment = dict(os.environ if base is None else base)
    folders = ros_library_dirs()
    if not folders:
        return environment
    current = [part for part in environment.get("LD_LIBRARY_PATH", "").split(os.pathsep) if part]
    environment["LD_LIBRARY_PATH"] = os.pathsep.join([*folders, *(p for p in current if p not in folders)])
    environment[BOOTSTRAP_GUARD] = "1"
    return environment


def domain_id_from_env() -> int:
    """ROS_DOMAIN_ID (0 when unset), checked against the range ROS 2 allows."""
    text = os.environ.get("ROS_DOMAIN_ID", "").strip()
    if not text:
        return 0
    if not text.isdigit() or not 0 <= int(text) <= 232:
        raise ConfigError(f"ROS_DOMAIN_ID={text!r}: expected an integer in 0..232")
    return int(text)


@functools.cache
def rclpy_import_error() -> str | None:
    """None when rclpy imports in this process, else why not (what to install or set)."""
    try:
        import rclpy  # noqa: F401
    except ImportError as error:
        if "cannot open shared object file" in str(error):
            return (
                f"rclpy is installed but its libraries do not load ({error}); start Python from the environment "
                f"that installed the ROS 2 wheels, or set LD_LIBRARY_PATH={os.pathsep.join(ros_library_dirs())}"
            )
        return f"rclpy is not installed ({error}): pip install -e '.[ros]' or source a ROS 2 installation"
    return None
