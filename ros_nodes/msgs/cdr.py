"""ROS 2 CDR (XCDR1, plain CDR of final types): message dataclass <-> bytes with the 4-byte encapsulation header.

Alignment of an n-byte primitive is n (max 8), counted from the end of the header. As in rosbags' and ROS 2's
serializers, a sequence with no elements adds no padding for its (absent) elements, and the message carries no
trailing padding. Other writers may end a sample with up to 7 bytes of alignment, which the reader accepts: Fast DDS
(rclpy's default RMW) pads the sample to a multiple of 4 and, after an empty float64 sequence at the end (a JointState
without efforts), aligns to 8 for the absent elements.
"""
from __future__ import annotations

import struct
from functools import lru_cache
from typing import Any, Callable

import numpy as np

from ros_nodes.msgs.schema import PRIMITIVES, FieldSpec, message_class
from sim.errors import InhandError

CDR_LE = b"\x00\x01\x00\x00"
CDR_BE = b"\x00\x00\x00\x00"
HEADER_SIZE = 4
_COUNT_LE = struct.Struct("<I")
_COUNT_BE = struct.Struct(">I")


class CdrError(InhandError, ValueError):
    """A message that cannot be serialized, or bytes that are not a valid CDR encoding of the named type."""


class _Failure(Exception):
    """Internal: why a field failed, and the field path collected while unwinding."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path: list[str] = []

    def at(self, part: str) -> _Failure:
        self.path.insert(0, part)
        return self

    def describe(self) -> str:
        return f"field {''.join(self.path).lstrip('.')!r}: {self.reason}"


class _Reader:
    """Cursor over CDR bytes; `little` selects the byte order from the encapsulation header."""

    __slots__ = ("data", "pos", "end", "little", "count_struct")

    def __init__(self, data: memoryview, little: bool) -> None:
        self.data = data
        self.pos = HEADER_SIZE
        self.end = len(data)
        self.little = little
        self.count_struct = _COUNT_LE if little else _COUNT_BE

    def align(self, size: int) -> None:
        self.pos += (-(self.pos - HEADER_SIZE)) % size

    def take(self, size: int, what: str) -> int:
        """Advance by `size` bytes and return where they start; raise if the message ends first."""
        start = self.pos
        if start + size > self.end:
            raise _Failure(
                f"truncated: its {what} needs {size} bytes at offset {start - HEADER_SIZE} "
                f"but the message ends {max(0, self.end - start)} bytes later"
            )
        self.pos = start + size
        return start

    def count(self) -> int:
        self.align(4)
        start = self.take(4, "length")
        return self.count_struct.unpack_from(self.data, start)[0]

    def string(self) -> str:
        length = self.count()
        if length == 0:
            raise _Failure(f"string length 0 at offset {self.pos - 4 - HEADER_SIZE} (must count its NUL)")
        start = self.take(length, "string bytes")
        raw = self.data[start : start + length]
        if raw[-1] != 0:
            raise _Failure(f"string at offset {start - HEADER_SIZE} is not NUL-terminated")
        try:
            return bytes(raw[:-1]).decode("utf-8")
        except UnicodeDecodeError as error:
            raise _Failure(f"string at offset {start - HEADER_SIZE} is not UTF-8 ({error})") from None


Writer = Callable[[bytearray, Any], None]
ReaderFn = Callable[[_Reader], Any]


def _pad(buffer: bytearray, size: int) -> None:
    padding = (-(len(buffer) - HEADER_SIZE)) % size
    if padding:
        buffer += b"\x00" * padding


def _write_string(buffer: bytearray, value: str) -> None:
    if not isinstance(value, str):
        raise _Failure(f"expected str, got {type(value).__name__}")
    encoded = value.encode("utf-8")
    _pad(buffer, 4)
    buffer += _COUNT_LE.pack(len(encoded) + 1)
    buffer += encoded
    buffer += b"\x00"


def _primitive_array(value: Any, spec: FieldSpec) -> np.ndarray:
    dtype = np.dtype(PRIMITIVES[spec.element][2]).newbyteorder("<")  # type: ignore[index]
    if dtype.itemsize == 1 and isinstance(value, (bytes, bytearray, memoryview)):
        array = np.frombuffer(value, dtype=dtype)
    else:
        array = np.asarray(value)
        if array.ndim != 1 and not (dtype.itemsize == 1 and spec.element != "bool"):
            raise _Failure(f"expected a 1-D array, got shape {array.shape}")
        array = array.reshape(-1)
        if array.dtype.kind in "iu" and dtype.kind in "iu":
            limits = np.iinfo(dtype)
            if array.size and (array.min() < limits.min or array.max() > limits.max):
                raise _Failure(f"values outside the {spec.element} range [{limits.min}, {limits.max}]")
        elif not np.can_cast(array.dtype, dtype, "same_kind"):
            raise _Failure(f"cannot store {array.dtype} values in a {spec.element} array without loss")
        array = array.astype(dtype, copy=False)
    if spec.length is not None and array.size != spec.length:
        raise _Failure(f"expected exactly {spec.length} elements, got {array.size}")
    return array


def _field_writer(spec: FieldSpec) -> Writer:
    """A function that appends one field's value to the buffer."""
    if spec.is_message:
        element_writer = _message_writer(spec.element)  # type: ignore[arg-type]
    elif spec.element == "string":
        element_writer = _write_string
    else:
        fmt, size, _ = PRIMITIVES[spec.element]  # type: ignore[index]
        packer = struct.Struct("<" + fmt)

        def element_writer(buffer: bytearray, value: Any) -> None:
            _pad(buffer, size)
            buffer += packer.pack(value)

    if not spec.is_array:
        return element_writer

    if not spec.is_message and spec.element != "string":
        size = PRIMITIVES[spec.element][1]  # type: ignore[index]

        def write_primitive_array(buffer: bytearray, value: Any) -> None:
            array = _primitive_array(value, spec)
            if spec.is_sequence:
                _pad(buffer, 4)
                buffer += _COUNT_LE.pack(array.size)
            if array.size:
                _pad(buffer, size)
                buffer += array.tobytes()

        return write_primitive_array

    def write_array(buffer: bytearray, values: Any) -> None:
        if spec.length is not None and len(values) != spec.length:
            raise _Failure(f"expected exactly {spec.length} elements, got {len(values)}")
        if spec.is_sequence:
            _pad(buffer, 4)
            buffer += _COUNT_LE.pack(len(values))
        for index, value in enumerate(values):
            try:
                element_writer(buffer, value)
            except _Failure as failure:
                raise failure.at(f"[{index}]") from None

    return write_array


