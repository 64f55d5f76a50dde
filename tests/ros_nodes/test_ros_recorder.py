"""recorder: every topic it saw ends up in the bag, byte for byte, including configured extras."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ros_nodes import msgs
from ros_nodes.bag import BagReader
from ros_nodes.recorder import Recorder, RecorderConfig, parse_extra_topic
from ros_nodes.transport import SENSOR_QOS, create_node
from sim.config_loading import ConfigError


def test_bag_holds_every_topic_seen(tmp_path: Path) -> None:
    domain = 4200
    node = create_node("recorder", "/robot", backend="inproc", domain_id=domain)
    recorder = Recorder(node, RecorderConfig(bag=str(tmp_path / "bag"),
                                             extra_topics=("/joint_states:sensor_msgs/msg/JointState",)))
    peer = create_node("peer", "/robot", backend="inproc", domain_id=domain)
    sent = {
        "/robot/hand/joint_states": msgs.JointState(name=["rh_FFJ1"], position=np.array([0.25])),
        "/robot/trial/status": msgs.String(data='{"trial": 1}'),
        "/robot/cameras/front/image_raw": msgs.Image(height=1, width=1, encoding="rgb8", step=3,
                                                     data=np.array([1, 2, 3], dtype=np.uint8)),
        "/diagnostics": msgs.DiagnosticArray(),
        "/clock": msgs.Clock(clock=msgs.Time(sec=3)),
        "/joint_states": msgs.JointState(name=["rh_WRJ1"], position=np.array([0.5])),
    }
    try:
        for topic, message in sent.items():
            qos = SENSOR_QOS if isinstance(message, (msgs.Image, msgs.Clock)) else 10
            publisher = peer.create_publisher(type(message), topic, qos)
            for _ in range(3):
                publisher.publish(message)
        while node.spin_once(0.0):
            pass
    finally:
        recorder.close()
        node.shutdown()
        peer.shutdown()
    assert recorder.counts == {topic: 3 for topic in sent}
    with BagReader(tmp_path / "bag") as reader:
        assert {topic for topic in reader.topics} >= set(sent)
        got = {}
        for record in reader.messages(list(sent)):
            got.setdefault(record.topic, []).append(record.message)
    assert {topic: len(messages) for topic, messages in got.items()} == {topic: 3 for topic in sent}
    for topic, message in sent.items():
        assert got[topic][0] == message


def test_extra_topic_entries_are_checked() -> None:
    assert parse_extra_topic("/a/b:std_msgs/Bool") == ("/a/b", "std_msgs/msg/Bool")
    with pytest.raises(ConfigError, match="expected 'topic:pkg/msg/Type'"):
        parse_extra_topic("no_type")
    with pytest.raises(ConfigError, match="unknown ROS message type"):
        parse_extra_topic("/a:nav_msgs/msg/Odometry")
