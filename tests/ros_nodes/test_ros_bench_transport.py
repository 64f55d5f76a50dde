"""The transport benchmark runs end to end (short) and prints the JSON figures."""
from __future__ import annotations

import json

import pytest

from ros_nodes import bench_transport


def test_short_round_trip_benchmark(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_transport.main(["--count", "100", "--rate", "200"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["messages"] == 100 and figures["joints"] == 24
    assert figures["lost"] == 0 and figures["received"] == 100
    assert figures["payload_bytes"] == len(bench_transport.msgs.serialize(bench_transport._ping(0, 24)))
    assert 0 < figures["round_trip_ms"]["p50"] <= figures["round_trip_ms"]["p99"] < 100


def test_bad_arguments_exit_with_usage() -> None:
    with pytest.raises(SystemExit):
        bench_transport.main(["--count", "0"])