@lru_cache(maxsize=None)
def _message_writer(cls: type) -> Writer:
    """A function that appends every field of a `cls` message, in order."""
    writers = [(spec.name, _field_writer(spec)) for spec in cls.FIELDS]  # type: ignore[attr-defined]

    def write_message(buffer: bytearray, message: Any) -> None:
        if type(message) is not cls:
            raise _Failure(f"expected {cls.ROS_TYPE}, got {type(message).__name__}")  # type: ignore[attr-defined]
        for name, writer in writers:
            try:
                writer(buffer, getattr(message, name))
            except _Failure as failure:
                raise failure.at(f".{name}") from None
            except (struct.error, TypeError, ValueError, OverflowError) as error:
                raise _Failure(str(error)).at(f".{name}") from None

    return write_message


def serialize(message: Any) -> bytes:
    """Message dataclass -> CDR bytes (little-endian, with the 00 01 00 00 header)."""
    cls = type(message)
    if not hasattr(cls, "FIELDS"):
        raise CdrError(f"cannot serialize {cls.__name__}: not a ros_nodes.msgs message")
    buffer = bytearray(CDR_LE)
    try:
        _message_writer(cls)(buffer, message)
    except _Failure as failure:
        raise CdrError(f"{cls.ROS_TYPE}: cannot serialize {failure.describe()}") from None
    return bytes(buffer)


