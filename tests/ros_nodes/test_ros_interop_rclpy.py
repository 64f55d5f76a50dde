"""Our dds nodes and a stock rclpy node (Fast DDS defaults + ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST) on one host:
samples both ways, every message type decoded by rclpy's own type support, and our nodes in rclpy's graph."""
from __future__ import annotations

import json
import random

import pytest

from ros_nodes import msgs
from ros_nodes.transport import SENSOR_QOS, create_node
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
    assert report["publishers"]["/robot/hand/command_echo"] == ["/robot/policy"]
    assert "/hand_driver" in report["subscribers"]["/hand/enable"]
    assert "/hand_driver" in report["subscribers"]["/hand/command"]
