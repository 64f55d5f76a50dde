"""rosbag2 MCAP bags: written by BagWriter, read back by BagReader, rosbags and mcap + mcap_ros2; crash repair."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
from rosbags.rosbag2 import Reader
from rosbags.typesys import Stores, get_typestore

from ros_nodes import msgs
from ros_nodes.bag import BagError, BagReader, BagWriter, repair_bag
from ros_samples import SAMPLES

T0 = 1_700_000_000_000_000_000


def read_with_mcap(mcap_file: Path, topics: list[str] | None = None) -> list[tuple[str, int, object]]:
    """(topic, log time, decoded message) read by the `mcap` reader with the mcap_ros2 decoder."""
    with mcap_file.open("rb") as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        return [(channel.topic, message.log_time, decoded)
                for _, channel, message, decoded in reader.iter_decoded_messages(topics=topics)]


def joint_state(index: int) -> msgs.JointState:
    """Deterministic joint state number `index`."""
    return msgs.JointState(header=msgs.Header(stamp=msgs.Time.from_ns(T0 + index * 8_000_000), frame_id="hand"),
                           name=["rh_FFJ1", "rh_FFJ2"], position=np.array([index, -index], dtype=float))


def write_demo_bag(path: Path, flush_period_s: float = 1.0) -> None:
    """100 joint states, 10 images, 3 poses, one raw-CDR Bool and a DiagnosticArray, written in time order."""
    image = msgs.Image(height=2, width=2, encoding="rgb8", step=6, data=np.arange(12, dtype=np.uint8))
    with BagWriter(path, flush_period_s=flush_period_s) as bag:
        for index in range(100):
            bag.write("/hand/joint_states", "sensor_msgs/msg/JointState", joint_state(index), T0 + index * 8_000_000)
            if index % 10 == 0:
                bag.write("/cameras/left/image_raw", "sensor_msgs/msg/Image", image, T0 + index * 8_000_000 + 1)
        for index in range(3):
            pose = msgs.PoseStamped(pose=msgs.Pose(position=msgs.Point(x=index * 0.01)))
            bag.write("/object/pose", "geometry_msgs/msg/PoseStamped", pose, T0 + 10**9 + index)
        bag.write("/hand/enable", "std_msgs/msg/Bool", msgs.serialize(msgs.Bool(data=True)), T0 + 10**9 + 7)
        bag.write("/diagnostics", "diagnostic_msgs/msg/DiagnosticArray", SAMPLES[26][1], T0 + 10**9 + 9)


def test_bag_reads_back_with_our_reader_rosbags_and_mcap(tmp_path: Path) -> None:
    path = tmp_path / "episode"
    write_demo_bag(path)
    metadata = yaml.safe_load((path / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert metadata["version"] == 8 and metadata["storage_identifier"] == "mcap"
    assert metadata["message_count"] == 115

    with BagReader(path) as reader:
        assert reader.topics["/hand/joint_states"] == "sensor_msgs/msg/JointState"
        items = list(reader.messages())
    assert len(items) == 115
    assert [m.timestamp_ns for m in items] == sorted(m.timestamp_ns for m in items)
    joint_states = [m for m in items if m.topic == "/hand/joint_states"]
    assert joint_states[42].message == joint_state(42) and joint_states[42].timestamp_ns == T0 + 42 * 8_000_000
    assert [m.message for m in items if m.topic == "/hand/enable"] == [msgs.Bool(data=True)]
    assert [m.message for m in items if m.topic == "/diagnostics"] == [SAMPLES[26][1]]

    typestore = get_typestore(Stores.ROS2_JAZZY)
    with Reader(path) as reader:
        connection = next(c for c in reader.connections if c.topic == "/hand/joint_states")
        first = next(reader.messages(connections=[connection]))
        decoded = typestore.deserialize_cdr(first[2], "sensor_msgs/msg/JointState")
        assert decoded.name == ["rh_FFJ1", "rh_FFJ2"] and decoded.header.frame_id == "hand"
        assert "float64[] position" in connection.msgdef.data

    mcap_file = path / "episode.mcap"
    decoded_by_mcap = read_with_mcap(mcap_file, ["/hand/joint_states", "/cameras/left/image_raw"])
    assert len(decoded_by_mcap) == 110
    states = [m for m in decoded_by_mcap if m[0] == "/hand/joint_states"]
    assert list(states[7][2].position) == [7.0, -7.0]
    assert states[7][1] == T0 + 7 * 8_000_000
    image = next(m[2] for m in decoded_by_mcap if m[0] == "/cameras/left/image_raw")
    assert image.encoding == "rgb8" and bytes(image.data) == bytes(range(12))


def test_reader_errors_are_clear(tmp_path: Path) -> None:
    path = tmp_path / "episode"
    write_demo_bag(path)
    with BagReader(path) as reader:
        with pytest.raises(BagError, match=r"has no topic \['/nope'\]"):
            list(reader.messages(topics=["/nope"]))
    with pytest.raises(BagError, match="does not exist"):
        BagReader(tmp_path / "missing")
    with pytest.raises(BagError, match="exists already"):
        BagWriter(path)
    with BagWriter(tmp_path / "other") as bag:
        bag.write("/x", "std_msgs/msg/Bool", msgs.Bool(), 1)
        with pytest.raises(BagError, match="topic /x is recorded as std_msgs/msg/Bool"):
            bag.write("/x", "std_msgs/msg/String", msgs.String(), 2)
        with pytest.raises(BagError, match="expected a std_msgs/msg/String message or CDR bytes, got Bool"):
            bag.write("/y", "std_msgs/msg/String", msgs.Bool(), 2)
        with pytest.raises(BagError, match="has no message definition"):
            bag.write("/z", "foo_msgs/msg/Bar", b"\x00\x01\x00\x00", 3)


def test_unknown_types_need_raw(tmp_path: Path) -> None:
    path = tmp_path / "foreign"
    with BagWriter(path) as bag:
        bag.write("/chatter", "std_msgs/msg/Bool", msgs.Bool(data=True), 1)
        bag.write("/twist", "geometry_msgs/msg/Twist", bytes.fromhex("00010000") + bytes(48), 2)
    with BagReader(path) as reader:
        with pytest.raises(BagError, match=r"no type for /twist \(geometry_msgs/msg/Twist\).*raw=True"):
            list(reader.messages())
        assert [m.message for m in reader.messages(topics=["/chatter"])] == [msgs.Bool(data=True)]
        raw = list(reader.messages(raw=True))
    assert raw[1].message == bytes.fromhex("00010000") + bytes(48)


def test_truncated_bag_is_reported_then_repaired(tmp_path: Path) -> None:
    path = tmp_path / "episode"
    write_demo_bag(path, flush_period_s=0.0)  # one chunk per message
    with BagReader(path) as reader:
        everything = [(m.topic, m.timestamp_ns) for m in reader.messages()]
    mcap_file = path / "episode.mcap"
    data = mcap_file.read_bytes()
    mcap_file.write_bytes(data[: len(data) // 2])
    with pytest.raises(BagError, match="truncated or was not closed; `inhand replay .* --repair`"):
        BagReader(path)
    truncated = mcap_file.read_bytes()
    report = repair_bag(path)
    assert report.repaired and 0 < report.dropped_bytes < 2000
    # nothing is lost: the original folder is kept, byte for byte, beside the repaired bag
    assert report.original == tmp_path / "episode.orig"
    assert (report.original / "episode.mcap").read_bytes() == truncated
    assert (report.original / "metadata.yaml").is_file()
    assert 35 <= report.message_count < 115
    with BagReader(path) as reader:
        kept = list(reader.messages())
    assert [(m.topic, m.timestamp_ns) for m in kept] == everything[: report.message_count]
    assert kept[10].message == joint_state(9)  # the image at index 0 is the second message
    assert repair_bag(path).repaired is False


def test_a_cut_inside_a_record_header_is_repaired(tmp_path: Path) -> None:
    # cut 8 bytes into a chunk's fixed header: mcap's reader raises struct.error there, not McapError
    for cut in (692, 729, 1099, 1432):
        path = tmp_path / f"cut{cut}"
        with BagWriter(path, flush_period_s=0.0) as bag:
            for index in range(30):
                state = msgs.JointState(name=["rh_FFJ1"], position=np.array([0.01 * index]))
                bag.write("/hand/joint_states", "sensor_msgs/msg/JointState", state, 1000 + index)
        mcap_file = path / f"cut{cut}.mcap"
        mcap_file.write_bytes(mcap_file.read_bytes()[:cut])
        report = repair_bag(path)
        with BagReader(path) as reader:
            assert report.repaired and len(list(reader.messages())) == report.message_count > 0


WRITER_SCRIPT = """
import sys, time
import numpy as np
from ros_nodes import msgs
from ros_nodes.bag import BagWriter
bag = BagWriter(sys.argv[1], flush_period_s=0.05)
for index in range(100000):
    message = msgs.JointState(name=["j"], position=np.array([float(index)]))
    bag.write("/hand/joint_states", "sensor_msgs/msg/JointState", message, 1000 + index)
    if index == 49:
        bag.flush()
    print(index, flush=True)
    time.sleep(0.005)
"""


def test_sigkilled_writer_leaves_a_repairable_bag(tmp_path: Path) -> None:
    path = tmp_path / "killed"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    process = subprocess.Popen([sys.executable, "-c", WRITER_SCRIPT, str(path)], stdout=subprocess.PIPE, env=env,
                               text=True)
    written = -1
    assert process.stdout is not None
    for line in process.stdout:
        written = int(line)
        if written >= 120:
            break
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL
    assert not (path / "metadata.yaml").exists()
    with pytest.raises(BagError, match="has no metadata.yaml: its writer did not close it"):
        BagReader(path)
    report = repair_bag(path)
    assert report.repaired
    # everything up to the explicit flush is there, and the periodic flush loses at most ~0.05 s (10 messages)
    assert written - 25 <= report.message_count <= written + 1
    with BagReader(path) as reader:
        positions = [m.message.position[0] for m in reader.messages()]
    assert positions == [float(i) for i in range(report.message_count)]
    assert len(read_with_mcap(path / "killed.mcap")) == report.message_count
