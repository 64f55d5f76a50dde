"""Cyclone IDL types for ROS messages: the real type (name, fields, layout as rosidl generates them) for discovery,
and topic types whose samples carry our CDR bytes untouched, so our encoder is the only one on the wire."""
from __future__ import annotations

from typing import Any

from cyclonedds.idl import IdlStruct, make_idl_struct
from cyclonedds.idl import types as idl

from ros_nodes.msgs.schema import FieldSpec

_PRIMITIVE_IDL: dict[str, Any] = {
    "bool": bool, "byte": idl.byte, "char": idl.uint8, "int8": idl.int8, "uint8": idl.uint8, "int16": idl.int16,
    "uint16": idl.uint16, "int32": idl.int32, "uint32": idl.uint32, "int64": idl.int64, "uint64": idl.uint64,
    "float32": idl.float32, "float64": idl.float64, "string": str,
}


def _idl_field(spec: FieldSpec) -> Any:
    element = idl_struct(spec.element) if spec.is_message else _PRIMITIVE_IDL[spec.element]  # type: ignore[index]
    if spec.is_sequence:
        return idl.sequence[element]
    if spec.length is not None:
        return idl.array[element, spec.length]
    return element


_IDL_STRUCTS: dict[type, type[IdlStruct]] = {}
_TOPIC_TYPES: dict[type, type[IdlStruct]] = {}


def idl_struct(msg_type: type) -> type[IdlStruct]:
    """The Cyclone IDL struct of a message: same name, fields and layout as the type rosidl generates."""
    if msg_type not in _IDL_STRUCTS:
        fields = {spec.name: _idl_field(spec) for spec in msg_type.FIELDS}
        _IDL_STRUCTS[msg_type] = make_idl_struct(msg_type.DDS_TYPE.split("::")[-1], msg_type.DDS_TYPE, fields)
    return _IDL_STRUCTS[msg_type]


class _RawSample:
    """What a reader of a topic type returns: the sample's CDR bytes (with header) and Cyclone's sample info."""

    __slots__ = ("data", "sample_info")

    def __init__(self, data: bytes) -> None:
        self.data = data


def _send_raw(sample: Any, buffer: Any = None, endianness: Any = None, use_version_2: Any = None) -> bytes:
    return sample._cdr


def _receive_raw(cls: type, data: bytes, has_header: bool = True, use_version_2: Any = None) -> _RawSample:
    return _RawSample(data)


def topic_type(msg_type: type) -> type[IdlStruct]:
    """The IDL struct a topic is created with: its type information is the real one (for type matching), but its
    samples carry our CDR bytes untouched in both directions."""
    if msg_type not in _TOPIC_TYPES:
        fields = {spec.name: _idl_field(spec) for spec in msg_type.FIELDS}
        cls = make_idl_struct(msg_type.DDS_TYPE.split("::")[-1], msg_type.DDS_TYPE, fields)
        # Cyclone's type builder walks base classes, so the raw hooks are attached, not inherited.
        cls.serialize = _send_raw  # type: ignore[method-assign]
        cls.deserialize = classmethod(_receive_raw)  # type: ignore[method-assign, assignment]
        _TOPIC_TYPES[msg_type] = cls
    return _TOPIC_TYPES[msg_type]


def raw_sample(msg_type: type, data: bytes) -> Any:
    """A sample of topic_type(msg_type) that writes `data` as it is."""
    cls = topic_type(msg_type)
    sample = cls.__new__(cls)
    sample._cdr = data
    return sample
