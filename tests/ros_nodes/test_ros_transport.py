"""Transport interface on the inproc backend: names, remapping, parameters, QoS depth, timers, sim time; backend
selection and the environment rclpy needs (the same behaviour on every backend: test_ros_transport_conformance)."""
from __future__ import annotations

import os
import time

import numpy as np
import pytest

from ros_nodes import msgs
from ros_nodes.transport import (
    InvalidNameError,
    QosProfile,
    create_node,
    default_backend,
    parse_remapping,
    rclpy_available,
    resolve_name,
)
from ros_nodes.transport.names import dds_topic_name, normalize_namespace, ros_topic_name, ros_type_name
from ros_nodes.transport.ros_env import ros_environment, ros_library_dirs

_domains = iter(range(1000, 2000))


def inproc(name: str, namespace: str = "/", **kwargs: object) -> object:
    """An inproc node on a domain of the caller's own (pass domain_id to share one)."""
    kwargs.setdefault("domain_id", next(_domains))
    return create_node(name, namespace, backend="inproc", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "namespace", "expected"),
    [
        ("hand/joint_states", "/robot", "/robot/hand/joint_states"),
        ("hand/joint_states", "", "/hand/joint_states"),
        ("/clock", "/robot", "/clock"),
        ("~/status", "/robot", "/robot/driver/status"),
        ("~", "/", "/driver"),
        ("joint_states", "robot/left/", "/robot/left/joint_states"),
    ],
)
def test_resolve_name(name: str, namespace: str, expected: str) -> None:
    assert resolve_name(name, namespace, "driver") == expected


@pytest.mark.parametrize("bad", ["", "a//b", "1abc", "a/", "a b", "/a/~b", "a-b", "~abc"])
def test_invalid_topic_names_are_rejected(bad: str) -> None:
    with pytest.raises(InvalidNameError, match="invalid topic name"):
        resolve_name(bad, "/", "node")


def test_name_conversions() -> None:
    assert normalize_namespace("/robot/") == "/robot"
    assert dds_topic_name("/robot/hand/joint_states") == "rt/robot/hand/joint_states"
    assert ros_topic_name("rt/a/b") == "/a/b" and ros_topic_name("rq/a/bRequest") is None
    assert ros_type_name("sensor_msgs::msg::dds_::JointState_") == "sensor_msgs/msg/JointState"
    assert ros_type_name("JointState_") is None
    assert parse_remapping("hand/command:=/sim/command") == ("hand/command", "/sim/command")
    with pytest.raises(InvalidNameError, match="expected 'from:=to'"):
        parse_remapping("hand/command=/x")
    with pytest.raises(InvalidNameError, match="invalid node name"):
        inproc("9lives")


def test_namespace_and_remapping_resolve() -> None:
    driver = inproc("driver", "/robot", remappings={"hand/command": "/sim/hand/command", "~/status": "status"})
    assert driver.resolve_topic("hand/command") == "/sim/hand/command"
    assert driver.resolve_topic("/robot/hand/command") == "/sim/hand/command"
    assert driver.resolve_topic("hand/joint_states") == "/robot/hand/joint_states"
    assert driver.resolve_topic("~/status") == "/robot/status"
    assert driver.fully_qualified_name == "/robot/driver"
    driver.shutdown()


def test_pub_sub_delivers_copies_through_cdr() -> None:
    domain = next(_domains)
    talker = inproc("talker", "/robot", domain_id=domain)
    listener = inproc("listener", "/robot", domain_id=domain, remappings={"/robot/in": "/robot/hand/joint_states"})
    received: list[msgs.JointState] = []
    raw: list[bytes] = []
    listener.create_subscription(msgs.JointState, "in", received.append)
    listener.create_subscription(msgs.JointState, "/robot/hand/joint_states", raw.append, raw=True)
    publisher = talker.create_publisher(msgs.JointState, "hand/joint_states")
    assert publisher.topic == "/robot/hand/joint_states"
    assert publisher.get_subscription_count() == 2
    message = msgs.JointState(name=["a", "b"], position=np.array([0.1, 0.2]))
    publisher.publish(message)
    assert listener.spin_once(0.1) == 2
    assert received == [message] and received[0] is not message
    assert raw == [msgs.serialize(message)]
    publisher.publish(raw[0])
    listener.spin_once(0.1)
    assert received[1] == message
    with pytest.raises(TypeError, match="publisher on /robot/hand/joint_states takes sensor_msgs/msg/JointState"):
        publisher.publish(msgs.Bool())
    with pytest.raises(TypeError, match="already carries sensor_msgs/msg/JointState"):
        listener.create_subscription(msgs.Bool, "/robot/hand/joint_states", print)
    with pytest.raises(TypeError, match="is not a ros_nodes.msgs message class"):
        talker.create_publisher(dict, "x")
    talker.shutdown()
    listener.shutdown()
    assert publisher.get_subscription_count() == 0


