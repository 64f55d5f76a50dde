"""`inhand SUBCOMMAND ...`: each subcommand lives in the package it belongs to and is imported lazily."""
from __future__ import annotations

import importlib
import os
import sys
import traceback
from collections.abc import Callable

# headless first: EGL renders on a GPU or, through Mesa, on the CPU, with no display; set MUJOCO_GL to override
os.environ.setdefault("MUJOCO_GL", "egl")

# subcommand -> (module, function, one-line help); the function takes the remaining argv.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "demo": ("ros_nodes.demo", "main", "the main job: the sim system with the shipped checkpoints, a bag and its replay"),
    "train": ("policies.cli", "train", "train or resume the LSTM PPO policy"),
    "eval": ("policies.cli", "eval_command", "evaluate a policy checkpoint; prints JSON"),
    "export": ("policies.cli", "export", "inference-only policy.pt + stateful policy.onnx"),
    "vision": ("vision.cli", "main", "pose estimator: render, train, eval, export"),
    "launch": ("ros_nodes.launch", "main", "run a ROS 2 YAML launch file's nodes as processes (rclpy or dds)"),
    "record": ("ros_nodes.recorder", "main", "record the graph's topics into a rosbag2 MCAP bag"),
    "replay": ("ros_nodes.replay", "main", "replay a bag: video, re-simulation, republishing"),
    "bench": ("inhand.bench", "main", "benchmarks that print JSON (sim, transport, ...)"),
}


def usage() -> str:
    lines = ["usage: inhand SUBCOMMAND [ARGS ...]", "", "subcommands:"]
    lines += [f"  {name:<10} {helptext}" for name, (_, _, helptext) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Dispatch `inhand NAME ARGS...` to the subcommand's module."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"inhand: unknown subcommand {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module_name, function_name, _ = COMMANDS[name]
    return run_boundary(f"inhand {name}", lambda: getattr(importlib.import_module(module_name), function_name)(rest))


def run_boundary(prog: str, command: Callable[[], int | None]) -> int:
    """Run a command: the project's own errors print one line and give 2, anything else its traceback and 1."""
    from sim.errors import InhandError

    try:
        return int(command() or 0)
    except InhandError as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception:  # a bug, not bad input: the traceback is what a developer needs
        traceback.print_exc()
        print(f"{prog}: unexpected error (a bug; the traceback above shows where)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
