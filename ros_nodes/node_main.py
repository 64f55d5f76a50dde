"""What every node's main(argv) shares: ROS 2 command-line arguments, parameters into config dataclasses, spinning
until Ctrl-C / SIGTERM, and a clean shutdown.

Accepted, as `ros2 run` passes them: `--ros-args [-r from:=to] [-r __node:=name] [-r __ns:=/ns] [-p name:=value]
[--params-file FILE] [--]`; values are YAML (`-p rate:=2.5`, `-p enabled:=true`, `-p names:="[a, b]"`). A params
file is ROS 2's format: `<node name | /ns/node | /**>: {ros__parameters: {...}}`, nested keys joined with dots.
"""
from __future__ import annotations

import dataclasses
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from ros_nodes.transport import Node, create_node
from ros_nodes.transport.names import normalize_namespace, parse_remapping
from sim.config_loading import ConfigError, flatten_mapping, from_mapping, load_config, read_yaml, to_mapping
from sim.errors import InhandError, UsageError
from sim.paths import data_path

T = TypeVar("T")
PARENT_PID_ENV = "INHAND_LAUNCH_PID"  # set by `inhand launch` for its children


@dataclass
class RosArgs:
    """The ROS part of a node's command line."""

    node_name: str | None = None
    namespace: str | None = None
    remappings: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    params_files: list[str] = field(default_factory=list)


def _yaml_value(text: str) -> Any:
    try:
        return yaml.safe_load(text) if text != "" else ""
    except yaml.YAMLError:
        return text


def parse_ros_args(argv: list[str]) -> tuple[RosArgs, list[str]]:
    """Split argv into the --ros-args section (parsed) and the node's own arguments."""
    ros, rest = RosArgs(), []
    index = 0
    while index < len(argv):
        if argv[index] != "--ros-args":
            rest.append(argv[index])
            index += 1
            continue
        index += 1
        while index < len(argv) and argv[index] not in ("--", "--ros-args"):
            flag = argv[index]
            if flag not in ("-r", "--remap", "-p", "--param", "--params-file"):
                raise UsageError(
                    f"unsupported ROS argument {flag!r}; supported: -r/--remap from:=to, -p/--param name:=value, "
                    "--params-file FILE"
                )
            if index + 1 >= len(argv):
                raise UsageError(f"ROS argument {flag} needs a value")
            value = argv[index + 1]
            index += 2
            if flag == "--params-file":
                ros.params_files.append(value)
                continue
            name, separator, text = value.partition(":=")
            if not separator or not name:
                raise UsageError(f"ROS argument {flag} {value!r}: expected name:=value")
            if flag in ("-p", "--param"):
                ros.parameters[name] = _yaml_value(text)
            elif name == "__node":
                ros.node_name = text
            elif name == "__ns":
                ros.namespace = text
            else:
                source, target = parse_remapping(value)
                ros.remappings[source] = target
        if index < len(argv) and argv[index] == "--":
            index += 1
    return ros, rest


def params_file_values(path: str | Path, node_name: str, namespace: str) -> dict[str, Any]:
    """The parameters a ROS 2 params file gives node `node_name` in `namespace` (wildcard first, then by name)."""
    path = Path(path)
    content = read_yaml(path, "params file", mapping=True)
    if not isinstance(content, dict):
        raise ConfigError(f"{path}: a params file maps node names to {{ros__parameters: ...}}")
    namespace = normalize_namespace(namespace)
    qualified = ("" if namespace == "/" else namespace) + "/" + node_name
    values: dict[str, Any] = {}
    for key in ("/**", node_name, qualified, qualified.lstrip("/")):
        section = content.get(key)
        if section is None:
            continue
        if not isinstance(section, dict) or "ros__parameters" not in section:
            raise ConfigError(f"{path}: section {key!r} must hold a 'ros__parameters' mapping")
        values.update(flatten_mapping(section["ros__parameters"] or {}))
    return values


def _parameter_default(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def config_from_parameters(node: Node, cls: type[T], default_file: str) -> T:
    """Config `cls` from the YAML file in parameter config_file (default `default_file`), each field overridable by
    a node parameter of the same name."""
    values = {}
    try:
        source = str(node.declare_parameter("config_file", str(data_path(default_file))))
        from_file = load_config(cls, source)
        for item in dataclasses.fields(cls):  # type: ignore[arg-type]
            current = to_mapping(getattr(from_file, item.name))
            values[item.name] = node.declare_parameter(item.name, _parameter_default(current))
    except TypeError as error:  # a parameter given with another type than its default's
        raise ConfigError(str(error)) from None
    return from_mapping(cls, values, source=f"{source} + parameters of node {node.fully_qualified_name}")


class _Terminated(BaseException):
    """A second stop signal while the first is still being honoured: a callback is stuck, so stop it."""


def _die_with_launcher() -> bool:
    """Under `inhand launch`, ask Linux to SIGTERM this node when the launcher dies; False if it is gone already."""
    parent = os.environ.get(PARENT_PID_ENV)
    if not parent:
        return True
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    return os.getppid() == int(parent)


def run_node(default_name: str, build: Callable[[Node], Any], argv: list[str] | None = None) -> int:
    """Create the transport node from argv's --ros-args, build the node object, spin until SIGINT/SIGTERM or until it
    shuts the node down itself; return the exit code.

    Bad arguments, configuration or checkpoints (InhandError) print one line and return 2; any other exception is
    a bug and propagates, so its traceback is printed and the process exits non-zero."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(arg in ("-h", "--help") for arg in argv):
        print(f"usage: python -m ros_nodes.{default_name} --ros-args [-r from:=to] [-r __node:=NAME] [-r __ns:=/NS] "
              "[-p name:=value] [--params-file FILE]")
        return 0
    try:
        ros, rest = parse_ros_args(argv)
        if rest:
            raise UsageError(f"unexpected arguments {rest}; parameters go after --ros-args as -p name:=value")
    except InhandError as error:
        print(f"{default_name}: {error}", file=sys.stderr)
        return 2
    if not _die_with_launcher():
        return 0
    name = ros.node_name or default_name
    namespace = ros.namespace or "/"
    parameters: dict[str, Any] = {}
    node: Node | None = None
    instance = None
    stop_requested: list[int] = []

    # The first signal is only remembered and the spin loop ends between callbacks: raising inside a callback could
    # cut a bag write or a DDS call in half and leave a bag that cannot be closed. A second signal raises, for a
    # callback that never returns. A signal while the node is being built is remembered too, so a half-built node
    # (an open bag) is still closed.
    def on_signal(signum: int, frame: object) -> None:
        stop_requested.append(signum)
        if len(stop_requested) > 1 and instance is not None:
            raise _Terminated()

    previous = {signum: signal.signal(signum, on_signal) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            for path in ros.params_files:
                parameters.update(params_file_values(path, name, namespace))
            parameters.update(ros.parameters)
            node = create_node(name, namespace, parameters=parameters, remappings=ros.remappings)
            instance = build(node)
        except InhandError as error:
            print(f"{name}: {error}", file=sys.stderr)
            return 2
        while not node.is_shutdown and not stop_requested:
            node.spin_once(0.1)
        if stop_requested:
            return 0
        return int(getattr(instance, "exit_code", 0))
    except _Terminated:
        return 0
    finally:
        # a second Ctrl-C while closing must not cut the close short (a bag's summary, a renderer)
        for signum in previous:
            signal.signal(signum, signal.SIG_IGN)
        try:
            if instance is not None and hasattr(instance, "close"):
                instance.close()
            if node is not None:
                node.shutdown()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
