"""A Ray address is checked with a bounded TCP connect before ray.init, which would retry it for minutes."""
from __future__ import annotations

import socket
import time

import pytest

from policies.ray_address import parse_address, probe_address
from sim.config_loading import ConfigError


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # free once closed: nothing listens there


def test_addresses_parse() -> None:
    assert parse_address("10.0.0.5:6379") == ("10.0.0.5", 6379)
    assert parse_address("ray://head:10001") == ("head", 10001)
    assert parse_address("[::1]:6379") == ("::1", 6379)
    for text in ("not an address", "host", "host:port", "host:0", ":6379", "a b:1"):
        with pytest.raises(ConfigError, match=f"--address {text!r}: not a Ray address; expected HOST:PORT"):
            parse_address(text)


def test_an_unreachable_address_fails_fast() -> None:
    port = _closed_port()
    started = time.monotonic()
    with pytest.raises(ConfigError, match=rf"ray.address 127.0.0.1:{port}: cannot reach a Ray cluster there"):
        probe_address(f"127.0.0.1:{port}", "ray.address", timeout_s=2.0)
    assert time.monotonic() - started < 3.0
    probe_address("auto")  # ray.init's own keywords are left to it


def test_train_with_an_unreachable_address_exits_2(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    import ray

    from inhand.cli import main

    if ray.is_initialized():
        ray.shutdown()
    started = time.monotonic()
    assert main(["train", "--backend", "ray", "--address", f"127.0.0.1:{_closed_port()}",
                 "--run-dir", str(tmp_path / "run"), "--no-progress"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("inhand train: --address 127.0.0.1:") and "cannot reach a Ray cluster" in error
    assert time.monotonic() - started < 30.0 and not ray.is_initialized()
    assert main(["train", "--backend", "ray", "--address", "not an address", "--run-dir", str(tmp_path / "run")]) == 2
    assert "not a Ray address" in capsys.readouterr().err
