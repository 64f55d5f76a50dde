"""Threads per process and the one device vocabulary (cpu | cuda | auto) of policies and vision."""
import os

import pytest
import torch

from sim.config_loading import ConfigError
from sim.cores import check_num_threads, default_num_threads, resolve_device


def test_default_threads_are_the_cores_this_process_may_use():
    assert default_num_threads() == min(len(os.sched_getaffinity(0)), 64)
    assert check_num_threads(3) == 3


def test_devices_resolve_and_bad_ones_name_their_key():
    assert resolve_device("cpu", "runner.device").type == "cpu"
    assert resolve_device("auto", "runner.device").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError, match="key 'train.device': 'tpu' is not a device; choose one of cpu, cuda, auto"):
        resolve_device("tpu", "train.device")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="key 'runner.device': 'cuda', but torch .* sees no CUDA device"):
            resolve_device("cuda", "runner.device")
