"""The dds backend over real Cyclone DDS on loopback: processes, QoS, domains, timers, ROS 2 wire conventions."""
from __future__ import annotations

import multiprocessing
import random
import threading
import time

import numpy as np
import pytest
from cyclonedds.builtin import BuiltinDataReader, BuiltinTopicDcpsParticipant, BuiltinTopicDcpsPublication
from cyclonedds.core import Policy
from rosbags.typesys import Stores, get_typestore

from ros_dds_peers import joint_state, publish_joint_states
from ros_nodes import msgs
from ros_nodes.transport import SENSOR_QOS, QosProfile, create_node
from ros_nodes.transport.dds import LOOPBACK_CONFIG, dds_config
from ros_nodes.transport.dds_types import idl_struct
from ros_samples import SAMPLES
from sim.config_loading import ConfigError

_USED_DOMAINS: set[int] = set()


@pytest.fixture()
def domain_id() -> int:
    """A domain id no other test of this run uses, random so other users of this machine rarely share it."""
    while True:
        candidate = random.randint(30, 230)
        if candidate not in _USED_DOMAINS:
            _USED_DOMAINS.add(candidate)
            return candidate


def test_two_processes_reliable_200_at_100hz_none_lost(domain_id: int) -> None:
    node = create_node("subscriber", "/robot", backend="dds", domain_id=domain_id)
    received: list[msgs.JointState] = []
    payloads: list[bytes] = []
    node.create_subscription(msgs.JointState, "hand/joint_states", received.append)
    node.create_subscription(msgs.JointState, "/robot/hand/joint_states", payloads.append, raw=True)
    context = multiprocessing.get_context("spawn")
    result = context.Queue()
    process = context.Process(target=publish_joint_states, args=(domain_id, 200, 100.0, result))
    process.start()
    try:
        node.spin_until(lambda: len(received) >= 200 and len(payloads) >= 200, timeout_s=25.0)
        outcome = result.get(timeout=15.0)
        process.join(timeout=10.0)
    finally:
        node.shutdown()
        if process.is_alive():
            process.kill()
    assert outcome[:2] == ("sent", 200), outcome
    assert 1.9 < outcome[2] < 4.0  # 200 messages at 100 Hz take 2 s, more on a loaded machine
    assert process.exitcode == 0
    assert len(received) == 200
    assert [round(m.position[0]) for m in received] == list(range(200))
    assert received[123] == joint_state(123)
    typestore = get_typestore(Stores.ROS2_HUMBLE)
    decoded = typestore.deserialize_cdr(payloads[57], "sensor_msgs/msg/JointState")
    assert decoded.name == [f"joint_{j}" for j in range(24)]
    np.testing.assert_array_equal(decoded.position, joint_state(57).position)
    assert decoded.header.stamp.nanosec == 570_000_000


def _spin_in_background(node: object) -> threading.Thread:
    thread = threading.Thread(target=node.spin, daemon=True)  # type: ignore[attr-defined]
    thread.start()
    return thread


