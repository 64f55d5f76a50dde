"""A small fixed synthetic dataset shared by the training, evaluation and CLI tests."""
from __future__ import annotations

import functools

import pytest
import torch

from vision.dataset import render_dataset
from vision.synthetic import render_synthetic_sample

IMAGE_SIZE = 48


@pytest.fixture(scope="session")
def synthetic_dataset(tmp_path_factory):
    """96 cube renders at 48x48 in shards of 32 (seeds 0..95)."""
    folder = tmp_path_factory.mktemp("synthetic_dataset")
    render = functools.partial(render_synthetic_sample, image_size=IMAGE_SIZE)
    render_dataset(render, 96, folder, camera_names=("left", "front", "right"), image_size=IMAGE_SIZE,
                   shard_size=32, progress=False)
    return folder


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: on a busy 2-core runner, 2 threads contending with other load ran 3x slower here."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