def test_keep_last_depth_drops_oldest() -> None:
    domain = next(_domains)
    talker, listener = inproc("talker", domain_id=domain), inproc("listener", domain_id=domain)
    got: list[msgs.Float64] = []
    listener.create_subscription(msgs.Float64, "x", got.append, QosProfile(depth=3))
    publisher = talker.create_publisher(msgs.Float64, "x", 10)
    for value in range(7):
        publisher.publish(msgs.Float64(data=float(value)))
    listener.spin_once(0.0)
    assert [m.data for m in got] == [4.0, 5.0, 6.0]
    with pytest.raises(ValueError, match="QoS depth must be an int >= 1"):
        QosProfile(depth=0)


def test_wall_timer_rate_and_cancel() -> None:
    node = inproc("ticker")
    ticks: list[float] = []
    start = time.monotonic()
    timer = node.create_timer(0.02, lambda: ticks.append(time.monotonic()))
    node.spin(timeout_s=0.5)
    assert 18 <= len(ticks) <= 25
    assert all(tick >= start + 0.02 * (k + 1) - 0.001 for k, tick in enumerate(ticks))
    assert abs(np.median(np.diff(ticks)) - 0.02) < 0.002
    timer.cancel()
    node.spin(timeout_s=0.1)
    assert len(ticks) <= 25
    with pytest.raises(ValueError, match="timer period must be > 0"):
        node.create_timer(0.0, print)


def test_sim_time_follows_clock_and_drives_timers() -> None:
    domain = next(_domains)
    sim = inproc("sim", domain_id=domain)
    policy = inproc("policy", domain_id=domain, parameters={"use_sim_time": True})
    clock = sim.create_publisher(msgs.Clock, "/clock")
    ticks: list[int] = []
    policy.create_timer(0.08, lambda: ticks.append(policy.now_ns()))
    assert policy.now_ns() == 0
    policy.spin(timeout_s=0.2)
    assert ticks == []  # wall time passes, sim time does not
    for step in range(1, 26):  # 25 steps of 8 ms = 0.2 s of simulated time
        clock.publish(msgs.Clock(clock=msgs.Time.from_ns(step * 8_000_000)))
        policy.spin_once(0.0)
    assert policy.now() == msgs.Time(sec=0, nanosec=200_000_000)
    assert ticks == [80_000_000, 160_000_000]
    clock.publish(msgs.Clock(clock=msgs.Time(sec=0, nanosec=8_000_000)))  # a reset back in time
    policy.spin_once(0.0)
    clock.publish(msgs.Clock(clock=msgs.Time(sec=0, nanosec=88_000_000)))
    policy.spin_once(0.0)
    assert ticks[-1] == 88_000_000


def test_shutdown_wakes_spin_and_context_manager() -> None:
    import threading

    with inproc("stopper") as node:
        thread = threading.Thread(target=node.spin)
        thread.start()
        time.sleep(0.05)
    thread.join(timeout=1.0)
    assert not thread.is_alive() and node.is_shutdown


def test_backend_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INHAND_TRANSPORT", "inproc")
    assert default_backend() == "inproc"
    monkeypatch.setenv("INHAND_TRANSPORT", "zenoh")
    with pytest.raises(ValueError, match="expected one of"):
        default_backend()
    monkeypatch.delenv("INHAND_TRANSPORT")
    assert default_backend() == ("rclpy" if rclpy_available() else "dds")
    with pytest.raises(ValueError, match="unknown transport backend 'zenoh'"):
        create_node("x", backend="zenoh")


def test_rclpy_loads_with_the_environment_the_launcher_gives_children() -> None:
    """The ROS 2 wheels' libraries load only through LD_LIBRARY_PATH, which ros_environment() sets for a child."""
    import subprocess
    import sys

    assert rclpy_available()
    folders = ros_library_dirs()
    assert any(folder.endswith("ros_rcl.libs") for folder in folders)
    probe = [sys.executable, "-c", "import rclpy; rclpy.init(); rclpy.shutdown(); print('ok')"]
    bare = dict(os.environ, LD_LIBRARY_PATH="", _ROS_WHEELS_BOOTSTRAP_COMPLETE="1")
    failed = subprocess.run(probe, env=bare, capture_output=True, text=True, timeout=60)
    assert failed.returncode != 0 and "cannot open shared object file" in failed.stderr
    loaded = subprocess.run(probe, env=ros_environment(bare), capture_output=True, text=True, timeout=60)
    assert loaded.returncode == 0 and loaded.stdout.strip() == "ok", loaded.stderr


def test_rclpy_is_initialized_once_per_domain_and_shut_down_at_exit() -> None:
    import subprocess
    import sys

    script = """
import atexit
from ros_nodes.transport import create_node
from ros_nodes.transport import rclpy_backend
contexts = {}
# registered before the backend's own exit handler, so it runs after it (atexit runs in reverse order)
atexit.register(lambda: print("contexts ok at exit:", [context.ok() for context in contexts.values()]))
a = create_node("a", backend="rclpy", domain_id=41)
b = create_node("b", backend="rclpy", domain_id=41)
c = create_node("c", backend="rclpy", domain_id=42)
contexts.update(rclpy_backend._CONTEXTS)
assert sorted(contexts) == [41, 42] and a._context is b._context is not c._context
a.shutdown(); b.shutdown()
assert contexts[41].ok()  # nodes come and go; the context stays for the process
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "contexts ok at exit: [False, False]"  # both shut down, once, at exit
    assert "Traceback" not in done.stderr and "RCLError" not in done.stderr