def _wait_matched(publisher: object, count: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while publisher.get_subscription_count() < count:  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "subscriptions did not match in time"
        time.sleep(0.01)


def test_best_effort_sensor_images_and_qos_matching(domain_id: int) -> None:
    camera = create_node("camera", backend="dds", domain_id=domain_id)
    viewer = create_node("viewer", backend="dds", domain_id=domain_id)
    best_effort: list[msgs.Image] = []
    reliable: list[msgs.Image] = []
    viewer.create_subscription(msgs.Image, "cameras/left/image_raw", best_effort.append, SENSOR_QOS)
    viewer.create_subscription(msgs.Image, "cameras/left/image_raw", reliable.append, QosProfile(10, True))
    publisher = camera.create_publisher(msgs.Image, "cameras/left/image_raw", SENSOR_QOS)
    _wait_matched(publisher, 1)
    time.sleep(0.2)
    assert publisher.get_subscription_count() == 1  # a RELIABLE reader never matches a BEST_EFFORT writer
    pixels = np.random.default_rng(1).integers(0, 256, size=(200, 200, 3), dtype=np.uint8)
    thread = _spin_in_background(viewer)
    for index in range(50):
        publisher.publish(msgs.Image(header=msgs.Header(frame_id=str(index)), height=200, width=200,
                                     encoding="rgb8", step=600, data=pixels.reshape(-1)))
        time.sleep(0.01)
    deadline = time.monotonic() + 3.0
    while len(best_effort) < 50 and time.monotonic() < deadline:
        time.sleep(0.01)
    viewer.shutdown()
    camera.shutdown()
    thread.join(timeout=2.0)
    assert len(best_effort) >= 45  # best effort may drop, loopback rarely does
    assert reliable == []
    np.testing.assert_array_equal(best_effort[-1].data.reshape(200, 200, 3), pixels)


def test_reliable_publisher_reaches_best_effort_subscriber(domain_id: int) -> None:
    with create_node("a", backend="dds", domain_id=domain_id) as talker, \
            create_node("b", backend="dds", domain_id=domain_id) as listener:
        got: list[msgs.String] = []
        listener.create_subscription(msgs.String, "chatter", got.append, SENSOR_QOS)
        publisher = talker.create_publisher(msgs.String, "chatter")
        _wait_matched(publisher, 1)
        publisher.publish(msgs.String(data="hello"))
        assert listener.spin_until(lambda: len(got) == 1, timeout_s=3.0)
        assert got[0].data == "hello"


def test_other_domain_receives_nothing(domain_id: int) -> None:
    other_domain = domain_id + 1 if domain_id < 232 else domain_id - 1
    _USED_DOMAINS.add(other_domain)
    talker = create_node("talker", backend="dds", domain_id=domain_id)
    same = create_node("same", backend="dds", domain_id=domain_id)
    other = create_node("other", backend="dds", domain_id=other_domain)
    same_got: list[msgs.Bool] = []
    other_got: list[msgs.Bool] = []
    same.create_subscription(msgs.Bool, "/hand/enable", same_got.append)
    other.create_subscription(msgs.Bool, "/hand/enable", other_got.append)
    publisher = talker.create_publisher(msgs.Bool, "/hand/enable")
    _wait_matched(publisher, 1)
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        publisher.publish(msgs.Bool(data=True))
        same.spin_once(0.02)
        other.spin_once(0.0)
    other.spin(timeout_s=0.2)
    assert publisher.get_subscription_count() == 1
    assert len(same_got) > 20
    assert other_got == []
    for node in (talker, same, other):
        node.shutdown()


def test_timer_rate(domain_id: int) -> None:
    node = create_node("ticker", backend="dds", domain_id=domain_id)
    ticks: list[float] = []
    start = time.monotonic()
    node.create_timer(0.01, lambda: ticks.append(time.monotonic()))
    node.spin(timeout_s=1.0)
    node.shutdown()
    # a late wake-up on a busy machine skips a period (as rcl does) but never fires early or twice
    assert 75 <= len(ticks) <= 100
    assert all(tick >= start + 0.01 * (k + 1) - 0.001 for k, tick in enumerate(ticks))
    assert abs(np.median(np.diff(ticks)) - 0.01) < 0.001


def test_shutdown_stops_spin_from_another_thread_and_is_final(domain_id: int) -> None:
    node = create_node("stopper", backend="dds", domain_id=domain_id)
    node.create_subscription(msgs.String, "nothing", lambda message: None)
    thread = threading.Thread(target=node.spin)
    thread.start()
    time.sleep(0.2)
    started = time.monotonic()
    node.shutdown()
    thread.join(timeout=2.0)
    assert not thread.is_alive()
    assert time.monotonic() - started < 0.5
    node.shutdown()
    assert node.spin_once(0.1) == 0
    with pytest.raises(RuntimeError, match="node /stopper is shut down"):
        node.create_publisher(msgs.String, "x")


def test_ros2_conventions_are_what_discovery_shows(domain_id: int) -> None:
    node = create_node("driver", "/robot", backend="dds", domain_id=domain_id)
    node.create_publisher(msgs.JointState, "hand/joint_states")
    node.create_publisher(msgs.Image, "cameras/left/image_raw", SENSOR_QOS)
    observer = create_node("observer", backend="dds", domain_id=domain_id)
    participant = observer._participant  # type: ignore[attr-defined]
    publications = BuiltinDataReader(participant, BuiltinTopicDcpsPublication)
    participants = BuiltinDataReader(participant, BuiltinTopicDcpsParticipant)
    found: dict[str, object] = {}
    deadline = time.monotonic() + 5.0
    while len(found) < 2 and time.monotonic() < deadline:
        for sample in publications.take(32):
            if sample.topic_name.startswith("rt/robot/"):
                found[sample.topic_name] = sample
        time.sleep(0.05)
    user_data = {bytes(p.qos[Policy.Userdata].data) for p in participants.take(32) if Policy.Userdata in p.qos}
    node.shutdown()
    observer.shutdown()
    joint_states = found["rt/robot/hand/joint_states"]
    image = found["rt/robot/cameras/left/image_raw"]
    assert joint_states.type_name == "sensor_msgs::msg::dds_::JointState_"
    assert image.type_name == "sensor_msgs::msg::dds_::Image_"
    assert joint_states.qos[Policy.History] == Policy.History.KeepLast(10)
    assert isinstance(joint_states.qos[Policy.Reliability], Policy.Reliability.Reliable)
    assert joint_states.qos[Policy.Durability] == Policy.Durability.Volatile
    assert image.qos[Policy.History] == Policy.History.KeepLast(5)
    assert image.qos[Policy.Reliability] == Policy.Reliability.BestEffort
    assert joint_states.qos[Policy.DataRepresentation].use_cdrv0_representation
    assert user_data == {b"enclave=/;"}


@pytest.mark.parametrize("sample", [m for _, m in SAMPLES], ids=[n for n, _ in SAMPLES])
def test_cyclone_typed_struct_decodes_our_bytes(sample: object) -> None:
    ours = msgs.serialize(sample)
    decoded = idl_struct(type(sample)).deserialize(ours)
    assert decoded.serialize(use_version_2=False) == ours


def test_loopback_config_and_override(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INHAND_DDS_CONFIG", raising=False)
    config = dds_config()
    assert config == LOOPBACK_CONFIG
    assert '<NetworkInterface name="lo"/>' in config and "<AllowMulticast>false</AllowMulticast>" in config
    assert '<Peer address="127.0.0.1"/>' in config
    path = tmp_path / "cyclone.xml"  # type: ignore[operator]
    path.write_text("<CycloneDDS/>")
    monkeypatch.setenv("INHAND_DDS_CONFIG", str(path))
    assert dds_config() == "<CycloneDDS/>"
    monkeypatch.setenv("INHAND_DDS_CONFIG", "")
    assert dds_config() is None
    monkeypatch.setenv("INHAND_DDS_CONFIG", "/no/such/file.xml")
    with pytest.raises(ConfigError, match="neither XML nor a file"):
        dds_config()
