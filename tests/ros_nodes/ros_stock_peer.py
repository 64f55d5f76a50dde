"""Starting the stock rclpy node (ros_rclpy_probe.py) in its own process, as a ROS 2 host would run it."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from ros_nodes.transport.ros_env import ros_environment

PROBE = Path(__file__).with_name("ros_rclpy_probe.py")
# the one setting a stock ROS 2 host needs (README): discovery on this host only, over loopback
STOCK_ROS_ENV = {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}


def start_probe(domain_id: int, subscribe: dict[str, str], seconds: float, max_seconds: float | None = None
                ) -> subprocess.Popen[str]:
    """Start the stock rclpy node on domain_id: Fast DDS defaults plus STOCK_ROS_ENV, none of our settings."""
    spec = json.dumps({"seconds": seconds, "max_seconds": max_seconds or seconds, "subscribe": subscribe})
    environment = ros_environment() | STOCK_ROS_ENV | {"ROS_DOMAIN_ID": str(domain_id)}
    for ours in ("INHAND_DDS_CONFIG", "INHAND_TRANSPORT"):
        environment.pop(ours, None)
    return subprocess.Popen([sys.executable, str(PROBE), spec], env=environment, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def probe_report(probe: subprocess.Popen[str], timeout_s: float = 60.0) -> dict[str, Any]:
    """Wait for the probe and return its JSON report (raises with its stderr if it failed)."""
    output, errors = probe.communicate(timeout=timeout_s)
    if probe.returncode != 0 or not output.strip():
        raise AssertionError(f"the rclpy probe failed ({probe.returncode}): {errors[-3000:]}")
    report = json.loads(output.strip().splitlines()[-1])
    report["stderr"] = errors
    return report
