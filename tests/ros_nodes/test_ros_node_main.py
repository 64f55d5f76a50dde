"""run_node's stop: the first SIGINT ends the spin loop between callbacks, so a recorder stopped in the middle of a
flood of messages still closes a whole bag; a second signal stops a node whose callback never returns. Its start:
bad input is one line and exit code 2, a bug its traceback."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

from ros_nodes import msgs
from ros_nodes.bag import BagReader
from ros_nodes.transport import create_node

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def _node_process(code: str, *args: str, domain: int = 0) -> Iterator[subprocess.Popen[str]]:
    """`python -c code args` on DDS domain `domain`, killed on the way out if the test left it running."""
    environment = dict(os.environ, PYTHONPATH=str(ROOT), ROS_DOMAIN_ID=str(domain), INHAND_TRANSPORT="dds",
                       PYTHONUNBUFFERED="1")
    process = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], env=environment,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def _wait_for_line(process: subprocess.Popen[str], text: str, timeout_s: float = 30.0) -> None:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if text in line:
            return
        assert line or process.poll() is None, f"process ended before printing {text!r}"
    raise AssertionError(f"no {text!r} within {timeout_s} s")


def test_recorder_stopped_while_topics_keep_appearing_closes_a_whole_bag(tmp_path: Path) -> None:
    """The recorder spends most of this run registering new topics in the bag, which is where an exception raised by
    the signal handler used to leave the writer's books half updated and the bag without its metadata.yaml."""
    domain = 150 + os.getpid() % 80
    topics = [f"/flood/t{index}" for index in range(400)]
    publisher_node = create_node("flood", backend="dds", domain_id=domain)
    publishers = [publisher_node.create_publisher(msgs.String, topic, 10) for topic in topics]
    extra = "[" + ", ".join(f"'{topic}:std_msgs/msg/String'" for topic in topics) + "]"
    try:
        for attempt in range(3):  # three stops at three different points
            bag = tmp_path / f"bag{attempt}"
            with _node_process("from ros_nodes.recorder import main; raise SystemExit(main())", "--ros-args",
                               "-p", f"bag:={bag}", "-p", "images:=false", "-p", f"extra_topics:={extra}",
                               domain=domain) as recorder:
                assert publisher_node.spin_until(lambda: all(p.get_subscription_count() for p in publishers), 60.0)
                stop_at = time.monotonic() + 0.4 + 0.2 * attempt
                index = 0
                while time.monotonic() < stop_at:
                    publishers[index % len(publishers)].publish(msgs.String(data=str(index)))
                    index += 1
                recorder.send_signal(signal.SIGINT)
                output = recorder.communicate(timeout=15.0)[0]
            assert recorder.returncode == 0, output
            with BagReader(bag) as reader:
                assert sum(1 for _ in reader.messages(raw=True)) > 0
    finally:
        publisher_node.shutdown()


STUCK_NODE = """
    import sys, time
    from pathlib import Path
    from ros_nodes.node_main import run_node

    class Stuck:
        def __init__(self, node):
            node.create_timer(0.05, self.hang)

        def hang(self):
            print("stuck", flush=True)
            while True:
                time.sleep(0.01)

        def close(self):
            Path(sys.argv[1]).write_text("closed")

    raise SystemExit(run_node("stuck", Stuck, []))
"""


def test_a_second_signal_stops_a_node_whose_callback_never_returns(tmp_path: Path) -> None:
    marker = tmp_path / "closed"
    with _node_process(STUCK_NODE, str(marker)) as process:
        _wait_for_line(process, "stuck")
        process.send_signal(signal.SIGINT)
        time.sleep(0.5)
        assert process.poll() is None  # the first signal waits for the callback, which never returns
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=10.0)[0]
    assert process.returncode == 0, output
    assert marker.read_text() == "closed"


def test_a_config_error_at_start_up_is_one_line_and_exit_code_2(monkeypatch, capsys) -> None:
    from ros_nodes.node_main import run_node
    from sim.config_loading import ConfigError

    def build(node: object) -> None:
        raise ConfigError("config.yaml: key 'rate_hz' 0 is outside [1, 100]")

    monkeypatch.setenv("INHAND_TRANSPORT", "inproc")
    assert run_node("configured", build, []) == 2
    assert capsys.readouterr().err == "configured: config.yaml: key 'rate_hz' 0 is outside [1, 100]\n"
    assert run_node("configured", build, ["--ros-args", "-x", "y"]) == 2
    assert "configured: unsupported ROS argument '-x'" in capsys.readouterr().err


BUGGY_NODE = """
    from ros_nodes.node_main import run_node

    def build(node):
        return {}["missing"]  # a bug, not bad input

    raise SystemExit(run_node("buggy", build, []))
"""


def test_any_other_error_at_start_up_prints_its_traceback_and_exits_non_zero() -> None:
    with _node_process(BUGGY_NODE) as process:
        output = process.communicate(timeout=60.0)[0]
    assert process.returncode == 1, output
    assert "Traceback (most recent call last)" in output and "KeyError: 'missing'" in output
    assert 'File "<string>", line 5, in build' in output  # where the bug is
