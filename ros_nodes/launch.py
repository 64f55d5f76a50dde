"""`inhand launch FILE [name:=value ...]`: run a ROS 2 YAML launch file where ROS 2 is absent.

The file is read with the subset of the YAML frontend the project's launch files use, the same file that
`ros2 launch inhand NAME.launch.yaml` runs on a ROS host:

    launch:
    - arg: {name: N, default: D}                          # default optional; then N:=V is required
    - node: {pkg: inhand, exec: E, name: N, namespace: NS, output: screen|log|both, on_exit: shutdown,
             param: [{name: P, value: V} | {from: PARAMS_FILE}], remap: [{from: A, to: B}],
             env: [{name: VAR, value: V}]}
    - group: [push-ros-namespace: {namespace: NS}, node, group, include, arg, ...]
    - include: {file: F, arg: [{name: N, value: V}]}
    - push-ros-namespace: {namespace: NS}

Substitutions: $(var NAME), $(find-pkg-share inhand), $(env NAME [default]). Anything else is an error naming the
file, the tag and what is supported. Each node runs as its own process, `python -m ros_nodes.<module> --ros-args
-r __node:=NAME -r __ns:=NS -r FROM:=TO -p NAME:=VALUE` (params files are resolved here, in order, into -p values),
on the transport of --transport (rclpy where it imports, else dds; a node's `env` may set INHAND_TRANSPORT for it
alone). Ctrl-C (or SIGTERM) sends SIGINT to every node, then SIGTERM and SIGKILL to those still running after
sigint_timeout_s / sigterm_timeout_s. As in ros2 launch, a node that exits by itself ends the launch only if the file
says `on_exit: shutdown` for it; otherwise its exit is reported and the others keep running. The launch exits
non-zero when any node failed: exited with a non-zero code, before or during shutdown, or had to be killed.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

from ros_nodes.node_main import PARENT_PID_ENV, params_file_values
from ros_nodes.transport import rclpy_available
from ros_nodes.transport.names import normalize_namespace
from ros_nodes.transport.ros_env import ros_environment
from sim import paths
from sim.config_loading import ConfigError, read_yaml
from sim.errors import InhandError
from sim.output_paths import check_output_dir

PACKAGE = "inhand"
# exec name (console script of setup.py) -> module with main(argv)
EXECUTABLES: dict[str, str] = {
    "hand_driver": "ros_nodes.hand_driver",
    "goal_manager": "ros_nodes.goal_manager",
    "recorder": "ros_nodes.recorder",
    "policy": "ros_nodes.policy",
    "pose_estimator": "ros_nodes.pose_estimator",
}
TAGS = ("arg", "node", "group", "include", "push-ros-namespace")
NODE_KEYS = ("pkg", "exec", "name", "namespace", "param", "remap", "output", "on_exit", "env")
OUTPUTS = ("screen", "log", "both")
ON_EXIT = ("shutdown",)
TRANSPORTS = ("rclpy", "dds")
TAIL_LINES = 10  # lines of a failed node's log shown on the console
_SUBSTITUTION = re.compile(r"\$\(([^()]*)\)")


class LaunchError(InhandError, ValueError):
    """A launch file outside the supported subset, or one that cannot run as written."""


def share_directory() -> Path:
    """$(find-pkg-share inhand): the source tree when running from it, else <prefix>/share/inhand."""
    return paths.share_directory()


@dataclass
class NodeAction:
    """One node to start: what the file said, resolved."""

    exec: str
    module: str
    name: str
    namespace: str
    parameters: dict[str, Any]
    remappings: list[tuple[str, str]]
    output: str
    source: str
    on_exit: str | None = None
    environment: dict[str, str] = field(default_factory=dict)

    def command(self) -> list[str]:
        """The node's command line."""
        args = [sys.executable, "-m", self.module, "--ros-args", "-r", f"__node:={self.name}", "-r", f"__ns:={self.namespace}"]
        for source, target in self.remappings:
            args += ["-r", f"{source}:={target}"]
        for name, value in self.parameters.items():
            args += ["-p", f"{name}:={parameter_text(value)}"]
        return args


