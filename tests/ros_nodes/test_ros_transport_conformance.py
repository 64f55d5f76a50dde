"""One conformance suite over every transport backend (inproc, dds, rclpy): the same calls give the same results."""
from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from ros_nodes import msgs
from ros_nodes.transport import BACKENDS, SENSOR_QOS, Node, QosProfile, create_node

_USED_DOMAINS: set[int] = set()


@pytest.fixture(params=BACKENDS)
def make_node(request: pytest.FixtureRequest) -> Iterator[Callable[..., Node]]:
    """create_node on the parametrized backend, in a ROS domain of this test's own; shuts every node down after."""
    backend = request.param
    while (domain_id := random.randint(30, 230)) in _USED_DOMAINS:
        pass
    _USED_DOMAINS.add(domain_id)
    nodes: list[Node] = []

    def make(name: str, namespace: str = "/", **kwargs: object) -> Node:
        node = create_node(name, namespace, backend=backend, domain_id=domain_id, **kwargs)  # type: ignore[arg-type]
        assert node.backend == backend
        nodes.append(node)
        return node

    yield make
    for node in nodes:
        node.shutdown()


def _wait_matched(publisher: object, count: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while publisher.get_subscription_count() < count:  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, f"{count} subscription(s) did not match within {timeout_s} s"
        time.sleep(0.01)


def _spin_until_idle(node: Node, settle_s: float = 0.3) -> int:
    """Spin until nothing has arrived for settle_s; return how many callbacks ran."""
    total, quiet_since = 0, time.monotonic()
    while time.monotonic() - quiet_since < settle_s:
        ran = node.spin_once(0.05)
        total += ran
        if ran:
            quiet_since = time.monotonic()
    return total


def test_pub_sub_with_namespace_remapping_and_raw(make_node: Callable[..., Node]) -> None:
    talker = make_node("talker", "/robot")
    listener = make_node("listener", "/robot", remappings={"in": "/robot/hand/joint_states"})
    received: list[msgs.JointState] = []
    raw: list[bytes] = []
    listener.create_subscription(msgs.JointState, "in", received.append)
    listener.create_subscription(msgs.JointState, "/robot/hand/joint_states", raw.append, raw=True)
    publisher = talker.create_publisher(msgs.JointState, "hand/joint_states")
    assert publisher.topic == "/robot/hand/joint_states"
    _wait_matched(publisher, 2)
    message = msgs.JointState(header=msgs.Header(frame_id="hand"), name=["a", "b"], position=np.array([0.1, 0.2]))
    publisher.publish(message)
    assert listener.spin_until(lambda: received and raw, timeout_s=5.0)
    assert received == [message] and received[0] is not message
    assert raw == [msgs.serialize(message)]
    publisher.publish(raw[0])  # recorded bytes are republished as they are
    assert listener.spin_until(lambda: len(received) == 2, timeout_s=5.0)
    assert received[1] == message
    with pytest.raises(TypeError, match="publisher on /robot/hand/joint_states takes sensor_msgs/msg/JointState"):
        publisher.publish(msgs.Bool())


def test_names_namespaces_and_remapping_resolve_alike(make_node: Callable[..., Node]) -> None:
    driver = make_node("driver", "/robot", remappings={"hand/command": "/sim/hand/command"})
    assert driver.fully_qualified_name == "/robot/driver"
    assert driver.resolve_topic("hand/command") == "/sim/hand/command"
    assert driver.resolve_topic("hand/joint_states") == "/robot/hand/joint_states"
    assert driver.resolve_topic("/clock") == "/clock"
    assert driver.resolve_topic("~/status") == "/robot/driver/status"


def test_keep_last_depth_keeps_the_newest(make_node: Callable[..., Node]) -> None:
    talker, listener = make_node("talker"), make_node("listener")
    got: list[float] = []
    listener.create_subscription(msgs.Float64, "x", lambda m: got.append(m.data), QosProfile(depth=3))
    publisher = talker.create_publisher(msgs.Float64, "x", 10)
    _wait_matched(publisher, 1)
    for value in range(7):
        publisher.publish(msgs.Float64(data=float(value)))
    time.sleep(0.5)  # all seven reach the reader's history before it is read
    _spin_until_idle(listener)
    assert got == [4.0, 5.0, 6.0]


def test_reliability_matching(make_node: Callable[..., Node]) -> None:
    camera, viewer = make_node("camera"), make_node("viewer")
    best_effort: list[msgs.String] = []
    reliable: list[msgs.String] = []
    viewer.create_subscription(msgs.String, "images", best_effort.append, SENSOR_QOS)
    viewer.create_subscription(msgs.String, "images", reliable.append, QosProfile(10, reliable=True))
    sensor = camera.create_publisher(msgs.String, "images", SENSOR_QOS)
    _wait_matched(sensor, 1)
    time.sleep(0.3)
    assert sensor.get_subscription_count() == 1  # a RELIABLE reader never matches a BEST_EFFORT writer
    deadline = time.monotonic() + 5.0
    while not best_effort and time.monotonic() < deadline:
        sensor.publish(msgs.String(data="frame"))
        viewer.spin_once(0.05)
    assert best_effort and best_effort[0].data == "frame"
    assert reliable == []
    other = make_node("other")
    status = other.create_publisher(msgs.String, "status")  # RELIABLE writer, BEST_EFFORT reader: they match
    got: list[msgs.String] = []
    viewer.create_subscription(msgs.String, "status", got.append, SENSOR_QOS)
    _wait_matched(status, 1)
    status.publish(msgs.String(data="ok"))
    assert viewer.spin_until(lambda: got, timeout_s=5.0) and got[0].data == "ok"


def test_parameters_follow_rclpy_typing(make_node: Callable[..., Node]) -> None:
    node = make_node("driver", parameters={"rate_hz": 125, "backend": "sim", "enabled": True})
    assert node.declare_parameter("rate_hz", 12.5) == 125.0  # an int given for a float parameter
    assert isinstance(node.get_parameter("rate_hz"), float)
    assert node.declare_parameter("backend", "shadow") == "sim"
    assert node.declare_parameter("watchdog_periods", 3) == 3
    assert node.declare_parameter("joints", ["a", "b"]) == ["a", "b"]
    assert node.get_parameter("use_sim_time") is False
    node.set_parameter("watchdog_periods", 5)
    assert node.get_parameter("watchdog_periods") == 5
    with pytest.raises(TypeError, match="parameter 'enabled' must be int .* got True"):
        node.declare_parameter("enabled", 1)
    with pytest.raises(TypeError, match="parameter 'backend' must be str"):
        node.set_parameter("backend", 3)
    with pytest.raises(KeyError, match="parameter 'nope' is not declared"):
        node.get_parameter("nope")
    with pytest.raises(ValueError, match="already declared"):
        node.declare_parameter("backend", "x")


def test_wall_timer_rate_cancel_and_spin_once_count(make_node: Callable[..., Node]) -> None:
    node = make_node("ticker")
    assert node.spin_once(0.05) == 0  # nothing to do: nothing ran
    ticks: list[float] = []
    start = time.monotonic()
    timer = node.create_timer(0.02, lambda: ticks.append(time.monotonic()))
    ran = 0
    while time.monotonic() - start < 0.5:
        ran += node.spin_once(0.1)
    assert ran == len(ticks)
    assert 18 <= len(ticks) <= 26
    assert all(tick >= start + 0.02 * (k + 1) - 0.002 for k, tick in enumerate(ticks))
    timer.cancel()
    count = len(ticks)
    node.spin(timeout_s=0.1)
    assert len(ticks) == count
    with pytest.raises(ValueError, match="timer period must be > 0"):
        node.create_timer(0.0, print)


def test_spin_once_runs_every_ready_callback(make_node: Callable[..., Node]) -> None:
    talker, listener = make_node("talker"), make_node("listener")
    got: list[msgs.Float64] = []
    listener.create_subscription(msgs.Float64, "n", got.append)
    publisher = talker.create_publisher(msgs.Float64, "n")
    _wait_matched(publisher, 1)
    publisher.publish(msgs.Float64(data=1.0))
    publisher.publish(msgs.Float64(data=2.0))
    time.sleep(0.3)
    assert listener.spin_once(1.0) == 2
    assert [m.data for m in got] == [1.0, 2.0]


def test_sim_time_follows_clock_and_drives_timers(make_node: Callable[..., Node]) -> None:
    sim = make_node("sim")
    policy = make_node("policy", parameters={"use_sim_time": True})
    assert policy.get_parameter("use_sim_time") is True
    clock = sim.create_publisher(msgs.Clock, "/clock")
    ticks: list[int] = []
    policy.create_timer(0.08, lambda: ticks.append(policy.now_ns()))
    assert policy.now_ns() == 0
    _wait_matched(clock, 1)
    policy.spin(timeout_s=0.2)
    assert ticks == []  # wall time passes, sim time does not
    for step in range(1, 26):  # 25 steps of 8 ms = 0.2 s of simulated time
        stamp = step * 8_000_000
        clock.publish(msgs.Clock(clock=msgs.Time.from_ns(stamp)))
        assert policy.spin_until(lambda: policy.now_ns() == stamp, timeout_s=5.0), (step, policy.now_ns())
        policy.spin_once(0.01)
    assert policy.now() == msgs.Time(sec=0, nanosec=200_000_000)
    assert ticks == [80_000_000, 160_000_000]


def test_shutdown_from_another_thread_is_clean_and_final(make_node: Callable[..., Node]) -> None:
    node = make_node("stopper")
    node.create_subscription(msgs.String, "nothing", lambda message: None)
    thread = threading.Thread(target=node.spin)
    thread.start()
    time.sleep(0.2)
    started = time.monotonic()
    node.shutdown()
    thread.join(timeout=2.0)
    assert not thread.is_alive() and node.is_shutdown
    assert time.monotonic() - started < 1.0
    node.shutdown()  # a second call is harmless
    assert node.spin_once(0.1) == 0
    with pytest.raises(RuntimeError, match="node /stopper is shut down"):
        node.create_publisher(msgs.String, "x")


def test_a_callback_may_shut_its_own_node_down(make_node: Callable[..., Node]) -> None:
    """The goal manager ends its run from its timer: spin returns and the node closes, no deadlock."""
    node = make_node("finisher")
    fired: list[int] = []
    node.create_timer(0.02, lambda: (fired.append(1), node.shutdown()))
    thread = threading.Thread(target=node.spin, daemon=True)
    thread.start()
    thread.join(timeout=3.0)
    assert not thread.is_alive() and node.is_shutdown and fired == [1]
