"""Our dds nodes and a stock rclpy node (Fast DDS defaults + ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST) on one host:
samples both ways, every message type decoded by rclpy's own type support, and our nodes in rclpy's graph."""
from __future__ import annotations

import json
import random

import pytest

from ros_nodes import msgs
from ros_nodes.msgs.type_hashes import TYPE_HASHES
from ros_nodes.transport import SENSOR_QOS, create_node
from ros_nodes.transport.ros_env import ros_environment
from ros_samples import SAMPLES
from ros_stock_peer import probe_report, start_probe


def _one_sample_per_type() -> dict[str, object]:
    """The richest sample of each message type (the one with the longest encoding)."""
    chosen: dict[str, object] = {}
    for _, message in SAMPLES:
        current = chosen.get(message.ROS_TYPE)
        if current is None or len(msgs.serialize(message)) > len(msgs.serialize(current)):
            chosen[message.ROS_TYPE] = message
    return chosen


@pytest.fixture()
def domain_id() -> int:
    return random.randint(150, 230)


def test_stock_rclpy_node_and_dds_nodes_talk_both_ways(domain_id: int) -> None:
    samples = _one_sample_per_type()
    topics = {f"/interop/{ros_type.split('/')[-1].lower()}": message for ros_type, message in samples.items()}
    driver = create_node("hand_driver", backend="dds", domain_id=domain_id)
    policy = create_node("policy", "/robot", backend="dds", domain_id=domain_id)
    publishers = [
        (driver.create_publisher(type(message), topic, SENSOR_QOS if "image" in topic else 10), message)
        for topic, message in topics.items()
    ]
    policy_publisher = policy.create_publisher(msgs.JointState, "hand/command_echo")
    enable: list[msgs.Bool] = []
    command: list[msgs.JointState] = []
    driver.create_subscription(msgs.Bool, "/hand/enable", enable.append)
    driver.create_subscription(msgs.JointState, "/hand/command", command.append)
    subscribe = {topic: message.ROS_TYPE for topic, message in topics.items()}
    subscribe["/robot/hand/command_echo"] = "sensor_msgs/msg/JointState"
    probe = start_probe(domain_id, subscribe, seconds=8.0)
    try:
        while probe.poll() is None:
            for publisher, message in publishers:
                publisher.publish(message)
            policy_publisher.publish(msgs.JointState(name=["x"]))
            driver.spin_once(0.05)
            policy.spin_once(0.0)
        report = probe_report(probe)
    finally:
        if probe.poll() is None:
            probe.kill()
        driver.shutdown()
        policy.shutdown()
    assert "invalid type object" not in report["stderr"]
    missing = sorted(set(topics) - set(report["first"]))
    assert not missing, f"rclpy received nothing on {missing}"
    for topic, message in topics.items():  # rclpy decoded each type into its own class and encoded it back
        # (Fast DDS pads the end to 4 bytes and counts the padding in the encapsulation options, so compare values)
        assert msgs.deserialize(bytes.fromhex(report["first"][topic]), type(message)) == message, topic
    assert len(enable) > 10 and all(m.data is False for m in enable)
    assert command and command[-1].name == ["rh_FFJ3"] and list(command[-1].position) == [0.25]
    # the ROS graph names our nodes and knows which node publishes and subscribes what
    assert {"/hand_driver", "/robot/policy", "/rclpy_probe"} <= set(report["nodes"])
    assert "_CREATED_BY_BARE_DDS_APP_" not in json.dumps(report["nodes"])
    assert report["publishers"]["/interop/jointstate"] == ["/hand_driver"]
    for topic, message in topics.items():  # what `ros2 topic info -v` shows as "Topic type hash"
        assert report["publisher_type_hashes"][topic] == [TYPE_HASHES[message.ROS_TYPE]], topic
    assert report["publishers"]["/robot/hand/command_echo"] == ["/robot/policy"]
    assert "/hand_driver" in report["subscribers"]["/hand/enable"]
    assert "/hand_driver" in report["subscribers"]["/hand/command"]


_SHOW_TYPE_IDS = """
import sys, time
from cyclonedds.builtin import BuiltinDataReader, BuiltinTopicDcpsPublication
from cyclonedds.domain import Domain, DomainParticipant
domain_id = int(sys.argv[1])
domain = Domain(domain_id, sys.argv[2])
participant = DomainParticipant(domain_id)
publications = BuiltinDataReader(participant, BuiltinTopicDcpsPublication)
deadline = time.monotonic() + 10.0
while time.monotonic() < deadline:
    for p in publications.take(64):
        if p.topic_name == "rt/typed/joint_states":
            print(p.type_name, "type_id" if p.type_id is not None else "no_type_id")
            sys.exit(0)
    time.sleep(0.05)
"""


_TALK = """
import sys, time
from ros_nodes import msgs
from ros_nodes.msgs.type_hashes import TYPE_HASHES
from ros_nodes.transport import create_node
node = create_node("talker", backend="rclpy", domain_id=int(sys.argv[1]))
node.create_publisher(msgs.JointState, "/typed/joint_states")
node.spin(timeout_s=30.0)
"""


@pytest.mark.parametrize("profile", ["ours", "fast_dds_default"])
def test_our_rclpy_nodes_match_by_type_name_without_xtypes_type_information(
    domain_id: int, profile: str, tmp_path: object
) -> None:
    """config/fastdds.xml turns Fast DDS's type propagation off: no type object to look up, none to reject. A
    Cyclone participant that does not ignore Fast DDS's type information shows what the rclpy node sends."""
    import re
    import subprocess
    import sys

    from ros_nodes.transport.dds import LOOPBACK_CONFIG

    environment = ros_environment()  # Fast DDS reads its profile once per process: the talker gets its own
    environment.pop("FASTDDS_DEFAULT_PROFILES_FILE", None)
    if profile == "fast_dds_default":  # a profile without our property, as a stock ROS 2 installation runs
        empty = tmp_path / "default.xml"  # type: ignore[operator]
        empty.write_text('<?xml version="1.0"?><dds xmlns="http://www.eprosima.com"><profiles><participant '
                         'profile_name="stock" is_default_profile="true"><rtps/></participant></profiles></dds>')
        environment["FASTDDS_DEFAULT_PROFILES_FILE"] = str(empty)
    talker = subprocess.Popen([sys.executable, "-c", _TALK, str(domain_id)], env=environment,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    believing = re.sub(r"<Compatibility>.*</Compatibility>", "", LOOPBACK_CONFIG, flags=re.S)
    try:
        shown = subprocess.run([sys.executable, "-c", _SHOW_TYPE_IDS, str(domain_id), believing],
                               capture_output=True, text=True, timeout=60)
    finally:
        talker.kill()
        talker.communicate()
    expected = "no_type_id" if profile == "ours" else "type_id"
    assert shown.stdout.split() == ["sensor_msgs::msg::dds_::JointState_", expected], shown.stderr[-2000:]
