"""One small node interface (publishers, subscriptions, timers, parameters, clock, spin) over three backends:
"rclpy" (a ROS 2 installation), "dds" (Cyclone DDS speaking ROS 2's wire conventions) and "inproc" (tests)."""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ros_nodes.transport.names import InvalidNameError, parse_remapping, resolve_name
from ros_nodes.transport.ros_env import rclpy_import_error
from ros_nodes.transport.node import (
    CLOCK_QOS,
    DEFAULT_QOS,
    SENSOR_QOS,
    Node,
    NodeClock,
    Publisher,
    QosProfile,
    Subscription,
    Timer,
)
from sim.config_loading import ConfigError

BACKENDS = ("rclpy", "dds", "inproc")
BACKEND_ENV = "INHAND_TRANSPORT"


def rclpy_available() -> bool:
    """True when rclpy imports here (the ROS 2 wheels of the `ros` extra, or a sourced ROS 2 installation)."""
    return rclpy_import_error() is None


def default_backend() -> str:
    """$INHAND_TRANSPORT if set, else rclpy where it imports, else dds."""
    chosen = os.environ.get(BACKEND_ENV, "").strip() or ("rclpy" if rclpy_available() else "dds")
    if chosen not in BACKENDS:
        raise ConfigError(f"{BACKEND_ENV}={chosen!r}: expected one of {BACKENDS}")
    return chosen


def create_node(
    name: str,
    namespace: str = "/",
    *,
    backend: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    remappings: Mapping[str, str] | None = None,
    domain_id: int | None = None,
    dds_config: str | None = None,
) -> Node:
    """A node on `backend` (default: default_backend()); domain_id defaults to $ROS_DOMAIN_ID."""
    backend = backend or default_backend()
    if backend == "inproc":
        from ros_nodes.transport.inproc import InprocNode

        return InprocNode(name, namespace, parameters, remappings, domain_id=domain_id or 0)
    if backend == "dds":
        from ros_nodes.transport.dds import DdsNode

        return DdsNode(name, namespace, parameters, remappings, domain_id=domain_id, config=dds_config)
    if backend == "rclpy":
        problem = rclpy_import_error()
        if problem is not None:
            raise ConfigError(f"backend 'rclpy': {problem}; or use backend 'dds'")
        from ros_nodes.transport.rclpy_backend import RclpyNode

        return RclpyNode(name, namespace, parameters, remappings, domain_id=domain_id)
    raise ConfigError(f"unknown transport backend {backend!r}; expected one of {BACKENDS}")


__all__ = [
    "BACKENDS", "CLOCK_QOS", "DEFAULT_QOS", "SENSOR_QOS", "InvalidNameError", "Node", "NodeClock", "Publisher",
    "QosProfile", "Subscription", "Timer", "create_node", "default_backend", "parse_remapping", "rclpy_available",
    "resolve_name",
]
