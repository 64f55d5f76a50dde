"""rclpy backend: the same interface on ROS 2's own client library. Messages cross rclpy as serialized CDR, so
our dataclasses and encoder are used unchanged and rclpy only needs the message packages for type support.

rclpy is initialized once per process and ROS domain (one rclpy Context each, shut down at exit); each node has
its own single-threaded executor so spin_once can count the callbacks it ran, as the other backends do.
"""
from __future__ import annotations

import atexit
import importlib
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

import rclpy
from rclpy.context import Context
from rclpy.exceptions import ParameterAlreadyDeclaredException, ParameterNotDeclaredException
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node as _RclpyNode
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions

from ros_nodes.transport.node import (
    DEFAULT_QOS,
    Node,
    Publisher,
    QosProfile,
    Subscription,
    Timer,
    as_qos,
    check_message_type,
    checked_parameter,
)
from ros_nodes.transport.ros_env import domain_id_from_env
from sim.paths import data_path

DISCOVERY_RANGE_ENV = "ROS_AUTOMATIC_DISCOVERY_RANGE"
FAST_DDS_PROFILE_ENV = "FASTDDS_DEFAULT_PROFILES_FILE"
FAST_DDS_PROFILE = "config/fastdds.xml"
_MAX_CALLBACKS_PER_SPIN = 256  # so a flood of messages cannot keep spin_once from returning
_CONTEXTS: dict[int, Context] = {}
_CONTEXTS_LOCK = threading.Lock()


def _context(domain_id: int) -> Context:
    """The process's rclpy context for a domain, initialized on first use and shut down at exit."""
    with _CONTEXTS_LOCK:
        if domain_id not in _CONTEXTS:
            # Discovery on this host only unless the user chose otherwise, as the dds backend's loopback default;
            # it is also what lets Fast DDS and our Cyclone nodes find each other here (README, ROS 2 section).
            os.environ.setdefault(DISCOVERY_RANGE_ENV, "LOCALHOST")
            # Fast DDS without XTypes type propagation (config/fastdds.xml says why), unless the user has a profile
            os.environ.setdefault(FAST_DDS_PROFILE_ENV, str(data_path(FAST_DDS_PROFILE)))
            context = Context()
            # the node's main() handles SIGINT/SIGTERM (a clean close between callbacks), not rclpy
            rclpy.init(context=context, domain_id=domain_id, signal_handler_options=SignalHandlerOptions.NO)
            _CONTEXTS[domain_id] = context
            if len(_CONTEXTS) == 1:
                atexit.register(_shutdown_contexts)
        return _CONTEXTS[domain_id]


def _shutdown_contexts() -> None:
    with _CONTEXTS_LOCK:
        for context in _CONTEXTS.values():
            context.try_shutdown()
        _CONTEXTS.clear()


def _rclpy_type(msg_type: type) -> type:
    """sensor_msgs/msg/JointState -> the class sensor_msgs.msg.JointState of the ROS message package."""
    package, _, name = msg_type.ROS_TYPE.split("/")
    return getattr(importlib.import_module(f"{package}.msg"), name)


def _rclpy_qos(qos: QosProfile) -> QoSProfile:
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=qos.depth,
        reliability=ReliabilityPolicy.RELIABLE if qos.reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.VOLATILE,
    )


