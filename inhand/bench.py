"""`inhand bench NAME`: benchmark commands that print one JSON object each."""
from __future__ import annotations

import importlib
import sys

# benchmark -> module whose main(argv) prints the JSON
BENCHMARKS: dict[str, str] = {
    "sim": "sim.bench",
    "transport": "ros_nodes.bench_transport",
    "train": "policies.bench",
    "learning": "policies.learning_speed",
    "vision": "vision.bench",
    "system": "ros_nodes.bench_system",
    "fidelity": "ros_nodes.bench_fidelity",
}


def main(argv: list[str]) -> int:
    """Run the named benchmark with its own arguments."""
    if not argv or argv[0] not in BENCHMARKS:
        names = ", ".join(sorted(BENCHMARKS))
        print(f"usage: inhand bench {{{names}}} [ARGS ...]", file=sys.stderr)
        return 2
    return int(importlib.import_module(BENCHMARKS[argv[0]]).main(argv[1:]) or 0)
