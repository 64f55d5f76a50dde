"""CDR encoding of every message type: byte for byte against rosbags, hand-computed bytes, round trips, errors."""
from __future__ import annotations

import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore

from ros_nodes import msgs
from ros_nodes.msgs import CdrError, deserialize, serialize

from ros_samples import SAMPLES, to_rosbags

STORES = [Stores.ROS2_HUMBLE, Stores.ROS2_JAZZY]
EACH_SAMPLE = pytest.mark.parametrize("sample", [m for _, m in SAMPLES], ids=[n for n, _ in SAMPLES])


def test_every_registered_type_has_a_sample() -> None:
    assert {message.ROS_TYPE for _, message in SAMPLES} == set(msgs.REGISTRY)
    assert len(msgs.REGISTRY) == 22


@pytest.mark.parametrize("store", STORES, ids=lambda s: s.name)
@pytest.mark.parametrize("ros_type", sorted(msgs.REGISTRY))
def test_fields_match_rosbags_definitions(ros_type: str, store: Stores) -> None:
    typestore = get_typestore(store)
    _, fielddefs = typestore.fielddefs[ros_type]
    expected = []
    for name, (node_type, detail) in fielddefs:
        if node_type.name == "BASE":
            expected.append((name, detail[0], None, False))
        elif node_type.name == "NAME":
            expected.append((name, detail, None, False))
        else:
            (element_kind, element), length = detail
            element_name = element[0] if element_kind.name == "BASE" else element
            expected.append((name, element_name, length or None, node_type.name == "SEQUENCE"))
    ours = [(f.name, f.ros_element_name(), f.length, f.is_sequence) for f in msgs.REGISTRY[ros_type].FIELDS]
    assert ours == expected


@EACH_SAMPLE
@pytest.mark.parametrize("store", STORES, ids=lambda s: s.name)
def test_bytes_equal_rosbags(sample: object, store: Stores) -> None:
    typestore = get_typestore(store)
    ours = serialize(sample)
    theirs = bytes(typestore.serialize_cdr(to_rosbags(sample, typestore), sample.ROS_TYPE))
    assert ours == theirs
    decoded_by_rosbags = typestore.deserialize_cdr(ours, sample.ROS_TYPE)
    assert serialize(deserialize(theirs, type(sample))) == bytes(
        typestore.serialize_cdr(decoded_by_rosbags, sample.ROS_TYPE))


@EACH_SAMPLE
def test_round_trip(sample: object) -> None:
    data = serialize(sample)
    decoded = deserialize(data, type(sample))
    assert decoded == sample
    assert deserialize(data + b"\x00\x00\x00", sample.ROS_TYPE) == sample


def test_hand_computed_bytes() -> None:
    assert serialize(msgs.Bool(data=True)) == bytes.fromhex("00010000 01")
    assert serialize(msgs.String(data="ab")) == bytes.fromhex("00010000 03000000 616200")
    assert serialize(msgs.Float64(data=1.5)) == bytes.fromhex("00010000 000000000000f83f")
    # int32 sec, uint32 nanosec, then the string length of "abc\0" = 4
    assert serialize(msgs.Header(stamp=msgs.Time(1, 2), frame_id="abc")) == bytes.fromhex(
        "00010000 01000000 02000000 04000000 61626300")
    joint_state = msgs.JointState(name=["a"], position=np.array([2.0]))
    assert serialize(joint_state) == bytes.fromhex(
        "00010000" "00000000 00000000 01000000 00"  # stamp 0, frame_id "" (length 1, NUL) ends at offset 13
        "000000" "01000000" "02000000 6100"  # pad to 16, one name: length 2, "a\0" ends at 26
        "0000" "01000000" "0000000000000040"  # pad to 28, 1 position at 28, 2.0 at 32 (already 8-aligned)
        "00000000 00000000")  # empty velocity and effort: counts only, no element padding
    assert len(serialize(msgs.Float64MultiArray())) == 4 + 12  # dim count, data_offset, data count; no padding


def test_numpy_types_come_out() -> None:
    joint_state = deserialize(serialize(SAMPLES[10][1]), msgs.JointState)
    assert joint_state.position.dtype == np.float64 and joint_state.position.shape == (24,)
    assert joint_state.effort.dtype == np.float64 and joint_state.effort.shape == (0,)
    joint_state.position[0] = 5.0  # decoded arrays are writable copies, not views of the buffer
    image = deserialize(serialize(SAMPLES[13][1]), msgs.Image)
    assert image.data.dtype == np.uint8 and image.data.shape == (45,)
    assert image.data.reshape(3, 5, 3).shape == (3, 5, 3)
    assert serialize(msgs.Image(data=bytes([1, 2, 3]))) == serialize(msgs.Image(data=np.array([1, 2, 3])))


def test_big_endian_is_read() -> None:
    big_endian = bytes.fromhex("00000000 00000001 00000002 00000004 61626300")
    assert deserialize(big_endian, msgs.Header) == msgs.Header(stamp=msgs.Time(1, 2), frame_id="abc")


