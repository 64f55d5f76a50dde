"""rclpy backend: the same interface on a real ROS 2 installation. Messages cross rclpy as serialized CDR, so
our dataclasses and encoder are used unchanged and rclpy only needs the message packages for type support."""
from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

import rclpy
from rclpy.node import Node as _RclpyNode
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy

from ros_nodes.transport.node import DEFAULT_QOS, Node, Publisher, QosProfile, Subscription, Timer, as_qos


def _rclpy_type(msg_type: type) -> type:
    """sensor_msgs/msg/JointState -> the class sensor_msgs.msg.JointState from the ROS installation."""
    package, _, name = msg_type.ROS_TYPE.split("/")
    return getattr(importlib.import_module(f"{package}.msg"), name)


def _rclpy_qos(qos: QosProfile) -> QoSProfile:
    reliability = ReliabilityPolicy.RELIABLE if qos.reliable else ReliabilityPolicy.BEST_EFFORT
    return QoSProfile(depth=qos.depth, reliability=reliability)


class RclpyNode(Node):
    """A node backed by rclpy.node.Node; spin_once runs rclpy's executor for this node."""

    backend = "rclpy"

    def __init__(
        self,
        name: str,
        namespace: str = "/",
        parameters: Mapping[str, Any] | None = None,
        remappings: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(name, namespace, parameters, remappings)
        if not rclpy.ok():
            rclpy.init()
        remap_args = [arg for source, target in (remappings or {}).items() for arg in ("-r", f"{source}:={target}")]
        self._node = _RclpyNode(
            name,
            namespace=self.namespace,
            cli_args=["--ros-args", *remap_args] if remap_args else None,
            parameter_overrides=[Parameter(key, value=value) for key, value in (parameters or {}).items()],
            automatically_declare_parameters_from_overrides=False,
        )
        self._closed = False

    def resolve_topic(self, topic: str) -> str:
        return self._node.resolve_topic_name(topic)

    def declare_parameter(self, name: str, default: Any) -> Any:
        if name == "use_sim_time":
            return self._node.get_parameter(name).value  # rclpy declares it itself
        return self._node.declare_parameter(name, default).value

    def get_parameter(self, name: str) -> Any:
        return self._node.get_parameter(name).value

    def set_parameter(self, name: str, value: Any) -> None:
        self._node.set_parameters([Parameter(name, value=value)])

    def create_publisher(self, msg_type: type, topic: str, qos: QosProfile | int = DEFAULT_QOS) -> Publisher:
        profile = as_qos(qos)
        publisher = self._node.create_publisher(_rclpy_type(msg_type), topic, _rclpy_qos(profile))
        return Publisher(msg_type, publisher.topic_name, profile, publisher.publish, publisher.get_subscription_count)

    def create_subscription(
        self,
        msg_type: type,
        topic: str,
        callback: Callable[[Any], Any],
        qos: QosProfile | int = DEFAULT_QOS,
        raw: bool = False,
    ) -> Subscription:
        profile = as_qos(qos)
        subscription = Subscription(msg_type, self.resolve_topic(topic), profile, callback, raw)
        self._node.create_subscription(
            _rclpy_type(msg_type), topic, subscription.deliver, _rclpy_qos(profile), raw=True
        )
        return subscription

    def create_timer(self, period_s: float, callback: Callable[[], Any]) -> Timer:
        timer = Timer(period_s, callback, self.now_ns)
        ros_timer = self._node.create_timer(period_s, callback)
        timer.cancel = ros_timer.cancel  # type: ignore[method-assign]
        return timer

    def now_ns(self) -> int:
        return self._node.get_clock().now().nanoseconds

    def spin_once(self, timeout_s: float = 0.1) -> int:
        if self._closed:
            return 0
        rclpy.spin_once(self._node, timeout_sec=timeout_s)
        return 1

    @property
    def is_shutdown(self) -> bool:
        return self._closed

    def shutdown(self) -> None:
        if not self._closed:
            self._closed = True
            self._node.destroy_node()
