"""Field specs of ROS 2 messages and the @ros_message decorator that turns a class into a message dataclass."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import numpy as np

# ROS 2 primitive -> (struct format, size in bytes, numpy dtype); `byte` and `char` are octets on the wire.
PRIMITIVES: dict[str, tuple[str, int, str]] = {
    "bool": ("?", 1, "bool"),
    "byte": ("B", 1, "uint8"),
    "char": ("B", 1, "uint8"),
    "int8": ("b", 1, "int8"),
    "uint8": ("B", 1, "uint8"),
    "int16": ("h", 2, "int16"),
    "uint16": ("H", 2, "uint16"),
    "int32": ("i", 4, "int32"),
    "uint32": ("I", 4, "uint32"),
    "int64": ("q", 8, "int64"),
    "uint64": ("Q", 8, "uint64"),
    "float32": ("f", 4, "float32"),
    "float64": ("d", 8, "float64"),
}


@dataclass(frozen=True)
class FieldSpec:
    """One message field: element type (primitive name, "string" or a message class) and array shape."""

    name: str
    element: str | type
    length: int | None = None  # fixed array length, T[N]
    is_sequence: bool = False  # unbounded sequence, T[]

    @property
    def is_array(self) -> bool:
        """True for T[] and T[N]."""
        return self.is_sequence or self.length is not None

    @property
    def is_message(self) -> bool:
        """True when the element is a nested message."""
        return isinstance(self.element, type)

    def ros_element_name(self) -> str:
        """The element type as rosbags writes it: "float64", "string", "std_msgs/msg/Header"."""
        return self.element.ROS_TYPE if isinstance(self.element, type) else self.element  # type: ignore[union-attr]


def parse_spec(name: str, spec: str | type, shape: str = "") -> FieldSpec:
    """Parse "float64", "float64[]", "float64[9]", "string[]" or (MessageClass, "[]") into a FieldSpec."""
    if isinstance(spec, str):
        base, _, rest = spec.partition("[")
        shape = f"[{rest}" if rest else ""
        if base not in PRIMITIVES and base != "string":
            raise ValueError(f"field {name!r}: unknown ROS type {base!r}; accepted: {sorted(PRIMITIVES)} + string")
        element: str | type = base
    else:
        if not hasattr(spec, "ROS_TYPE"):
            raise ValueError(f"field {name!r}: {spec!r} is not a @ros_message class")
        element = spec
    if shape == "":
        return FieldSpec(name, element)
    if shape == "[]":
        return FieldSpec(name, element, is_sequence=True)
    if shape.startswith("[") and shape.endswith("]") and shape[1:-1].isdigit():
        return FieldSpec(name, element, length=int(shape[1:-1]))
    raise ValueError(f"field {name!r}: bad array shape {shape!r}; accepted: '', '[]', '[N]'")


def default_factory(spec: FieldSpec, scalar_default: Any = None) -> Callable[[], Any]:
    """A zero value for the field: 0, "", nested default, empty/zero numpy array or empty list."""
    element = spec.element
    if spec.is_array:
        if spec.is_message or element == "string":
            count = spec.length or 0
            if spec.is_message:
                return lambda: [element() for _ in range(count)]  # type: ignore[operator]
            return lambda: ["" for _ in range(count)]
        dtype = PRIMITIVES[element][2]  # type: ignore[index]
        return lambda: np.zeros(spec.length or 0, dtype=dtype)
    if spec.is_message:
        return element  # type: ignore[return-value]
    if scalar_default is not None:
        return lambda: scalar_default
    if element == "string":
        return str
    if element == "bool":
        return bool
    if element.startswith("float"):  # type: ignore[union-attr]
        return float
    return int


def ros_field(spec: str | type, shape: str = "", default: Any = None) -> Any:
    """A dataclass field holding a ROS field; `spec` is a primitive spec ("float64[9]") or a message class."""
    return dataclasses.field(metadata={"ros": (spec, shape, default)})


def _field_equal(left: Any, right: Any) -> bool:
    if isinstance(left, np.ndarray) or isinstance(right, np.ndarray):
        return np.array_equal(np.asarray(left), np.asarray(right))
    return left == right


def _message_eq(self: Any, other: Any) -> bool:
    if type(other) is not type(self):
        return NotImplemented
    return all(_field_equal(getattr(self, f.name), getattr(other, f.name)) for f in self.FIELDS)


def dds_type_name(ros_type: str) -> str:
    """sensor_msgs/msg/JointState -> sensor_msgs::msg::dds_::JointState_ (rmw's DDS type name)."""
    package, kind, name = ros_type.split("/")
    return f"{package}::{kind}::dds_::{name}_"


REGISTRY: dict[str, type] = {}

MessageT = TypeVar("MessageT")


def ros_message(ros_type: str, register: bool = True) -> Callable[[type[MessageT]], type[MessageT]]:
    """Class decorator: fields declared with ros_field() -> a dataclass with ROS_TYPE, DDS_TYPE and FIELDS; registered
    (recordable, replayable) unless register=False, as for the ROS graph's internal messages."""
    parts = ros_type.split("/")
    if len(parts) != 3 or parts[1] != "msg":
        raise ValueError(f"ROS type {ros_type!r} must look like 'package/msg/Name'")

    def wrap(cls: type[MessageT]) -> type[MessageT]:
        specs: list[FieldSpec] = []
        for name in cls.__annotations__:
            declared = cls.__dict__.get(name)
            if not isinstance(declared, dataclasses.Field) or "ros" not in declared.metadata:
                raise ValueError(f"{ros_type}.{name} must be declared with ros_field()")
            spec_arg, shape, scalar_default = declared.metadata["ros"]
            spec = parse_spec(name, spec_arg, shape)
            declared.default_factory = default_factory(spec, scalar_default)  # type: ignore[assignment]
            specs.append(spec)
        cls.ROS_TYPE = ros_type  # type: ignore[attr-defined]
        cls.DDS_TYPE = dds_type_name(ros_type)  # type: ignore[attr-defined]
        cls.FIELDS = tuple(specs)  # type: ignore[attr-defined]
        data_cls = dataclass(eq=False)(cls)
        data_cls.__eq__ = _message_eq  # type: ignore[method-assign]
        if register:
            REGISTRY[ros_type] = data_cls
        return data_cls

    return wrap


def message_class(ros_type: str) -> type:
    """The registered message class for a ROS type name ("sensor_msgs/msg/JointState" or "sensor_msgs/JointState")."""
    parts = ros_type.split("/")
    if len(parts) == 2:
        ros_type = f"{parts[0]}/msg/{parts[1]}"
    try:
        return REGISTRY[ros_type]
    except KeyError:
        raise KeyError(f"unknown ROS message type {ros_type!r}; known: {sorted(REGISTRY)}") from None
