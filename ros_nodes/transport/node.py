"""The transport interface every backend implements, and the single-threaded executor shared by inproc and dds."""
from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ros_nodes.msgs import Clock as ClockMsg
from ros_nodes.msgs import Time, deserialize, serialize
from ros_nodes.transport.names import normalize_namespace, resolve_name, resolve_remappings, validate_node_name


@dataclass(frozen=True)
class QosProfile:
    """The QoS a publisher offers or a subscription requests: KEEP_LAST(depth), reliable or best effort, VOLATILE."""

    depth: int = 10
    reliable: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.depth, int) or self.depth < 1:
            raise ValueError(f"QoS depth must be an int >= 1, got {self.depth!r}")


DEFAULT_QOS = QosProfile(depth=10, reliable=True)  # rclpy's default: KEEP_LAST 10, RELIABLE, VOLATILE
SENSOR_QOS = QosProfile(depth=5, reliable=False)  # rclpy's qos_profile_sensor_data: KEEP_LAST 5, BEST_EFFORT
CLOCK_QOS = QosProfile(depth=1, reliable=False)  # what rclpy's TimeSource subscribes /clock with


def as_qos(qos: QosProfile | int) -> QosProfile:
    """An int means KEEP_LAST(depth) with the default reliability, as in rclpy."""
    if isinstance(qos, QosProfile):
        return qos
    if isinstance(qos, int) and not isinstance(qos, bool):
        return QosProfile(depth=qos)
    raise TypeError(f"qos must be a QosProfile or a depth (int), got {qos!r}")


class NodeClock:
    """ROS time of a node: wall time, or the latest /clock value when use_sim_time is on (0 before the first)."""

    def __init__(self, use_sim_time: bool) -> None:
        self.use_sim_time = use_sim_time
        self._sim_time_ns = 0

    def now_ns(self) -> int:
        """Nanoseconds since the epoch (wall) or since the simulation's zero (sim)."""
        return self._sim_time_ns if self.use_sim_time else time.time_ns()

    def now(self) -> Time:
        """The current time as a builtin_interfaces/Time, ready for a header stamp."""
        return Time.from_ns(self.now_ns())

    def set_sim_time(self, nanoseconds: int) -> None:
        """Called with each /clock message."""
        self._sim_time_ns = int(nanoseconds)


class Timer:
    """Calls `callback` every `period_s` of the node's clock; cancel() stops it."""

    def __init__(self, period_s: float, callback: Callable[[], Any], now_ns: Callable[[], int]) -> None:
        if not period_s > 0:
            raise ValueError(f"timer period must be > 0 s, got {period_s!r}")
        self.period_ns = int(round(period_s * 1e9))
        self.callback = callback
        self._now_ns = now_ns
        self.next_due_ns = now_ns() + self.period_ns
        self.cancelled = False

    def cancel(self) -> None:
        """Stop firing."""
        self.cancelled = True

    def due_in_ns(self) -> int:
        """Nanoseconds until the next call (<= 0: due)."""
        return self.next_due_ns - self._now_ns()

    def fire_if_due(self) -> bool:
        """Call the callback when due; missed periods are skipped, not replayed (as rcl does)."""
        if self.cancelled:
            return False
        now = self._now_ns()
        if now < self.next_due_ns - self.period_ns:
            self.next_due_ns = now + self.period_ns  # the clock jumped back (a simulation reset): start over
            return False
        if now < self.next_due_ns:
            return False
        missed = (now - self.next_due_ns) // self.period_ns
        self.next_due_ns += (missed + 1) * self.period_ns
        self.callback()
        return True


class Publisher:
    """Publishes messages of one type on one resolved topic."""

    def __init__(
        self,
        msg_type: type,
        topic: str,
        qos: QosProfile,
        send: Callable[[bytes], None],
        count_subscriptions: Callable[[], int],
    ) -> None:
        self.msg_type = msg_type
        self.topic = topic
        self.qos = qos
        self._send = send
        self._count_subscriptions = count_subscriptions

    def get_subscription_count(self) -> int:
        """How many subscriptions (of any process) are matched with this publisher now."""
        return self._count_subscriptions()

    def publish(self, message: Any) -> None:
        """Publish a message of msg_type, or its CDR bytes as they are (replay of recorded data)."""
        if isinstance(message, (bytes, bytearray, memoryview)):
            self._send(bytes(message))
            return
        if type(message) is not self.msg_type:
            raise TypeError(
                f"publisher on {self.topic} takes {self.msg_type.ROS_TYPE}, got {type(message).__name__}"
            )
        self._send(serialize(message))


