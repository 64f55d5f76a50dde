"""Cyclone DDS backend that speaks ROS 2's wire conventions, so ROS 2 nodes (rmw_cyclonedds, rmw_fastrtps) see it.

Topic /a/b is DDS topic "rt/a/b" of type "pkg::msg::dds_::T_", keyless, XCDR1; the sample bytes are exactly our
CDR encoding (the same bytes rosbag2 records). Participants carry USER_DATA "enclave=/;" like rmw's and announce
their node on ros_discovery_info (dds_graph), so ROS 2 tools list it by name. Unless configured otherwise, Cyclone
runs on loopback only (interface lo, no multicast, unicast discovery to 127.0.0.1) and matches Fast DDS endpoints
by type name, ignoring the XTypes type information Fast DDS sends (Cyclone rejects it as invalid).
"""
from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cyclonedds.core import GuardCondition, InstanceState, Policy, Qos, ReadCondition, SampleState, ViewState, WaitSet
from cyclonedds.domain import Domain, DomainParticipant
from cyclonedds.pub import DataWriter
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic
from cyclonedds.util import duration

from ros_nodes.msgs.type_hashes import TYPE_HASHES
from ros_nodes.transport.dds_graph import GraphAnnouncer
from ros_nodes.transport.dds_types import raw_sample, topic_type
from ros_nodes.transport.names import dds_topic_name
from ros_nodes.transport.node import LoopNode, QosProfile, Subscription
from ros_nodes.transport.ros_env import domain_id_from_env
from sim.config_loading import ConfigError

CONFIG_ENV = "INHAND_DDS_CONFIG"
MAX_PARTICIPANTS_PER_HOST = 32  # participant indices Cyclone probes on 127.0.0.1 during unicast discovery

LOOPBACK_CONFIG = f"""<?xml version="1.0" encoding="UTF-8"?>
<CycloneDDS xmlns="https://cdds.io/config">
  <Domain Id="any">
    <General>
      <Interfaces><NetworkInterface name="lo"/></Interfaces>
      <AllowMulticast>false</AllowMulticast>
    </General>
    <Compatibility>
      <!-- Fast DDS (vendor 1.15, rclpy's default RMW) sends XTypes type objects that Cyclone rejects as invalid
           ("ddsi_xt_type_add_typeobj with invalid type object"); an endpoint whose type cannot be resolved never
           matches, so no sample flows. ROS 2 types are matched by name, as rmw does: ignore Fast DDS's type info. -->
      <IgnoreTypeInformation>1.15</IgnoreTypeInformation>
    </Compatibility>
    <Discovery>
      <ParticipantIndex>auto</ParticipantIndex>
      <MaxAutoParticipantIndex>{MAX_PARTICIPANTS_PER_HOST}</MaxAutoParticipantIndex>
      <Peers><Peer address="127.0.0.1"/></Peers>
    </Discovery>
  </Domain>
</CycloneDDS>
"""

def dds_config(explicit: str | None = None) -> str | None:
    """The Cyclone config: `explicit`, else $INHAND_DDS_CONFIG (XML or file; empty = Cyclone's own
    defaults and $CYCLONEDDS_URI), else loopback only. None means "let Cyclone decide"."""
    value = explicit if explicit is not None else os.environ.get(CONFIG_ENV, LOOPBACK_CONFIG)
    if not value.strip():
        return None
    if value.lstrip().startswith("<"):
        return value
    path = Path(value.removeprefix("file://"))
    if not path.is_file():
        raise ConfigError(f"DDS config {value!r} (from {CONFIG_ENV} or config=) is neither XML nor a file")
    return path.read_text(encoding="utf-8")


_DOMAINS: dict[int, tuple[Domain | None, str | None]] = {}
_DOMAINS_LOCK = threading.Lock()


def _ensure_domain(domain_id: int, config: str | None) -> None:
    """Create the process's Domain with its config once; a second, different config in one process is an error."""
    with _DOMAINS_LOCK:
        if domain_id in _DOMAINS:
            if _DOMAINS[domain_id][1] != config:
                raise RuntimeError(
                    f"DDS domain {domain_id} is already configured differently in this process; "
                    "Cyclone takes one configuration per domain and process"
                )
            return
        _DOMAINS[domain_id] = (Domain(domain_id, config) if config is not None else None, config)


def dds_qos(qos: QosProfile, msg_type: type | None = None) -> Qos:
    """Our QoS -> Cyclone QoS as rmw sets it: KEEP_LAST(depth), reliability, VOLATILE, XCDR1 data, and the type's
    hash in USER_DATA ("typehash=RIHS01_...;", what `ros2 topic info -v` shows)."""
    reliability = (
        Policy.Reliability.Reliable(max_blocking_time=duration(milliseconds=100))
        if qos.reliable
        else Policy.Reliability.BestEffort
    )
    policies = [
        reliability,
        Policy.History.KeepLast(qos.depth),
        Policy.Durability.Volatile,
        Policy.DataRepresentation(use_cdrv0_representation=True),
    ]
    type_hash = TYPE_HASHES.get(msg_type.ROS_TYPE) if msg_type is not None else None
    if type_hash is not None:
        policies.append(Policy.Userdata(f"typehash={type_hash};".encode()))
    return Qos(*policies)