def parameter_text(value: Any) -> str:
    """A value as `-p name:=TEXT` carries it: YAML that reads back as the same value and type."""
    if isinstance(value, str):
        try:
            plain = yaml.safe_load(value) == value
        except yaml.YAMLError:
            plain = False
        return value if plain and value.strip() == value and value else json.dumps(value)
    return json.dumps(value)


@dataclass
class _Scope:
    variables: dict[str, str]
    namespace: str = "/"


@dataclass
class LaunchPlan:
    """Every node of a launch file tree, in start order, and every argument the tree declares."""

    nodes: list[NodeAction] = field(default_factory=list)
    declared: set[str] = field(default_factory=set)


def substitute(text: Any, scope: _Scope, where: str) -> Any:
    """Resolve $(...) substitutions in strings; other values pass through."""
    if not isinstance(text, str):
        return text

    def replace(match: re.Match[str]) -> str:
        parts = match.group(1).split()
        kind, arguments = (parts[0], parts[1:]) if parts else ("", [])
        if kind == "var" and len(arguments) == 1:
            if arguments[0] not in scope.variables:
                raise LaunchError(f"{where}: $(var {arguments[0]}) is not set; declared here: {sorted(scope.variables)}")
            return scope.variables[arguments[0]]
        if kind == "find-pkg-share" and arguments == [PACKAGE]:
            return str(share_directory())
        if kind == "env" and len(arguments) in (1, 2):
            value = os.environ.get(arguments[0], arguments[1] if len(arguments) == 2 else None)
            if value is None:
                raise LaunchError(f"{where}: $(env {arguments[0]}) is not set and has no default")
            return value
        raise LaunchError(
            f"{where}: substitution $({match.group(1)}) is not supported; supported: $(var NAME), "
            f"$(find-pkg-share {PACKAGE}), $(env NAME [default])"
        )

    return _SUBSTITUTION.sub(replace, text)


def _typed(value: Any, scope: _Scope, where: str) -> Any:
    """Substitute, then read a substituted string as YAML (ROS 2's type inference: "2" -> 2, "true" -> True)."""
    if isinstance(value, list):
        return [_typed(item, scope, where) for item in value]
    if isinstance(value, str) and _SUBSTITUTION.search(value):
        text = substitute(value, scope, where)
        try:
            parsed = yaml.safe_load(text)
        except yaml.YAMLError:
            return text
        return parsed if isinstance(parsed, (bool, int, float, str, list)) else text
    return value