class Subscription:
    """Delivers messages (or raw CDR bytes when raw=True) of one topic to a callback while the node spins."""

    def __init__(self, msg_type: type, topic: str, qos: QosProfile, callback: Callable[[Any], Any], raw: bool) -> None:
        self.msg_type = msg_type
        self.topic = topic
        self.qos = qos
        self.callback = callback
        self.raw = raw

    def deliver(self, data: bytes) -> None:
        """Decode (unless raw) and call the callback."""
        self.callback(data if self.raw else deserialize(data, self.msg_type))


class Node(ABC):
    """A ROS 2 node: publishers, subscriptions, timers, parameters and a clock; one thread spins it."""

    backend: str = ""

    def __init__(
        self,
        name: str,
        namespace: str = "/",
        parameters: Mapping[str, Any] | None = None,
        remappings: Mapping[str, str] | None = None,
    ) -> None:
        self.name = validate_node_name(name)
        self.namespace = normalize_namespace(namespace)
        self._parameter_overrides = dict(parameters or {})
        self._parameters: dict[str, Any] = {}
        self._remappings = resolve_remappings(remappings, self.namespace, self.name)

    @property
    def fully_qualified_name(self) -> str:
        """/namespace/name."""
        return ("" if self.namespace == "/" else self.namespace) + "/" + self.name

    def resolve_topic(self, topic: str) -> str:
        """The absolute topic name after namespace expansion and remapping."""
        absolute = resolve_name(topic, self.namespace, self.name)
        return self._remappings.get(absolute, absolute)

    def declare_parameter(self, name: str, default: Any) -> Any:
        """Declare a parameter; an override given at construction wins over the default, if of a compatible type."""
        if name in self._parameters:
            raise ValueError(f"node {self.fully_qualified_name}: parameter {name!r} is already declared")
        value = self._parameter_overrides.get(name, default)
        self._parameters[name] = checked_parameter(self.fully_qualified_name, name, value, default)
        return self._parameters[name]

    def get_parameter(self, name: str) -> Any:
        """The value of a declared parameter."""
        try:
            return self._parameters[name]
        except KeyError:
            raise KeyError(
                f"node {self.fully_qualified_name}: parameter {name!r} is not declared; "
                f"declared: {sorted(self._parameters)}"
            ) from None

    def set_parameter(self, name: str, value: Any) -> None:
        """Change a declared parameter (same type as its current value)."""
        self._parameters[name] = checked_parameter(self.fully_qualified_name, name, value, self.get_parameter(name))

    @abstractmethod
    def create_publisher(self, msg_type: type, topic: str, qos: QosProfile | int = DEFAULT_QOS) -> Publisher:
        """A publisher of msg_type on topic (relative names resolve in the node's namespace)."""

    @abstractmethod
    def create_subscription(
        self,
        msg_type: type,
        topic: str,
        callback: Callable[[Any], Any],
        qos: QosProfile | int = DEFAULT_QOS,
        raw: bool = False,
    ) -> Subscription:
        """Call callback(message) for each message on topic while spinning (callback(bytes) when raw)."""

    @abstractmethod
    def create_timer(self, period_s: float, callback: Callable[[], Any]) -> Timer:
        """Call callback every period_s seconds of the node's clock while spinning."""

    @abstractmethod
    def now_ns(self) -> int:
        """The node's clock in nanoseconds (sim time when use_sim_time)."""

    def now(self) -> Time:
        """The node's clock as builtin_interfaces/Time."""
        return Time.from_ns(self.now_ns())

    @abstractmethod
    def spin_once(self, timeout_s: float = 0.1) -> int:
        """Wait up to timeout_s for work, run the ready callbacks and due timers; return how many ran."""

    def spin(self, timeout_s: float | None = None) -> None:
        """Spin until shutdown() (or, if given, until timeout_s has passed)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not self.is_shutdown:
            remaining = 0.1 if deadline is None else min(0.1, deadline - time.monotonic())
            if remaining <= 0:
                return
            self.spin_once(remaining)

    def spin_until(self, condition: Callable[[], bool], timeout_s: float) -> bool:
        """Spin until condition() holds; False if timeout_s passed first."""
        deadline = time.monotonic() + timeout_s
        while not condition():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.is_shutdown:
                return condition()
            self.spin_once(min(remaining, 0.1))
        return True

    @property
    @abstractmethod
    def is_shutdown(self) -> bool:
        """True once shutdown() was called."""

    @abstractmethod
    def shutdown(self) -> None:
        """Stop spinning and release every entity; safe to call twice and from another thread."""

    def __enter__(self) -> Node:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()


def checked_parameter(node: str, name: str, value: Any, reference: Any) -> Any:
    """`value` if its type fits the reference's (ints are accepted for floats), else a clear error."""
    if isinstance(reference, bool) or isinstance(value, bool):
        compatible = isinstance(value, bool) and isinstance(reference, bool)
    elif isinstance(reference, float):
        compatible = isinstance(value, (int, float))
        value = float(value) if compatible else value
    elif reference is None:
        compatible = True
    else:
        compatible = isinstance(value, type(reference))
    if not compatible:
        raise TypeError(
            f"node {node}: parameter {name!r} must be {type(reference).__name__} "
            f"(like its default {reference!r}), got {value!r}"
        )
    return value