def test_time_conversions() -> None:
    assert msgs.Time.from_ns(1_500_000_000) == msgs.Time(1, 500_000_000)
    assert msgs.Time.from_ns(-1) == msgs.Time(-1, 999_999_999)
    assert msgs.Time(3, 4).to_ns() == 3_000_000_004


def test_type_names() -> None:
    assert msgs.JointState.ROS_TYPE == "sensor_msgs/msg/JointState"
    assert msgs.JointState.DDS_TYPE == "sensor_msgs::msg::dds_::JointState_"
    assert msgs.Clock.DDS_TYPE == "rosgraph_msgs::msg::dds_::Clock_"
    assert msgs.message_class("geometry_msgs/PoseStamped") is msgs.PoseStamped
    with pytest.raises(KeyError, match="unknown ROS message type 'foo_msgs/msg/Bar'"):
        msgs.message_class("foo_msgs/msg/Bar")


@pytest.mark.parametrize(
    ("mutate", "pattern"),
    [
        (lambda b: b[:-5], r"sensor_msgs/msg/JointState: cannot deserialize field 'velocity': truncated"),
        (lambda b: b[:30], r"JointState: cannot deserialize field 'name\[1\]': truncated"),
        (lambda b: b[:2], r"JointState: 2 bytes are too few for the 4-byte CDR encapsulation header"),
        (lambda b: b"", r"JointState: 0 bytes are too few"),
        (lambda b: b"\x07\x01" + b[2:], r"JointState: bad CDR encapsulation header 07 01"),
        (lambda b: b + b"\x00" * 8, r"JointState: 8 unexpected bytes after the message"),
        (lambda b: b[:12] + b"\x05" + b[13:], r"field 'header.frame_id': string at offset 12 is not NUL-terminated"),
        (lambda b: b[:16] + b"\xff" + b[17:], r"field 'header.frame_id': string at offset 12 is not UTF-8"),
        (lambda b: b[:20] + b"\xff\xff\xff\x7f" + b[24:], r"field 'name': truncated or corrupt: 2147483647 elements"),
    ],
    ids=["truncated_array", "truncated_string", "header_only", "empty", "bad_header", "trailing", "no_nul",
         "not_utf8", "huge_count"],
)
def test_bad_bytes_raise_naming_the_type(mutate: object, pattern: str) -> None:
    data = serialize(msgs.JointState(header=msgs.Header(frame_id="abc"), name=["a", "bcd"],
                                     position=np.array([1.0, 2.0])))
    with pytest.raises(CdrError, match=pattern):
        deserialize(mutate(data), msgs.JointState)


def test_random_garbage_never_crashes_otherwise() -> None:
    rng = np.random.default_rng(0)
    for _ in range(300):
        garbage = b"\x00\x01\x00\x00" + rng.integers(0, 256, size=int(rng.integers(0, 80)), dtype=np.uint8).tobytes()
        for cls in (msgs.JointState, msgs.DiagnosticArray, msgs.CameraInfo):
            try:
                deserialize(garbage, cls)
            except CdrError as error:
                assert str(error).startswith(cls.ROS_TYPE)


@pytest.mark.parametrize(
    ("message", "pattern"),
    [
        (msgs.JointState(name=[1]), r"JointState: cannot serialize field 'name\[0\]': expected str, got int"),
        (msgs.CameraInfo(k=np.zeros(3)), r"CameraInfo: cannot serialize field 'k': expected exactly 9 elements"),
        (msgs.DiagnosticArray(status=[msgs.DiagnosticStatus(values=[msgs.KeyValue(key=3)])]),
         r"field 'status\[0\].values\[0\].key': expected str"),
        (msgs.Time(sec=2**40), r"Time: cannot serialize field 'sec'"),
        (msgs.JointState(position=np.zeros((2, 2))), r"field 'position': expected a 1-D array, got shape \(2, 2\)"),
        (msgs.PoseStamped(pose=msgs.Point()), r"field 'pose': expected geometry_msgs/msg/Pose, got Point"),
        (msgs.Image(data=np.array([1.5])), r"field 'data': cannot store float64 values in a uint8 array"),
        (msgs.Image(data=[0, 256]), r"field 'data': values outside the uint8 range \[0, 255\]"),
    ],
)
def test_bad_messages_raise_naming_the_field(message: object, pattern: str) -> None:
    with pytest.raises(CdrError, match=pattern):
        serialize(message)


@pytest.mark.parametrize("ros_type", sorted(msgs.REGISTRY))
def test_type_hashes_are_those_of_the_ros_message_packages(ros_type: str) -> None:
    """Our RIHS01 table against the type description JSON the installed ROS 2 message package ships."""
    import json
    import sys
    from pathlib import Path

    from ros_nodes.msgs.type_hashes import TYPE_HASHES

    package, _, name = ros_type.split("/")
    description = json.loads((Path(sys.prefix) / "share" / package / "msg" / f"{name}.json").read_text())
    own = next(entry for entry in description["type_hashes"] if entry["type_name"] == ros_type)
    assert TYPE_HASHES[ros_type] == own["hash_string"]
    assert set(TYPE_HASHES) == set(msgs.REGISTRY)