def _mapping(value: Any, where: str, tag: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise LaunchError(f"{where}: '{tag}' takes a mapping of attributes, got {value!r}")
    return value


def _check_keys(attributes: dict[str, Any], allowed: tuple[str, ...], where: str, tag: str) -> None:
    unknown = sorted(set(attributes) - set(allowed))
    if unknown:
        raise LaunchError(f"{where}: '{tag}' attribute {unknown[0]!r} is not supported; supported: {', '.join(allowed)}")


def _list(value: Any, where: str, tag: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise LaunchError(f"{where}: '{tag}' takes a list, got {value!r}")
    return value


class _Loader:
    def __init__(self, overrides: dict[str, str]) -> None:
        self.overrides = overrides
        self.plan = LaunchPlan()
        self.files: list[Path] = []

    def load_file(self, path: Path, scope: _Scope) -> None:
        path = path.resolve()
        if path in self.files:
            raise LaunchError(f"{path}: included from itself (include cycle {' -> '.join(map(str, self.files))})")
        try:
            content = read_yaml(path, "launch file", mapping=True)
        except ConfigError as error:
            raise LaunchError(str(error)) from None
        if not isinstance(content, dict) or set(content) != {"launch"}:
            raise LaunchError(f"{path}: a YAML launch file is one mapping with the single key 'launch' (a list)")
        self.files.append(path)
        self.entities(_list(content["launch"], str(path), "launch"), scope, str(path))
        self.files.pop()

    def entities(self, items: list[Any], scope: _Scope, source: str) -> None:
        for position, item in enumerate(items):
            if not isinstance(item, dict) or len(item) != 1:
                raise LaunchError(f"{source}: launch entry {position + 1} must be a single-key mapping like '- node: ...'")
            ((tag, body),) = item.items()
            where = f"{source}, entry {position + 1} ({tag})"
            canonical = tag.replace("_", "-") if isinstance(tag, str) else tag
            handler: dict[str, Callable[[Any, _Scope, str, str], None]] = {
                "arg": self.arg, "node": self.node, "group": self.group, "include": self.include,
                "push-ros-namespace": self.push_namespace,
            }
            if canonical not in handler:
                raise LaunchError(
                    f"{source}: tag {tag!r} is not supported by inhand launch; supported: {', '.join(TAGS)} "
                    "(use ros2 launch for the full launch system)"
                )
            handler[canonical](body, scope, where, source)

    def arg(self, body: Any, scope: _Scope, where: str, source: str) -> None:
        attributes = _mapping(body, where, "arg")
        _check_keys(attributes, ("name", "default", "description"), where, "arg")
        if "name" not in attributes:
            raise LaunchError(f"{where}: 'arg' needs a name")
        name = str(attributes["name"])
        self.plan.declared.add(name)
        if name in scope.variables:
            return
        if "default" not in attributes:
            raise LaunchError(f"{where}: argument {name!r} has no default; pass {name}:=VALUE")
        scope.variables[name] = str(substitute(_yaml_text(attributes["default"]), scope, where))

    def push_namespace(self, body: Any, scope: _Scope, where: str, source: str) -> None:
        attributes = _mapping(body, where, "push-ros-namespace")
        _check_keys(attributes, ("namespace",), where, "push-ros-namespace")
        scope.namespace = _join_namespace(scope.namespace, str(substitute(attributes.get("namespace", ""), scope, where)))

    def group(self, body: Any, scope: _Scope, where: str, source: str) -> None:
        if isinstance(body, dict):
            _check_keys(body, ("children", "scoped"), where, "group")
            if body.get("scoped", True) is not True:
                raise LaunchError(f"{where}: 'group' with scoped: false is not supported; supported: scoped groups")
            body = body.get("children")
        inner = _Scope(dict(scope.variables), scope.namespace)
        self.entities(_list(body, where, "group"), inner, source)

    def include(self, body: Any, scope: _Scope, where: str, source: str) -> None:
        attributes = _mapping(body, where, "include")
        _check_keys(attributes, ("file", "arg"), where, "include")
        if "file" not in attributes:
            raise LaunchError(f"{where}: 'include' needs a file")
        inner = _Scope(dict(scope.variables), scope.namespace)
        for entry in _list(attributes.get("arg"), where, "include arg"):
            entry = _mapping(entry, where, "include arg")
            _check_keys(entry, ("name", "value"), where, "include arg")
            inner.variables[str(entry["name"])] = str(substitute(_yaml_text(entry.get("value", "")), scope, where))
        path = Path(substitute(attributes["file"], scope, where))
        if not path.is_absolute():
            path = Path(source).parent / path
        if path.suffix not in (".yaml", ".yml"):
            raise LaunchError(f"{where}: only YAML launch files can be included here, not {path.name}")
        self.load_file(path, inner)

    def node(self, body: Any, scope: _Scope, where: str, source: str) -> None:
        attributes = _mapping(body, where, "node")
        _check_keys(attributes, NODE_KEYS, where, "node")
        package = substitute(attributes.get("pkg"), scope, where)
        executable = substitute(attributes.get("exec"), scope, where)
        if package != PACKAGE:
            raise LaunchError(f"{where}: pkg {package!r} cannot run without ROS 2; inhand launch runs pkg '{PACKAGE}' only")
        if executable not in EXECUTABLES:
            raise LaunchError(f"{where}: exec {executable!r} is not an {PACKAGE} node; known: {', '.join(EXECUTABLES)}")
        if importlib.util.find_spec(EXECUTABLES[executable]) is None:
            raise LaunchError(f"{where}: exec {executable!r} needs module {EXECUTABLES[executable]}, which is not installed")
        name = str(substitute(attributes.get("name", executable), scope, where))
        namespace = _join_namespace(scope.namespace, str(substitute(attributes.get("namespace", ""), scope, where)))
        output = substitute(attributes.get("output", "log"), scope, where)
        if output not in OUTPUTS:
            raise LaunchError(f"{where}: output {output!r} is not supported; supported: {', '.join(OUTPUTS)}")
        parameters: dict[str, Any] = {}
        for entry in _list(attributes.get("param"), where, "param"):
            entry = _mapping(entry, where, "param")
            if "from" in entry:
                _check_keys(entry, ("from",), where, "param")
                path = Path(substitute(entry["from"], scope, where))
                try:
                    parameters.update(params_file_values(path, name, namespace))
                except ConfigError as error:
                    raise LaunchError(f"{where}: {error}") from None
                continue
            _check_keys(entry, ("name", "value"), where, "param")
            if "name" not in entry or "value" not in entry:
                raise LaunchError(f"{where}: each param needs name and value (or from: PARAMS_FILE)")
            parameters[str(entry["name"])] = _typed(entry["value"], scope, where)
        on_exit = substitute(attributes.get("on_exit"), scope, where)
        if on_exit is not None and on_exit not in ON_EXIT:
            raise LaunchError(f"{where}: on_exit {on_exit!r} is not supported; supported: {', '.join(ON_EXIT)}")
        environment = {}
        for entry in _list(attributes.get("env"), where, "env"):
            entry = _mapping(entry, where, "env")
            _check_keys(entry, ("name", "value"), where, "env")
            if "name" not in entry or "value" not in entry:
                raise LaunchError(f"{where}: each env entry needs name and value")
            environment[str(substitute(entry["name"], scope, where))] = str(substitute(_yaml_text(entry["value"]), scope, where))
        remappings = []
        for entry in _list(attributes.get("remap"), where, "remap"):
            entry = _mapping(entry, where, "remap")
            _check_keys(entry, ("from", "to"), where, "remap")
            remappings.append((str(substitute(entry["from"], scope, where)), str(substitute(entry["to"], scope, where))))
        if any(existing.name == name and existing.namespace == namespace for existing in self.plan.nodes):
            raise LaunchError(f"{where}: a second node named {name!r} in namespace {namespace!r}")
        self.plan.nodes.append(
            NodeAction(executable, EXECUTABLES[executable], name, namespace, parameters, remappings, output, source,
                       on_exit, environment)
        )


def _yaml_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _join_namespace(base: str, namespace: str) -> str:
    if not namespace:
        return normalize_namespace(base)
    if namespace.startswith("/"):
        return normalize_namespace(namespace)
    return normalize_namespace(f"{base.rstrip('/')}/{namespace}")


def load_launch(path: str | Path, arguments: dict[str, str] | None = None) -> LaunchPlan:
    """Read a launch file tree into a LaunchPlan; `arguments` are the name:=value pairs of the command line."""
    arguments = dict(arguments or {})
    loader = _Loader(arguments)
    loader.load_file(Path(path), _Scope(dict(arguments)))
    undeclared = sorted(set(arguments) - loader.plan.declared)
    if undeclared:
        raise LaunchError(
            f"{path}: argument {undeclared[0]!r} is not declared by the launch file; declared: {sorted(loader.plan.declared)}"
        )
    return loader.plan


# ---------------------------------------------------------------------------------------------------------- running


@dataclass
class _Child:
    action: NodeAction
    process: subprocess.Popen[bytes]
    log: TextIO | None
    pump: threading.Thread | None = None
    # the last lines it printed: a node that fails at start-up says why there, and the console must show it
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))


