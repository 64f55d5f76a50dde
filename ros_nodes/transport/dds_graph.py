"""How our Cyclone participants put their nodes into the ROS 2 graph of rclpy on Fast DDS.

rmw_fastrtps attributes a remote endpoint to the participant GUID that the endpoint's discovery data
(SEDP) carries in PID_PARTICIPANT_GUID. Cyclone DDS omits that parameter, so for Fast DDS every Cyclone endpoint
belongs to the participant of GID 0 (16 zero bytes), whatever its real participant. rclpy then names the node of
an endpoint only if a ros_discovery_info sample for GID 0 lists the endpoint's GID.

So our participants announce on ros_discovery_info under GID 0, and since rmw keeps one node list per GID (the
latest sample wins), each announces the nodes of all our live participants, not just its own. They learn each
other's nodes on a topic of their own ("inhand_discovery_info": one sample per participant with its real GID and
its node; writers that are no longer matched, i.e. participants that are gone, drop out). A participant that
closes cleanly announces the list without its node; the last one announces an empty list, which removes GID 0
from rmw's graph. One that crashes is dropped by the others' next announcement.
"""
from __future__ import annotations

import time
import uuid
from typing import Any

from cyclonedds.core import InstanceState, Policy, Qos, ReadCondition, SampleState, ViewState
from cyclonedds.domain import DomainParticipant
from cyclonedds.pub import DataWriter
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic

from ros_nodes.msgs import deserialize, serialize
from ros_nodes.transport.dds_types import raw_sample, topic_type
from ros_nodes.transport.graph import (
    DISCOVERY_TOPIC,
    NodeEntitiesInfo,
    ParticipantEntitiesInfo,
    gid,
    participant_entities_info,
)

PEERS_TOPIC = "inhand_discovery_info"  # not "rt/...": ROS tools do not list it as a topic
FAST_DDS_PARTICIPANT_GID = uuid.UUID(int=0)  # what rmw_fastrtps files every Cyclone endpoint under
RECHECK_S = 1.0  # how often gone peers are looked for when nothing else happens
_UINT64 = (1 << 64) - 1


class GraphAnnouncer:
    """Keeps rclpy's graph (ros_discovery_info) listing this participant's node among all of ours."""

    def __init__(self, participant: DomainParticipant, writer_qos: Qos) -> None:
        self._participant = participant
        self._own: ParticipantEntitiesInfo | None = None
        self._peers: dict[int, list[NodeEntitiesInfo]] = {}  # publication handle -> that participant's nodes
        self._announced: bytes | None = None
        self._next_check = 0.0
        ros_topic = Topic(participant, DISCOVERY_TOPIC, topic_type(ParticipantEntitiesInfo))
        peers_topic = Topic(participant, PEERS_TOPIC, topic_type(ParticipantEntitiesInfo))
        self._ros_writer = DataWriter(participant, ros_topic, qos=writer_qos)
        self._peers_writer = DataWriter(participant, peers_topic, qos=writer_qos)
        self._peers_reader = DataReader(participant, peers_topic, qos=_PEERS_READER_QOS)
        self.condition = ReadCondition(self._peers_reader, SampleState.Any | ViewState.Any | InstanceState.Any)
        self._entities = [self.condition, self._peers_reader, self._peers_writer, self._ros_writer, peers_topic,
                          ros_topic]

    def update(self, namespace: str, name: str, readers: list[uuid.UUID], writers: list[uuid.UUID]) -> None:
        """This participant's node and its endpoints changed: tell our peers and the ROS graph."""
        self._own = participant_entities_info(self._participant.guid, namespace, name, readers, writers)
        self._peers_writer.write(raw_sample(ParticipantEntitiesInfo, serialize(self._own)))
        self._announce()

    def poll(self) -> None:
        """Take peers' updates and drop peers that are gone; re-announce when the node list changed."""
        changed = False
        for sample in self._peers_reader.take(64):
            info = sample.sample_info
            if not info.valid_data:
                continue
            message = deserialize(sample.data, ParticipantEntitiesInfo)
            if self._own is not None and _same_gid(message.gid, self._own.gid):
                continue  # our own sample, delivered locally
            self._peers[info.publication_handle & _UINT64] = message.node_entities_info_seq
            changed = True
        if changed or time.monotonic() >= self._next_check:
            self._next_check = time.monotonic() + RECHECK_S
            alive = self._alive_peers()
            for handle in [h for h in self._peers if h not in alive]:
                del self._peers[handle]
            self._announce()

    def _alive_peers(self) -> set[int]:
        # matched handles come back signed, sample infos carry them unsigned: compare as uint64
        return {handle & _UINT64 for handle in self._peers_reader.get_matched_publications()}

    def close(self) -> None:
        """Announce our peers' nodes without ours (an empty list removes GID 0), then delete the entities."""
        self._own = None
        alive = self._alive_peers()
        self._peers = {handle: nodes for handle, nodes in self._peers.items() if handle in alive}
        self._announce()
        for entity in self._entities:
            entity.__del__()  # the binding's only way to delete an entity; idempotent

    def _announce(self) -> None:
        nodes = [node for nodes in self._peers.values() for node in nodes]
        if self._own is not None:
            nodes = [*self._own.node_entities_info_seq, *nodes]
        nodes.sort(key=lambda node: (node.node_namespace, node.node_name))
        message = ParticipantEntitiesInfo(gid=gid(FAST_DDS_PARTICIPANT_GID), node_entities_info_seq=nodes)
        data = serialize(message)
        if data != self._announced:
            self._ros_writer.write(raw_sample(ParticipantEntitiesInfo, data))
            self._announced = data


def _same_gid(left: Any, right: Any) -> bool:
    return bytes(left.data) == bytes(right.data)


_PEERS_READER_QOS = Qos(  # late joiners get every peer's latest sample; taken as they come, so depth is ample
    Policy.Reliability.Reliable(max_blocking_time=0),
    Policy.History.KeepLast(64),
    Policy.Durability.TransientLocal,
    Policy.DataRepresentation(use_cdrv0_representation=True),
)