class LoopNode(Node):
    """A node whose spin_once waits on its backend for data, dispatches callbacks, then fires due timers."""

    def __init__(
        self,
        name: str,
        namespace: str = "/",
        parameters: Mapping[str, Any] | None = None,
        remappings: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(name, namespace, parameters, remappings)
        self._timers: list[Timer] = []
        self._subscriptions: list[Subscription] = []
        self._shutdown = threading.Event()
        self._spin_lock = threading.Lock()
        self._spinning_thread: int | None = None  # the thread inside spin_once, if any
        self._closed = False
        self.clock = NodeClock(bool(self.declare_parameter("use_sim_time", False)))

    def _start_clock(self) -> None:
        """Follow /clock when use_sim_time; backends call this once their entities can be created."""
        if self.clock.use_sim_time:
            self.create_subscription(
                ClockMsg, "/clock", lambda message: self.clock.set_sim_time(message.clock.to_ns()), CLOCK_QOS
            )

    def now_ns(self) -> int:
        return self.clock.now_ns()

    def create_timer(self, period_s: float, callback: Callable[[], Any]) -> Timer:
        self._check_alive()
        now = self.clock.now_ns if self.clock.use_sim_time else time.monotonic_ns
        timer = Timer(period_s, callback, now)
        self._timers.append(timer)
        self._wake()
        return timer

    def create_publisher(self, msg_type: type, topic: str, qos: QosProfile | int = DEFAULT_QOS) -> Publisher:
        self._check_alive()
        check_message_type(msg_type)
        resolved, profile = self.resolve_topic(topic), as_qos(qos)
        return Publisher(msg_type, resolved, profile, *self._open_writer(msg_type, resolved, profile))

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
        subscription = Subscription(msg_type, self.resolve_topic(topic), as_qos(qos), callback, raw)
        self._open_reader(subscription)
        self._subscriptions.append(subscription)
        return subscription

    def spin_once(self, timeout_s: float = 0.1) -> int:
        if self.is_shutdown:
            return 0
        with self._spin_lock:
            self._spinning_thread = threading.get_ident()
            try:
                timeout_s = max(0.0, timeout_s)
                wall_timers = [t for t in self._timers if not t.cancelled] if not self.clock.use_sim_time else []
                if wall_timers:
                    timeout_s = min(timeout_s, max(0.0, min(t.due_in_ns() for t in wall_timers) / 1e9))
                ran = 0
                for subscription, data in self._wait_for_data(timeout_s):
                    if self.is_shutdown:
                        break
                    subscription.deliver(data)
                    ran += 1
                for timer in list(self._timers):
                    if self.is_shutdown:
                        break
                    ran += timer.fire_if_due()
                self._timers = [t for t in self._timers if not t.cancelled]
                return ran
            finally:
                self._spinning_thread = None
                if self.is_shutdown:  # a callback shut the node down: close now that no callback runs
                    self._close_once()

    @property
    def is_shutdown(self) -> bool:
        return self._shutdown.is_set()

    def shutdown(self) -> None:
        if self._shutdown.is_set():
            return
        self._shutdown.set()
        self._wake()
        if self._spinning_thread == threading.get_ident():
            return  # called from one of this node's callbacks: spin_once closes the node when it returns
        with self._spin_lock:
            self._close_once()

    def _close_once(self) -> None:
        if not self._closed:
            self._closed = True
            self._close()

    def _check_alive(self) -> None:
        if self.is_shutdown:
            raise RuntimeError(f"node {self.fully_qualified_name} is shut down")

    @abstractmethod
    def _open_writer(
        self, msg_type: type, topic: str, qos: QosProfile
    ) -> tuple[Callable[[bytes], None], Callable[[], int]]:
        """Create the backend's writer; return functions that send one CDR sample and count matched readers."""

    @abstractmethod
    def _open_reader(self, subscription: Subscription) -> None:
        """Create the backend's reader for a subscription."""

    @abstractmethod
    def _wait_for_data(self, timeout_s: float) -> list[tuple[Subscription, bytes]]:
        """Block up to timeout_s (less if woken) until samples arrive; return all that are ready."""

    @abstractmethod
    def _wake(self) -> None:
        """Make a blocked _wait_for_data return now."""

    @abstractmethod
    def _close(self) -> None:
        """Release the backend's entities."""


def check_message_type(msg_type: type) -> None:
    """Raise unless msg_type is one of our message classes."""
    if not hasattr(msg_type, "ROS_TYPE") or not hasattr(msg_type, "FIELDS"):
        raise TypeError(f"{msg_type!r} is not a ros_nodes.msgs message class")
