"""recorder node: the graph's topics -> a rosbag2 bag (MCAP storage) via ros_nodes.bag.BagWriter.

Messages are stored as the CDR bytes that arrived (nothing is decoded), stamped with the wall-clock receive time as
`ros2 bag record` does. Ctrl-C (SIGINT) or SIGTERM closes the bag with its summary and metadata.yaml; after SIGKILL,
ros_nodes.bag.repair_bag recovers everything flushed (every flush_period_s).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ros_nodes import msgs
from ros_nodes.bag import BagWriter
from ros_nodes.node_main import config_from_parameters, run_node
from ros_nodes.transport import Node, QosProfile
from sim.config_loading import ConfigError, bound
from sim.output_paths import check_output_dir
from sim.scene import CAMERA_NAMES, FINGERTIP_NAMES

DEFAULT_CONFIG = "config/ros_recorder.yaml"

# DESIGN.md §5's graph: (topic, type); relative names resolve in the recorder's namespace like everyone else's
GRAPH_TOPICS: tuple[tuple[str, str], ...] = (
    ("hand/joint_states", "sensor_msgs/msg/JointState"),
    ("hand/command", "sensor_msgs/msg/JointState"),
    ("hand/enable", "std_msgs/msg/Bool"),
    ("hand/reset", "std_msgs/msg/Bool"),
    ("object/pose", "geometry_msgs/msg/PoseStamped"),
    ("object/pose_true", "geometry_msgs/msg/PoseStamped"),
    ("object/pose_sensed", "geometry_msgs/msg/PoseStamped"),
    *((f"hand/fingertips/{name}", "geometry_msgs/msg/PoseStamped") for name in FINGERTIP_NAMES),
    ("object/on_palm", "std_msgs/msg/Float64"),
    ("goal/orientation", "geometry_msgs/msg/QuaternionStamped"),
    ("trial/status", "std_msgs/msg/String"),
    ("/diagnostics", "diagnostic_msgs/msg/DiagnosticArray"),
    ("/clock", "rosgraph_msgs/msg/Clock"),
)
CAMERA_TOPICS: tuple[tuple[str, str], ...] = tuple(
    item
    for camera in CAMERA_NAMES
    for item in (
        (f"cameras/{camera}/image_raw", "sensor_msgs/msg/Image"),
        (f"cameras/{camera}/camera_info", "sensor_msgs/msg/CameraInfo"),
    )
)
# a best-effort reader matches reliable and best-effort writers alike; used where publishers may be best effort
BEST_EFFORT_TYPES = {"sensor_msgs/msg/Image", "sensor_msgs/msg/CameraInfo", "rosgraph_msgs/msg/Clock"}


@dataclass(frozen=True)
class RecorderConfig:
    """config/ros_recorder.yaml; every key is also a node parameter of the same name."""

    bag: str = ""  # the bag folder to create; "" = bags/inhand_<date>_<time> under the working directory
    images: bool = True  # record the camera topics too
    extra_topics: tuple[str, ...] = ()  # "topic:pkg/msg/Type" each
    flush_period_s: float = field(default=1.0, metadata=bound(0.05, 60.0))
    queue_depth: int = field(default=100, metadata=bound(1, 100000))


def parse_extra_topic(entry: str) -> tuple[str, str]:
    """"topic:pkg/msg/Type" -> (topic, type), the type checked against ros_nodes.msgs."""
    topic, separator, ros_type = entry.rpartition(":")
    if not separator or not topic:
        raise ConfigError(f"extra_topics entry {entry!r}: expected 'topic:pkg/msg/Type'")
    try:
        msgs.message_class(ros_type)
    except KeyError as error:
        raise ConfigError(f"extra_topics entry {entry!r}: {error.args[0]}") from None
    return topic, msgs.message_class(ros_type).ROS_TYPE


class Recorder:
    """Subscribes raw to every topic of the graph and writes what arrives into one bag."""

    def __init__(self, node: Node, config: RecorderConfig | None = None) -> None:
        self.node = node
        self.config = config or config_from_parameters(node, RecorderConfig, DEFAULT_CONFIG)
        config = self.config
        topics = list(GRAPH_TOPICS) + (list(CAMERA_TOPICS) if config.images else [])
        topics += [parse_extra_topic(entry) for entry in config.extra_topics]
        path = Path(config.bag or time.strftime("bags/inhand_%Y%m%d_%H%M%S"))
        check_output_dir(path, option="parameter bag")  # not inside another bag, not over a file
        path.parent.mkdir(parents=True, exist_ok=True)
        self.writer = BagWriter(path, flush_period_s=config.flush_period_s)
        self.path = path
        self.counts: dict[str, int] = {}
        self.topics: dict[str, str] = {}
        for topic, ros_type in topics:
            resolved = node.resolve_topic(topic)
            if resolved in self.topics:
                continue
            self.topics[resolved] = ros_type
            qos = QosProfile(depth=config.queue_depth, reliable=ros_type not in BEST_EFFORT_TYPES)
            node.create_subscription(
                msgs.message_class(ros_type), topic, self._writer_for(resolved, ros_type), qos, raw=True
            )
        node.create_timer(config.flush_period_s, self.writer.flush)

    def _writer_for(self, topic: str, ros_type: str) -> Callable[[bytes], None]:
        def write(data: bytes) -> None:
            self.writer.write(topic, ros_type, data, time.time_ns())
            self.counts[topic] = self.counts.get(topic, 0) + 1

        return write

    def close(self) -> None:
        """Close the bag: summary and metadata.yaml."""
        self.writer.close()


def main(argv: list[str] | None = None) -> int:
    """`python -m ros_nodes.recorder --ros-args -p bag:=bags/run1`"""
    return run_node("recorder", Recorder, argv)


if __name__ == "__main__":
    raise SystemExit(main())
