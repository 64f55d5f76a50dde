"""A stock ROS 2 node for the interop tests: plain rclpy on its default RMW (Fast DDS), none of our code.

Run as `python ros_rclpy_probe.py SPEC_JSON`; SPEC: {"seconds": S, "max_seconds": M, "subscribe": {topic:
"pkg/msg/Type"}}. It subscribes (best effort, so it matches reliable and best-effort writers) to each topic with
rclpy's own message classes, publishes std_msgs/Bool false on /hand/enable and a JointState on /hand/command at
20 Hz for at least S seconds, until every topic had a sample or M seconds passed, and prints one JSON line: each
topic's first and last sample re-serialized by rclpy (hex), sample counts, the graph's node names, the node
names and type hashes rclpy gives each topic's publishers and the subscribers of /hand/enable and /hand/command.
"""
from __future__ import annotations

import importlib
import json
import sys
import time

import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.serialization import serialize_message
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool


def message_type(ros_type: str) -> type:
    package, _, name = ros_type.split("/")
    return getattr(importlib.import_module(f"{package}.msg"), name)


def main() -> None:
    spec = json.loads(sys.argv[1])
    rclpy.init()
    node = rclpy.create_node("rclpy_probe")
    first: dict[str, str] = {}
    last: dict[str, str] = {}
    counts: dict[str, int] = {}
    best_effort = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)

    def keep(topic: str):  # type: ignore[no-untyped-def]
        def callback(message: object) -> None:
            counts[topic] = counts.get(topic, 0) + 1
            last[topic] = serialize_message(message).hex()
            first.setdefault(topic, last[topic])
        return callback

    for topic, ros_type in spec["subscribe"].items():
        node.create_subscription(message_type(ros_type), topic, keep(topic), best_effort)
    enable = node.create_publisher(Bool, "/hand/enable", 10)
    command = node.create_publisher(JointState, "/hand/command", 10)
    started = time.monotonic()
    next_publish = 0.0

    def done() -> bool:
        elapsed = time.monotonic() - started
        everything = len(first) == len(spec["subscribe"])
        return elapsed >= spec.get("max_seconds", spec["seconds"]) or (everything and elapsed >= spec["seconds"])

    while not done():
        rclpy.spin_once(node, timeout_sec=0.02)
        if time.monotonic() >= next_publish:
            next_publish = time.monotonic() + 0.05
            enable.publish(Bool(data=False))
            command.publish(JointState(name=["rh_FFJ3"], position=[0.25]))
    publishers = {
        topic: sorted(f"{info.node_namespace.rstrip('/')}/{info.node_name}" for info in
                      node.get_publishers_info_by_topic(topic))
        for topic in spec["subscribe"]
    }
    publisher_type_hashes = {
        topic: sorted(f"RIHS{info.topic_type_hash.version:02d}_{info.topic_type_hash.value.hex()}"
                      for info in node.get_publishers_info_by_topic(topic))
        for topic in spec["subscribe"]
    }
    subscribers = {
        topic: sorted(f"{info.node_namespace.rstrip('/')}/{info.node_name}" for info in
                      node.get_subscriptions_info_by_topic(topic))
        for topic in ("/hand/enable", "/hand/command")
    }
    nodes = sorted(f"{namespace.rstrip('/')}/{name}" for name, namespace in node.get_node_names_and_namespaces())
    print(json.dumps({"first": first, "last": last, "counts": counts, "nodes": nodes, "publishers": publishers, "publisher_type_hashes": publisher_type_hashes,
                      "subscribers": subscribers}), flush=True)
    node.destroy_node()
    rclpy.shutdown()


if __name__ == "__main__":
    main()