def _field_reader(spec: FieldSpec) -> ReaderFn:
    """A function that reads one field's value at the reader's cursor."""
    if spec.is_message:
        element_reader = _message_reader(spec.element)  # type: ignore[arg-type]
    elif spec.element == "string":

        def element_reader(reader: _Reader) -> Any:
            return reader.string()

    else:
        fmt, size, dtype_name = PRIMITIVES[spec.element]  # type: ignore[index]
        unpack_le = struct.Struct("<" + fmt).unpack_from
        unpack_be = struct.Struct(">" + fmt).unpack_from

        def element_reader(reader: _Reader) -> Any:
            reader.align(size)
            start = reader.take(size, "value")
            return (unpack_le if reader.little else unpack_be)(reader.data, start)[0]

    if not spec.is_array:
        return element_reader

    if not spec.is_message and spec.element != "string":
        dtype_le = np.dtype(dtype_name).newbyteorder("<")
        dtype_be = np.dtype(dtype_name).newbyteorder(">")
        native = np.dtype(dtype_name)

        def read_primitive_array(reader: _Reader) -> np.ndarray:
            count = reader.count() if spec.is_sequence else spec.length
            if count * size > reader.end - reader.pos:
                raise _Failure(
                    f"truncated or corrupt: {count} elements of {size} bytes at offset "
                    f"{reader.pos - HEADER_SIZE}, but only {reader.end - reader.pos} bytes remain"
                )
            if not count:
                return np.zeros(0, dtype=native)
            reader.align(size)
            start = reader.take(count * size, "elements")
            array = np.frombuffer(reader.data, dtype_le if reader.little else dtype_be, count, start)
            return array.astype(native)

        return read_primitive_array

    def read_array(reader: _Reader) -> list[Any]:
        count = reader.count() if spec.is_sequence else spec.length
        if count > reader.end - reader.pos:
            raise _Failure(
                f"truncated or corrupt: {count} elements at offset {reader.pos - HEADER_SIZE}, "
                f"but only {reader.end - reader.pos} bytes remain"
            )
        values = []
        for index in range(count):  # type: ignore[arg-type]
            try:
                values.append(element_reader(reader))
            except _Failure as failure:
                raise failure.at(f"[{index}]") from None
        return values

    return read_array


@lru_cache(maxsize=None)
def _message_reader(cls: type) -> ReaderFn:
    """A function that reads a whole `cls` message at the reader's cursor."""
    readers = [(spec.name, _field_reader(spec)) for spec in cls.FIELDS]  # type: ignore[attr-defined]

    def read_message(reader: _Reader) -> Any:
        values = {}
        for name, field_reader in readers:
            try:
                values[name] = field_reader(reader)
            except _Failure as failure:
                raise failure.at(f".{name}") from None
        return cls(**values)

    return read_message


def deserialize(data: bytes | bytearray | memoryview, message_type: type | str) -> Any:
    """CDR bytes (with header, either byte order, up to 7 bytes of trailing alignment) -> message dataclass."""
    cls = message_class(message_type) if isinstance(message_type, str) else message_type
    view = memoryview(data).cast("B")
    if len(view) < HEADER_SIZE:
        raise CdrError(f"{cls.ROS_TYPE}: {len(view)} bytes are too few for the 4-byte CDR encapsulation header")
    header = bytes(view[:HEADER_SIZE])
    if header[:2] not in (CDR_LE[:2], CDR_BE[:2]):
        raise CdrError(
            f"{cls.ROS_TYPE}: bad CDR encapsulation header {header.hex(' ')} "
            f"({len(view)} bytes); expected 00 01 (little-endian) or 00 00 (big-endian)"
        )
    reader = _Reader(view, little=header[1] == 1)
    try:
        message = _message_reader(cls)(reader)
    except _Failure as failure:
        raise CdrError(f"{cls.ROS_TYPE}: cannot deserialize {failure.describe()} ({len(view)} bytes in all)") from None
    trailing = reader.end - reader.pos
    if trailing > 7:
        raise CdrError(
            f"{cls.ROS_TYPE}: {trailing} unexpected bytes after the message "
            f"(a message ends at offset {reader.pos - HEADER_SIZE}; alignment padding is at most 7 bytes)"
        )
    return message