class RclpyNode(Node):
    """A node backed by rclpy.node.Node in the rclpy context of its ROS domain."""

    backend = "rclpy"

    def __init__(
        self,
        name: str,
        namespace: str = "/",
        parameters: Mapping[str, Any] | None = None,
        remappings: Mapping[str, str] | None = None,
        domain_id: int | None = None,
    ) -> None:
        super().__init__(name, namespace, parameters, remappings)
        self.domain_id = domain_id_from_env() if domain_id is None else domain_id
        remap_args = [arg for source, target in (remappings or {}).items() for arg in ("-r", f"{source}:={target}")]
        # Only use_sim_time goes to rclpy as an override (rclpy declares it itself); the other overrides are checked
        # by our rules (an int is accepted for a float parameter), which rclpy's static typing would reject.
        overrides = [Parameter("use_sim_time", value=bool(self._parameter_overrides["use_sim_time"]))] \
            if "use_sim_time" in self._parameter_overrides else []
        self._context = _context(self.domain_id)
        self._node = _RclpyNode(
            name,
            namespace=self.namespace,
            context=self._context,
            cli_args=["--ros-args", *remap_args] if remap_args else None,
            parameter_overrides=overrides,
            automatically_declare_parameters_from_overrides=False,
        )
        self._executor = SingleThreadedExecutor(context=self._context)
        self._executor.add_node(self._node)
        self._ran = 0
        self._shutdown = threading.Event()
        self._spin_lock = threading.Lock()
        self._spinning_thread: int | None = None
        self._closed = False

    def resolve_topic(self, topic: str) -> str:
        return self._node.resolve_topic_name(topic)

    def declare_parameter(self, name: str, default: Any) -> Any:
        if name == "use_sim_time":
            return self._node.get_parameter(name).value  # rclpy declares it itself
        value = checked_parameter(self.fully_qualified_name, name, self._parameter_overrides.get(name, default), default)
        try:
            return self._node.declare_parameter(name, value).value
        except ParameterAlreadyDeclaredException:
            raise ValueError(f"node {self.fully_qualified_name}: parameter {name!r} is already declared") from None

    def get_parameter(self, name: str) -> Any:
        try:
            return self._node.get_parameter(name).value
        except ParameterNotDeclaredException:
            declared = sorted(self._node._parameters)  # rclpy has no public list of declared names
            raise KeyError(
                f"node {self.fully_qualified_name}: parameter {name!r} is not declared; declared: {declared}"
            ) from None

    def set_parameter(self, name: str, value: Any) -> None:
        value = checked_parameter(self.fully_qualified_name, name, value, self.get_parameter(name))
        (result,) = self._node.set_parameters([Parameter(name, value=value)])
        if not result.successful:
            raise ValueError(f"node {self.fully_qualified_name}: parameter {name!r} = {value!r}: {result.reason}")

    def create_publisher(self, msg_type: type, topic: str, qos: QosProfile | int = DEFAULT_QOS) -> Publisher:
        self._check_alive()
        check_message_type(msg_type)
        profile = as_qos(qos)
        publisher = self._node.create_publisher(_rclpy_type(msg_type), topic, _rclpy_qos(profile))

        def send(data: bytes) -> None:
            if not self.is_shutdown:
                publisher.publish(data)

        def count() -> int:
            return 0 if self.is_shutdown else publisher.get_subscription_count()

        return Publisher(msg_type, publisher.topic_name, profile, send, count)

    def create_subscription(
        self,
        msg_type: type,
        topic: str,
        callback: Callable[[Any], Any],
        qos: QosProfile | int = DEFAULT_QOS,
        raw: bool = False,
    ) -> Subscription:
        self._check_alive()
        check_message_type(msg_type)
        profile = as_qos(qos)
        subscription = Subscription(msg_type, self.resolve_topic(topic), profile, callback, raw)
        self._node.create_subscription(
            _rclpy_type(msg_type), topic, self._counted(subscription.deliver), _rclpy_qos(profile), raw=True
        )
        return subscription

    def create_timer(self, period_s: float, callback: Callable[[], Any]) -> Timer:
        self._check_alive()
        timer = Timer(period_s, callback, self.now_ns)  # validates the period
        ros_timer = self._node.create_timer(period_s, self._counted(callback))  # on the node's (sim) clock

        def cancel() -> None:
            timer.cancelled = True
            ros_timer.cancel()

        timer.cancel = cancel  # type: ignore[method-assign]
        return timer

    def _counted(self, callback: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any) -> None:
            if not self.is_shutdown:
                self._ran += 1
                callback(*args)

        return run

    def now_ns(self) -> int:
        return self._node.get_clock().now().nanoseconds

    def spin_once(self, timeout_s: float = 0.1) -> int:
        if self.is_shutdown:
            return 0
        with self._spin_lock:
            self._spinning_thread = threading.get_ident()
            self._ran = 0
            try:
                self._executor.spin_once(timeout_sec=max(0.0, timeout_s))
                # spin_once runs one callback; run the others that are ready now, as the other backends do
                while 0 < self._ran < _MAX_CALLBACKS_PER_SPIN and not self.is_shutdown:
                    before = self._ran
                    self._executor.spin_once(timeout_sec=0.0)
                    if self._ran == before:
                        break
                return self._ran
            finally:
                self._spinning_thread = None
                if self.is_shutdown:
                    self._close_once()

    @property
    def is_shutdown(self) -> bool:
        return self._shutdown.is_set()

    def shutdown(self) -> None:
        if self._shutdown.is_set():
            return
        self._shutdown.set()
        self._executor.wake()
        if self._spinning_thread == threading.get_ident():
            return  # called from one of this node's callbacks: spin_once closes the node when it returns
        with self._spin_lock:
            self._close_once()

    def _close_once(self) -> None:
        if not self._closed:
            self._closed = True
            self._executor.remove_node(self._node)
            self._executor.shutdown(timeout_sec=1.0)
            self._node.destroy_node()

    def _check_alive(self) -> None:
        if self.is_shutdown:
            raise RuntimeError(f"node {self.fully_qualified_name} is shut down")
