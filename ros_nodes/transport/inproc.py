"""In-process backend for unit tests: nodes of one process exchange CDR bytes through a shared bus per domain."""
from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from ros_nodes.transport.node import LoopNode, QosProfile, Subscription


class _Bus:
    """Topics of one domain: the type each carries and the inboxes subscribed to it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.types: dict[str, tuple[str, int]] = {}  # topic -> (ROS type, endpoints using it)
        self.inboxes: dict[str, list[_Inbox]] = {}

    def claim(self, topic: str, ros_type: str) -> None:
        """Register one endpoint of ros_type on topic; a topic carries one type only."""
        with self.lock:
            current, count = self.types.get(topic, (ros_type, 0))
            if current != ros_type:
                raise TypeError(f"topic {topic} already carries {current}; cannot add an endpoint of {ros_type}")
            self.types[topic] = (ros_type, count + 1)

    def release(self, topic: str) -> None:
        with self.lock:
            ros_type, count = self.types[topic]
            if count <= 1:
                del self.types[topic]
            else:
                self.types[topic] = (ros_type, count - 1)

    def matched(self, topic: str, reliable: bool) -> list[_Inbox]:
        """The inboxes a writer of this reliability matches: a RELIABLE reader never matches a BEST_EFFORT writer."""
        with self.lock:
            return [inbox for inbox in self.inboxes.get(topic, ()) if reliable or not inbox.subscription.qos.reliable]

    def send(self, topic: str, data: bytes, reliable: bool) -> None:
        for inbox in self.matched(topic, reliable):
            inbox.put(data)


class _Inbox:
    """A subscription's KEEP_LAST(depth) queue; putting wakes the owning node."""

    def __init__(self, subscription: Subscription, wakeup: threading.Condition) -> None:
        self.subscription = subscription
        self.queue: deque[bytes] = deque(maxlen=subscription.qos.depth)
        self.wakeup = wakeup

    def put(self, data: bytes) -> None:
        with self.wakeup:
            self.queue.append(data)
            self.wakeup.notify_all()


_BUSES: dict[int, _Bus] = {}
_BUSES_LOCK = threading.Lock()


def _bus(domain_id: int) -> _Bus:
    with _BUSES_LOCK:
        return _BUSES.setdefault(domain_id, _Bus())


class InprocNode(LoopNode):
    """A node on the in-process bus of its domain; messages go through CDR as on the wire."""

    backend = "inproc"

    def __init__(
        self,
        name: str,
        namespace: str = "/",
        parameters: Mapping[str, Any] | None = None,
        remappings: Mapping[str, str] | None = None,
        domain_id: int = 0,
    ) -> None:
        self._bus = _bus(domain_id)
        self._wakeup = threading.Condition()
        self._inboxes: list[_Inbox] = []
        self._claimed: list[str] = []
        self._woken = False
        super().__init__(name, namespace, parameters, remappings)
        self._start_clock()

    def _claim(self, topic: str, ros_type: str) -> None:
        self._bus.claim(topic, ros_type)
        self._claimed.append(topic)

    def _open_writer(
        self, msg_type: type, topic: str, qos: QosProfile
    ) -> tuple[Callable[[bytes], None], Callable[[], int]]:
        self._claim(topic, msg_type.ROS_TYPE)
        bus = self._bus

        def send(data: bytes) -> None:
            if not self.is_shutdown:
                bus.send(topic, data, qos.reliable)

        def count() -> int:
            return len(bus.matched(topic, qos.reliable))

        return send, count

    def _open_reader(self, subscription: Subscription) -> None:
        self._claim(subscription.topic, subscription.msg_type.ROS_TYPE)
        inbox = _Inbox(subscription, self._wakeup)
        with self._bus.lock:
            self._bus.inboxes.setdefault(subscription.topic, []).append(inbox)
        self._inboxes.append(inbox)

    def _wait_for_data(self, timeout_s: float) -> list[tuple[Subscription, bytes]]:
        with self._wakeup:
            if not self._woken and not any(inbox.queue for inbox in self._inboxes):
                self._wakeup.wait(timeout_s)
            self._woken = False
            ready = []
            for inbox in self._inboxes:
                while inbox.queue:
                    ready.append((inbox.subscription, inbox.queue.popleft()))
            return ready

    def _wake(self) -> None:
        with self._wakeup:
            self._woken = True
            self._wakeup.notify_all()

    def _close(self) -> None:
        with self._bus.lock:
            for inbox in self._inboxes:
                self._bus.inboxes[inbox.subscription.topic].remove(inbox)
        for topic in self._claimed:
            self._bus.release(topic)
        self._inboxes.clear()
        self._claimed.clear()