DISCOVERY_QOS = Qos(  # what rmw's ros_discovery_info writer offers: late joiners get the latest sample
    Policy.Reliability.Reliable(max_blocking_time=duration(milliseconds=100)),
    Policy.History.KeepLast(1),
    Policy.Durability.TransientLocal,
    Policy.DataRepresentation(use_cdrv0_representation=True),
)

_ANY_STATE = SampleState.Any | ViewState.Any | InstanceState.Any
_TAKE_BATCH = 64


def _delete(entity: Any) -> None:
    # The Python binding has no close(): deleting is what its finalizer does, and it is idempotent.
    entity.__del__()


class DdsNode(LoopNode):
    """A node with its own DDS participant in domain ROS_DOMAIN_ID (or domain_id)."""

    backend = "dds"

    def __init__(
        self,
        name: str,
        namespace: str = "/",
        parameters: Mapping[str, Any] | None = None,
        remappings: Mapping[str, str] | None = None,
        domain_id: int | None = None,
        config: str | None = None,
    ) -> None:
        self.domain_id = domain_id_from_env() if domain_id is None else domain_id
        if not 0 <= self.domain_id <= 232:
            raise ConfigError(f"DDS domain id must be in 0..232, got {self.domain_id}")
        _ensure_domain(self.domain_id, dds_config(config))
        self._participant = DomainParticipant(self.domain_id, qos=Qos(Policy.Userdata(b"enclave=/;")))
        self._topics: dict[str, Topic] = {}
        self._writers: list[DataWriter] = []
        self._readers: list[tuple[Subscription, DataReader, ReadCondition]] = []
        self._waitset = WaitSet(self._participant)
        self._guard = GuardCondition(self._participant)
        self._waitset.attach(self._guard)
        self._graph = GraphAnnouncer(self._participant, DISCOVERY_QOS)
        self._waitset.attach(self._graph.condition)
        super().__init__(name, namespace, parameters, remappings)
        self._start_clock()
        self._announce()

    def _announce(self) -> None:
        """Tell the ROS graph which readers and writers are this node's (after each one is created)."""
        readers = [reader.guid for _, reader, _ in self._readers]
        self._graph.update(self.namespace, self.name, readers, [writer.guid for writer in self._writers])

    def _topic(self, msg_type: type, topic: str) -> Topic:
        name = dds_topic_name(topic)
        existing = self._topics.get(name)
        if existing is not None:
            if existing.data_type is not topic_type(msg_type):
                raise TypeError(
                    f"topic {topic} is used with {existing.data_type.__idl_typename__} in this node; "
                    f"cannot add an endpoint of {msg_type.DDS_TYPE}"
                )
            return existing
        self._topics[name] = Topic(self._participant, name, topic_type(msg_type))
        return self._topics[name]

    def _open_writer(
        self, msg_type: type, topic: str, qos: QosProfile
    ) -> tuple[Callable[[bytes], None], Callable[[], int]]:
        writer = DataWriter(self._participant, self._topic(msg_type, topic), qos=dds_qos(qos, msg_type))
        self._writers.append(writer)
        self._announce()

        def send(data: bytes) -> None:
            if not self.is_shutdown:
                writer.write(raw_sample(msg_type, data))

        def count() -> int:
            return 0 if self.is_shutdown else writer.get_publication_matched_status().current_count

        return send, count

    def _open_reader(self, subscription: Subscription) -> None:
        topic = self._topic(subscription.msg_type, subscription.topic)
        reader = DataReader(self._participant, topic, qos=dds_qos(subscription.qos, subscription.msg_type))
        condition = ReadCondition(reader, _ANY_STATE)
        self._waitset.attach(condition)
        self._readers.append((subscription, reader, condition))
        self._announce()

    def _wait_for_data(self, timeout_s: float) -> list[tuple[Subscription, bytes]]:
        ready = self._take_all()
        if ready:
            return ready
        self._waitset.wait(max(0, int(timeout_s * 1e9)))
        self._guard.set(False)
        return self._take_all()

    def _take_all(self) -> list[tuple[Subscription, bytes]]:
        self._graph.poll()
        ready = []
        for subscription, reader, _ in self._readers:
            for sample in reader.take(_TAKE_BATCH):
                if sample.sample_info.valid_data:
                    ready.append((subscription, sample.data))
        return ready

    def _wake(self) -> None:
        self._guard.set(True)

    def _close(self) -> None:
        for entity in [c for _, _, c in self._readers] + [r for _, r, _ in self._readers] + self._writers:
            _delete(entity)
        self._graph.close()
        for entity in [*self._topics.values(), self._guard, self._waitset, self._participant]:
            _delete(entity)
        self._readers.clear()
        self._writers.clear()
        self._topics.clear()
