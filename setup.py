"""Installs inhand: sim, policies, vision, ros_nodes and the `inhand` command."""
from __future__ import annotations

from pathlib import Path

from setuptools import setup

PACKAGE = "inhand"
HERE = Path(__file__).parent


def share_tree(folder: str) -> list[tuple[str, list[str]]]:
    """data_files entries that install `folder` under share/inhand, keeping its sub-folders."""
    entries: dict[str, list[str]] = {}
    for path in sorted((HERE / folder).rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            relative = path.relative_to(HERE)
            entries.setdefault(f"share/{PACKAGE}/{relative.parent}", []).append(str(relative))
    return sorted(entries.items())


# ROS 2 Kilted's Python stack as PyPI wheels (CPython 3.11, manylinux): rclpy on Fast DDS, the default RMW, plus the
# message packages our nodes use. Pinned together: they are one ROS release. Elsewhere only the dds transport installs.
_ROS_MARKER = '; python_version == "3.11" and sys_platform == "linux"'
ROS_WHEELS = [
    requirement + _ROS_MARKER
    for requirement in (
        "ros-rclpy==9.1.2",
        "ros-rmw-fastrtps-cpp==9.3.3",
        "ros-rmw-dds-common==4.0.0",
        "ros-builtin-interfaces==2.3.0",
        "ros-std-msgs==5.5.1",
        "ros-sensor-msgs==5.5.1",
        "ros-geometry-msgs==5.5.1",
        "ros-diagnostic-msgs==5.5.1",
        "ros-rosgraph-msgs==2.3.0",
    )
]


setup(
    name=PACKAGE,
    version="0.1.0",
    description="Dactyl-style in-hand cube reorientation: MuJoCo sim, LSTM PPO, CNN pose, ROS 2 nodes",
    python_requires=">=3.10",
    packages=["inhand", "sim", "policies", "vision", "ros_nodes"],
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/inhand"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        *share_tree("launch"),
        *share_tree("config"),
        *share_tree("assets"),
    ],
    install_requires=[
        "torch==2.13.0",
        "numpy>=1.26",
        "mujoco>=3.3,<5",
        "gymnasium>=1.0",
        "gymnasium-robotics>=1.4",
        "pyyaml>=6",
        "tqdm>=4.66",
        "imageio>=2.34",
        "imageio-ffmpeg>=0.5",
        "opencv-python-headless>=4.9",
        "matplotlib>=3.8",
        "tensorboard>=2.16",
        "cyclonedds>=11.0,<12",
        # the bag writer flushes MCAP chunks through rosbags 0.11 internals so a killed recorder loses little
        "rosbags>=0.11,<0.12",
        "mcap>=1.1",
        "onnx>=1.16",
        "onnxruntime>=1.18",
        "ray>=2.9",
        # Mann-Whitney U of `inhand bench fidelity`
        "scipy>=1.11",
    ],
    extras_require={
        # sb3-contrib: the peer learner `inhand bench train` measures ours against
        "bench": ["sb3-contrib>=2.9"],
        "ros": ROS_WHEELS,
        # the test suite runs every transport backend, rclpy included
        "test": ["pytest>=8", "mcap-ros2-support>=0.5", "sb3-contrib>=2.9", *ROS_WHEELS],
    },
    entry_points={
        "console_scripts": [
            "inhand = inhand.cli:main",
            "hand_driver = ros_nodes.hand_driver:main",
            "goal_manager = ros_nodes.goal_manager:main",
            "recorder = ros_nodes.recorder:main",
            "policy = ros_nodes.policy:main",
            "pose_estimator = ros_nodes.pose_estimator:main",
        ],
    },
)
