"""The transport benchmark runs end to end (short) and prints the JSON figures."""
from __future__ import annotations

import json

import pytest

from ros_nodes import bench_transport


def test_short_round_trips_between_every_pair_of_transports(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_transport.main(["--count", "100", "--rate", "200"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["benchmark"] == "transport_round_trip"
    assert list(report["pairs"]) == ["dds_to_dds", "rclpy_to_dds", "dds_to_rclpy", "rclpy_to_rclpy"]
    for name, figures in report["pairs"].items():
        assert f"{figures['ping']}_to_{figures['echo']}" == name
        assert figures["messages"] == 100 and figures["joints"] == 24
        assert figures["lost"] == 0 and figures["received"] == 100, name
        assert figures["payload_bytes"] == len(bench_transport.msgs.serialize(bench_transport._ping(0, 24)))
        assert 0 < figures["round_trip_ms"]["p50"] <= figures["round_trip_ms"]["p99"] < 100, name


def test_bad_arguments_exit_with_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        bench_transport.main(["--count", "0"])
    with pytest.raises(SystemExit):
        bench_transport.main(["--pairs", "dds_to_zenoh"])
    assert "'dds_to_zenoh' is not a pair; choose from dds_to_dds, rclpy_to_dds" in capsys.readouterr().err
