"""ROS 2 name rules: node names, namespaces, topic resolution (relative, absolute, private ~) and remapping."""
from __future__ import annotations

import re
from collections.abc import Mapping

from sim.errors import InhandError

_TOKEN = r"[A-Za-z_][A-Za-z0-9_]*"
_NODE_NAME = re.compile(rf"^{_TOKEN}$")
_ABSOLUTE = re.compile(rf"^(/{_TOKEN})+$")
_TOPIC = re.compile(rf"^(~|(~/|/)?{_TOKEN}(/{_TOKEN})*)$")


class InvalidNameError(InhandError, ValueError):
    """A node name, namespace, topic name or remapping rule that ROS 2 would reject."""


def validate_node_name(name: str) -> str:
    """Return `name` if it is a valid node name (letters, digits, underscores; not starting with a digit)."""
    if not _NODE_NAME.match(name):
        raise InvalidNameError(f"invalid node name {name!r}: use letters, digits and '_', not starting with a digit")
    return name


def normalize_namespace(namespace: str) -> str:
    """"" -> "/", "robot" -> "/robot", "/robot/" -> "/robot"; raise on anything else."""
    stripped = namespace.strip("/")
    if not stripped:
        return "/"
    absolute = "/" + stripped
    if not _ABSOLUTE.match(absolute):
        raise InvalidNameError(f"invalid namespace {namespace!r}: tokens of letters, digits and '_' separated by '/'")
    return absolute


def resolve_name(name: str, namespace: str = "/", node_name: str | None = None) -> str:
    """Expand a topic name to an absolute one: "/a" stays, "a" -> namespace/a, "~/a" -> namespace/node/a."""
    if not _TOPIC.match(name):
        raise InvalidNameError(
            f"invalid topic name {name!r}: tokens of letters, digits and '_' separated by '/', "
            "optionally starting with '/' (absolute) or '~/' (private)"
        )
    namespace = normalize_namespace(namespace)
    prefix = "" if namespace == "/" else namespace
    if name.startswith("/"):
        return name
    if name.startswith("~"):
        if node_name is None:
            raise InvalidNameError(f"private topic name {name!r} needs a node name")
        rest = name[1:].lstrip("/")
        return f"{prefix}/{validate_node_name(node_name)}" + (f"/{rest}" if rest else "")
    return f"{prefix}/{name}"


def resolve_remappings(
    remappings: Mapping[str, str] | None, namespace: str = "/", node_name: str | None = None
) -> dict[str, str]:
    """Remapping rules {from: to} with both sides resolved in the node's namespace, as ROS 2 matches them."""
    return {
        resolve_name(source, namespace, node_name): resolve_name(target, namespace, node_name)
        for source, target in (remappings or {}).items()
    }


def parse_remapping(rule: str) -> tuple[str, str]:
    """"from:=to" -> (from, to), the form of `ros2 run ... --ros-args -r from:=to`."""
    source, separator, target = rule.partition(":=")
    if not separator or not source or not target:
        raise InvalidNameError(f"invalid remapping rule {rule!r}: expected 'from:=to'")
    return source, target


def dds_topic_name(absolute_topic: str) -> str:
    """ROS topic /a/b -> DDS topic rt/a/b (rmw's prefix for plain topics)."""
    if not absolute_topic.startswith("/"):
        raise InvalidNameError(f"DDS topic names are made from absolute ROS names, got {absolute_topic!r}")
    return "rt" + absolute_topic


def ros_topic_name(dds_topic: str) -> str | None:
    """DDS topic rt/a/b -> /a/b; None for DDS topics that are not ROS topics (services, actions, other apps)."""
    return dds_topic[2:] if dds_topic.startswith("rt/") else None


def ros_type_name(dds_type: str) -> str | None:
    """sensor_msgs::msg::dds_::JointState_ -> sensor_msgs/msg/JointState; None for non-ROS type names."""
    match = re.match(rf"^({_TOKEN})::(msg)::dds_::({_TOKEN})_$", dds_type)
    return f"{match.group(1)}/{match.group(2)}/{match.group(3)}" if match else None
