"""What our dds nodes announce on ros_discovery_info (rclpy's graph on Fast DDS reads it; the rclpy side is in
test_ros_interop_rclpy): every live node of ours with its endpoints, under the GID rmw_fastrtps files Cyclone
endpoints under; a node that closes leaves the list, and the last one empties it."""
from __future__ import annotations

import random
import time

from cyclonedds.core import Policy, Qos
from cyclonedds.domain import DomainParticipant
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic

from ros_nodes import msgs
from ros_nodes.transport import create_node
from ros_nodes.transport.dds_graph import FAST_DDS_PARTICIPANT_GID
from ros_nodes.transport.dds_types import topic_type
from ros_nodes.transport.graph import DISCOVERY_TOPIC, ParticipantEntitiesInfo, gid


class DiscoveryListener:
    """A plain Cyclone reader of ros_discovery_info in a participant of its own, as rmw has one."""

    def __init__(self, domain_id: int) -> None:
        self.participant = DomainParticipant(domain_id)
        topic = Topic(self.participant, DISCOVERY_TOPIC, topic_type(ParticipantEntitiesInfo))
        qos = Qos(Policy.Reliability.Reliable(0), Policy.History.KeepLast(100), Policy.Durability.TransientLocal)
        self.reader = DataReader(self.participant, topic, qos=qos)
        self.latest: ParticipantEntitiesInfo | None = None

    def names(self) -> set[str]:
        """The nodes of the latest sample received."""
        for sample in self.reader.take(100):
            if sample.sample_info.valid_data:
                self.latest = msgs.deserialize(sample.data, ParticipantEntitiesInfo)
        if self.latest is None:
            return set()
        return {f"{n.node_namespace.rstrip('/')}/{n.node_name}" for n in self.latest.node_entities_info_seq}


def test_every_live_node_is_announced_with_its_endpoints_and_leaves_when_closed() -> None:
    domain = random.randint(30, 230)
    driver = create_node("hand_driver", backend="dds", domain_id=domain)
    policy = create_node("policy", "/robot", backend="dds", domain_id=domain)
    goals = create_node("goal_manager", backend="dds", domain_id=domain)
    joint_states = driver.create_publisher(msgs.JointState, "hand/joint_states")
    policy.create_subscription(msgs.JointState, "/hand/joint_states", lambda message: None)
    listener = DiscoveryListener(domain)  # after create_node: the same loopback configuration of the domain
    nodes = [driver, policy, goals]

    def announced_after_settling(expected: set[str], timeout_s: float = 10.0) -> set[str]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and listener.names() != expected:
            for node in nodes:
                node.spin_once(0.01)  # nodes learn of their peers while they spin
        time.sleep(0.3)  # nothing else arrives that changes it
        return listener.names()

    everyone = {"/hand_driver", "/robot/policy", "/goal_manager"}
    assert announced_after_settling(everyone) == everyone
    latest = listener.latest
    assert latest is not None and bytes(latest.gid.data) == bytes(16) == FAST_DDS_PARTICIPANT_GID.bytes
    by_name = {n.node_name: n for n in latest.node_entities_info_seq}
    assert joint_states.topic == "/hand/joint_states"
    writer_guid = driver._writers[0].guid  # type: ignore[attr-defined]
    assert [bytes(g.data) for g in by_name["hand_driver"].writer_gid_seq] == [bytes(gid(writer_guid).data)]
    assert len(by_name["policy"].reader_gid_seq) == 1 and by_name["policy"].writer_gid_seq == []

    policy.shutdown()
    nodes.remove(policy)
    assert announced_after_settling({"/hand_driver", "/goal_manager"}) == {"/hand_driver", "/goal_manager"}
    driver.shutdown()
    goals.shutdown()
    nodes.clear()
    assert announced_after_settling(set()) == set()  # the last one's empty list removes the GID from rmw's graph
    listener.participant.__del__()
