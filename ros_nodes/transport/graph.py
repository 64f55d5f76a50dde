"""The ROS 2 graph's own discovery data: which node owns which DDS readers and writers.

rmw implementations publish, per DDS participant, an rmw_dds_common/msg/ParticipantEntitiesInfo on the DDS topic
"ros_discovery_info" (no "rt/" prefix; RELIABLE, TRANSIENT_LOCAL, KEEP_LAST 1). rclpy's graph (node list, the
node of each publisher and subscription) is built from these samples, matched by GID against the endpoints that
DDS discovery reports. A GID is the entity's 16-byte DDS GUID: 12-byte participant prefix + 4-byte entity id
(RMW_GID_STORAGE_SIZE is 16 since ROS 2 Iron). A participant without this sample shows up as
"_CREATED_BY_BARE_DDS_APP_".
"""
from __future__ import annotations

import uuid
from collections.abc import Iterable

import numpy as np

from ros_nodes.msgs.schema import ros_field, ros_message

DISCOVERY_TOPIC = "ros_discovery_info"
GID_SIZE = 16


@ros_message("rmw_dds_common/msg/Gid", register=False)
class Gid:
    """A DDS entity's GUID as rmw stores it: (16,) uint8."""

    data: np.ndarray = ros_field("char[16]")


@ros_message("rmw_dds_common/msg/NodeEntitiesInfo", register=False)
class NodeEntitiesInfo:
    """One node of a participant and the GIDs of its readers and writers."""

    node_namespace: str = ros_field("string")  # string<=256 on the wire is a plain CDR string
    node_name: str = ros_field("string")
    reader_gid_seq: list[Gid] = ros_field(Gid, "[]")
    writer_gid_seq: list[Gid] = ros_field(Gid, "[]")


@ros_message("rmw_dds_common/msg/ParticipantEntitiesInfo", register=False)
class ParticipantEntitiesInfo:
    """A participant's GID and the nodes it hosts."""

    gid: Gid = ros_field(Gid)
    node_entities_info_seq: list[NodeEntitiesInfo] = ros_field(NodeEntitiesInfo, "[]")


def gid(guid: uuid.UUID) -> Gid:
    """The GID of an entity from its DDS GUID (bytes in wire order: prefix, then entity id)."""
    return Gid(data=np.frombuffer(guid.bytes, dtype=np.uint8).copy())


def participant_entities_info(
    participant: uuid.UUID, namespace: str, name: str, readers: Iterable[uuid.UUID], writers: Iterable[uuid.UUID]
) -> ParticipantEntitiesInfo:
    """The discovery sample of a participant that hosts one node."""
    node = NodeEntitiesInfo(
        node_namespace=namespace, node_name=name,
        reader_gid_seq=[gid(guid) for guid in readers], writer_gid_seq=[gid(guid) for guid in writers],
    )
    return ParticipantEntitiesInfo(gid=gid(participant), node_entities_info_seq=[node])