def _pump(child: _Child, echo: bool, lock: threading.Lock) -> None:
    """Copy a child's output line by line to the log file and/or our stdout, prefixed with its name."""
    assert child.process.stdout is not None
    for raw in iter(child.process.stdout.readline, b""):
        line = raw.decode(errors="replace").rstrip("\n")
        child.tail.append(line)
        if child.log is not None:
            child.log.write(line + "\n")
            child.log.flush()
        if echo:
            with lock:
                sys.stdout.write(f"[{child.action.name}] {line}\n")
                sys.stdout.flush()


def default_transport() -> str:
    """rclpy where it imports (the `ros` extra or a ROS 2 installation), else dds."""
    return "rclpy" if rclpy_available() else "dds"


class LaunchRunner:
    """Starts a plan's nodes as processes and stops them together."""

    def __init__(
        self, plan: LaunchPlan, log_dir: Path, sigint_timeout_s: float = 5.0, sigterm_timeout_s: float = 5.0,
        transport: str | None = None, node_transports: dict[str, str] | None = None,
    ) -> None:
        transport = transport or default_transport()
        node_transports = dict(node_transports or {})
        names = [action.name for action in plan.nodes]
        for name, chosen in [("", transport), *node_transports.items()]:
            if chosen not in TRANSPORTS:
                raise LaunchError(f"transport {chosen!r} is not supported; supported: {', '.join(TRANSPORTS)}")
            if name and name not in names:
                raise LaunchError(f"--transport-of {name}={chosen}: no node {name!r} in the launch; nodes: {names}")
        self.node_transports = node_transports
        self.plan = plan
        self.log_dir = log_dir
        self.sigint_timeout_s = sigint_timeout_s
        self.sigterm_timeout_s = sigterm_timeout_s
        self.transport = transport
        self.children: list[_Child] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._stopped = False
        self._reported: set[int] = set()  # pids whose exit was reported
        self._trigger: _Child | None = None  # the on_exit: shutdown node that ended the launch

    def report(self, text: str) -> None:
        """One line from the launcher itself."""
        with self._lock:
            print(f"[launch] {text}", flush=True)

    def start(self) -> None:
        """Start every node."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        # children start with the ROS 2 wheels' library path, so rclpy loads without re-executing Python
        base = ros_environment(dict(os.environ, INHAND_TRANSPORT=self.transport, PYTHONUNBUFFERED="1"))
        base[PARENT_PID_ENV] = str(os.getpid())
        for action in self.plan.nodes:
            log = (self.log_dir / f"{action.name}.log").open("w") if action.output in ("log", "both") else None
            environment = base | action.environment
            if action.name in self.node_transports:
                environment["INHAND_TRANSPORT"] = self.node_transports[action.name]
            process = subprocess.Popen(
                action.command(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=environment, start_new_session=True,
            )
            child = _Child(action, process, log)
            child.pump = threading.Thread(target=_pump, args=(child, action.output != "log", self._lock), daemon=True)
            child.pump.start()
            self.children.append(child)
            transport = environment["INHAND_TRANSPORT"]
            self.report(f"started {action.namespace.rstrip('/')}/{action.name} (pid {process.pid}) on {transport}: "
                        f"{action.module}")

    def report_tail(self, child: _Child) -> None:
        """The last lines of a failed node whose output went only to its log file."""
        if child.pump is not None:
            child.pump.join(timeout=2.0)  # the process has exited: its pipe ends soon
        log = self.log_dir / f"{child.action.name}.log"
        self.report(f"last lines of {child.action.name} (all of it in {log}):")
        with self._lock:
            for line in child.tail or ["(no output)"]:
                print(f"[{child.action.name}] {line}", flush=True)

    def request_stop(self) -> None:
        """Ask run() to shut everything down (signal handlers call this)."""
        self._stop.set()

    def run(self) -> int:
        """Run until Ctrl-C, an on_exit: shutdown node's exit, or every node's exit; stop all; return the exit code."""
        while not self._stop.is_set():
            for child in self.children:
                code = child.process.poll()
                if code is None or child.process.pid in self._reported:
                    continue
                self._reported.add(child.process.pid)
                shutdown = child.action.on_exit == "shutdown"
                consequence = "stopping the others (on_exit: shutdown)" if shutdown else \
                    "the others keep running (no on_exit: shutdown)"
                self.report(f"process {child.action.name} (pid {child.process.pid}) exited with code {code}; "
                            f"{consequence}")
                if code != 0 and child.action.output == "log":
                    self.report_tail(child)
                if shutdown:
                    self._trigger = child
                    self._stop.set()
                    break
            if all(child.process.poll() is not None for child in self.children):
                break
            self._stop.wait(0.05)
        self.shutdown()
        return self.exit_code()

    def exit_code(self) -> int:
        """0 when every node ended cleanly; else the code of the node that ended the launch, or of the first that
        failed (1 for a node killed by a signal)."""
        failed = [c for c in self.children if c.process.returncode not in (0, None)]
        if self._trigger is not None and self._trigger.process.returncode:
            failed.insert(0, self._trigger)
        if not failed:
            return 0
        code = failed[0].process.returncode
        return code if code > 0 else 1

    def shutdown(self) -> None:
        """SIGINT to every running node; SIGTERM, then SIGKILL, to those that outlive the timeouts."""
        if self._stopped:
            return
        self._stopped = True
        for signum, timeout_s in ((signal.SIGINT, self.sigint_timeout_s), (signal.SIGTERM, self.sigterm_timeout_s),
                                  (signal.SIGKILL, 5.0)):
            running = [child for child in self.children if child.process.poll() is None]
            if not running:
                break
            if signum != signal.SIGINT:
                self.report(f"{', '.join(c.action.name for c in running)} still running: sending {signum.name}")
            for child in running:
                child.process.send_signal(signum)
            deadline = time.monotonic() + timeout_s
            for child in running:
                try:
                    child.process.wait(max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
        for child in self.children:
            if child.pump is not None:
                child.pump.join(timeout=2.0)
            if child.log is not None:
                child.log.close()
            code = child.process.returncode
            if code not in (0, None) and child.process.pid not in self._reported:
                self.report(f"{child.action.name} exited with code {code} while shutting down")


def _parse_arguments(pairs: list[str]) -> dict[str, str]:
    arguments = {}
    for pair in pairs:
        name, separator, value = pair.partition(":=")
        if not separator or not name:
            raise LaunchError(f"launch argument {pair!r}: expected name:=value")
        arguments[name] = value
    return arguments


def main(argv: list[str] | None = None) -> int:
    """`inhand launch FILE [name:=value ...]`."""
    parser = argparse.ArgumentParser(prog="inhand launch", description="Run a ROS 2 YAML launch file's nodes as processes.")
    parser.add_argument("file", help="a *.launch.yaml (a path, or a name under the package's launch/ folder)")
    parser.add_argument("arguments", nargs="*", help="launch arguments, name:=value")
    parser.add_argument("--print", action="store_true", help="print each node's command line and exit")
    parser.add_argument("--log-dir", type=Path, default=None,
                        help="folder for the nodes' logs (default: $ROS_LOG_DIR or ~/.ros/log, then inhand_launch_<time>)")
    parser.add_argument("--sigint-timeout", type=float, default=5.0, help="seconds from SIGINT to SIGTERM (default 5)")
    parser.add_argument("--sigterm-timeout", type=float, default=5.0, help="seconds from SIGTERM to SIGKILL (default 5)")
    parser.add_argument("--transport", choices=TRANSPORTS, default=None,
                        help="the nodes' transport (default: rclpy where it imports, else dds)")
    parser.add_argument("--transport-of", action="append", default=[], metavar="NODE=TRANSPORT",
                        help="one node's transport, e.g. hand_driver=dds (repeatable; mixed systems)")
    args = parser.parse_args(argv)
    if not (args.sigint_timeout >= 0 and args.sigterm_timeout >= 0):  # NaN too
        parser.error("--sigint-timeout and --sigterm-timeout are seconds, >= 0")
    path = Path(args.file)
    for installed in (share_directory() / "launch" / path, share_directory() / path):  # "sim.launch.yaml", "launch/..."
        if not path.exists() and not path.is_absolute() and installed.exists():
            path = installed
    try:
        plan = load_launch(path, _parse_arguments(args.arguments))
    except LaunchError as error:
        print(f"inhand launch: {error}", file=sys.stderr)
        return 2
    if args.print:
        for action in plan.nodes:
            print(" ".join(action.command()))
        return 0
    base = args.log_dir or Path(os.environ.get("ROS_LOG_DIR") or Path.home() / ".ros" / "log")
    log_dir = base if args.log_dir else base / time.strftime("inhand_launch_%Y%m%d_%H%M%S")
    check_output_dir(log_dir, [path], option="--log-dir")
    node_transports = {}
    for item in args.transport_of:
        name, separator, chosen = item.partition("=")
        if not separator:
            parser.error(f"--transport-of {item!r}: expected NODE=TRANSPORT, e.g. hand_driver=dds")
        node_transports[name] = chosen
    try:
        runner = LaunchRunner(plan, log_dir, args.sigint_timeout, args.sigterm_timeout, args.transport, node_transports)
    except LaunchError as error:
        print(f"inhand launch: {error}", file=sys.stderr)
        return 2
    previous = {signum: signal.signal(signum, lambda *_: runner.request_stop()) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        runner.report(f"{len(plan.nodes)} nodes from {path}; logs in {log_dir}")
        runner.start()
        return runner.run()
    finally:
        runner.request_stop()
        runner.shutdown()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


if __name__ == "__main__":
    raise SystemExit(main())
