"""Sharded dataset: round trip, resume without rewriting finished shards, refusal of bad files naming them."""
from __future__ import annotations

import functools
import json

import numpy as np
import pytest

from vision.dataset import (
    DatasetError,
    PoseDataset,
    check_sample,
    render_dataset,
    shard_grouped_batches,
    validation_mask,
    write_shard,
)
from vision.synthetic import render_synthetic_sample

SIZE = 16
CAMERAS = ("left", "front", "right")
render_small = functools.partial(render_synthetic_sample, image_size=SIZE)


class CountingRender:
    """render_sample that records the seeds it was asked for and can fail from a given seed on."""

    def __init__(self, fail_from: int | None = None) -> None:
        self.seeds: list[int] = []
        self.fail_from = fail_from

    def __call__(self, seed: int):
        if self.fail_from is not None and seed >= self.fail_from:
            raise RuntimeError(f"renderer crashed at seed {seed}")
        self.seeds.append(seed)
        return render_small(seed)


def write(folder, render=render_small, count=10, **kwargs):
    options = dict(camera_names=CAMERAS, image_size=SIZE, shard_size=4, seed_start=100, progress=False)
    return render_dataset(render, count, folder, **{**options, **kwargs})


def test_round_trip_shards_manifest_and_samples(tmp_path):
    manifest = write(tmp_path)
    assert [shard["count"] for shard in manifest["shards"]] == [4, 4, 2]
    assert json.loads((tmp_path / "manifest.json").read_text())["complete"] is True
    dataset = PoseDataset(tmp_path, input_size=8)
    assert len(dataset) == 10
    np.testing.assert_array_equal(dataset.seeds, np.arange(100, 110))
    images, position, quaternion, cameras = render_small(107)
    raw = dataset.raw(7)
    np.testing.assert_array_equal(raw["images"], images)
    np.testing.assert_allclose(raw["position"], position)
    np.testing.assert_allclose(raw["extrinsics"], cameras["extrinsics"])
    item = dataset[7]
    assert item["images"].shape == (3, 8, 8, 3)
    np.testing.assert_allclose(item["quaternion"].numpy(), quaternion, atol=1e-7)


def test_several_folders_read_as_one_dataset_in_the_order_given(tmp_path):
    write(tmp_path / "a", count=10)
    write(tmp_path / "b", count=6, seed_start=500)
    dataset = PoseDataset([tmp_path / "a", tmp_path / "b"], input_size=8)
    assert len(dataset) == 16
    np.testing.assert_array_equal(dataset.seeds, np.concatenate((np.arange(100, 110), np.arange(500, 506))))
    # shards 0-2 from a (4, 4, 2 samples), 3-4 from b (4, 2): sample 12 is b's third, seed 502
    assert dataset.shard_of_index.tolist() == [0] * 4 + [1] * 4 + [2] * 2 + [3] * 4 + [4] * 2
    np.testing.assert_array_equal(dataset.raw(12)["images"], render_small(502)[0])
    write(tmp_path / "c", count=4, image_size=2 * SIZE, render=functools.partial(render_synthetic_sample,
                                                                                 image_size=2 * SIZE))
    with pytest.raises(DatasetError, match=r"c/manifest\.json: image_size 32 differs from 16"):
        PoseDataset([tmp_path / "a", tmp_path / "c"], input_size=8)
    with pytest.raises(DatasetError, match="no dataset folder given"):
        PoseDataset([], input_size=8)


def test_spawned_workers_write_the_same_data_as_one_process(tmp_path):
    write(tmp_path / "single", count=6)
    write(tmp_path / "workers", count=6, workers=2, start_method="spawn")
    for name in ("shard-00000.npz", "shard-00001.npz"):
        single, workers = np.load(tmp_path / "single" / name), np.load(tmp_path / "workers" / name)
        for key in single.files:
            np.testing.assert_array_equal(single[key], workers[key])


def test_resume_keeps_finished_shards_and_renders_only_the_rest(tmp_path):
    with pytest.raises(RuntimeError, match="seed 105"):
        write(tmp_path, CountingRender(fail_from=105))
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert [shard["done"] for shard in manifest["shards"]] == [True, False, False]
    assert manifest["complete"] is False
    with pytest.raises(DatasetError, match="incomplete"):
        PoseDataset(tmp_path, input_size=8)
    assert len(PoseDataset(tmp_path, input_size=8, allow_incomplete=True)) == 4
    first = tmp_path / "shard-00000.npz"
    before = (first.stat().st_ino, first.stat().st_mtime_ns)

    render = CountingRender()
    write(tmp_path, render)
    assert render.seeds == list(range(104, 110))
    assert (first.stat().st_ino, first.stat().st_mtime_ns) == before
    assert len(PoseDataset(tmp_path, input_size=8)) == 10

    again = CountingRender()
    write(tmp_path, again)
    assert again.seeds == []


def test_resume_with_other_settings_is_refused(tmp_path):
    write(tmp_path, count=4)
    with pytest.raises(DatasetError, match="image_size=16"):
        write(tmp_path, count=4, image_size=32)


def test_camera_count_mismatch_is_refused(tmp_path):
    write(tmp_path, count=4)
    with pytest.raises(DatasetError, match="dataset has 3 cameras, the model takes 2"):
        PoseDataset(tmp_path, input_size=8, camera_count=2)


def test_missing_shard_is_refused_naming_the_file(tmp_path):
    write(tmp_path)
    (tmp_path / "shard-00001.npz").unlink()
    with pytest.raises(DatasetError, match=r"shard-00001\.npz: shard file is missing"):
        PoseDataset(tmp_path, input_size=8)


def test_corrupt_shard_is_refused_naming_the_file(tmp_path):
    write(tmp_path)
    path = tmp_path / "shard-00002.npz"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DatasetError, match=r"shard-00002\.npz: shard file is corrupt"):
        PoseDataset(tmp_path, input_size=8)


def test_wrong_image_shape_is_refused_naming_the_file(tmp_path):
    write(tmp_path)
    path = tmp_path / "shard-00000.npz"
    arrays = dict(np.load(path))
    arrays["images"] = arrays["images"][:, :, :8]
    write_shard(path, arrays)
    with pytest.raises(DatasetError, match=r"shard-00000\.npz: 'images' has shape \(4, 3, 8, 16, 3\)"):
        PoseDataset(tmp_path, input_size=8)


def test_missing_manifest_and_bad_render_output_are_refused(tmp_path):
    with pytest.raises(DatasetError, match="no dataset manifest"):
        PoseDataset(tmp_path, input_size=8)
    images, position, quaternion, cameras = render_small(1)
    with pytest.raises(DatasetError, match=r"render_sample\(1\): images must be \(3, 16, 16, 3\) uint8"):
        check_sample((images.astype(np.float32), position, quaternion, cameras), 1, 3, SIZE)
    with pytest.raises(DatasetError, match="unit length"):
        check_sample((images, position, 2 * quaternion, cameras), 1, 3, SIZE)


def test_validation_split_by_seed_is_fixed_and_near_the_fraction():
    seeds = np.arange(10_000)
    mask = validation_mask(seeds, 0.1)
    assert 0.09 < mask.mean() < 0.11
    np.testing.assert_array_equal(mask[500:600], validation_mask(seeds[500:600], 0.1))
    assert not validation_mask(seeds, 0.0).any()


def test_shard_grouped_batches_cover_every_index_once_one_shard_at_a_time():
    shard_of_index = np.repeat(np.arange(3), 4)
    indices = np.array([0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11])
    batches = shard_grouped_batches(indices, shard_of_index, 4, np.random.default_rng(0))
    order = [index for batch in batches for index in batch]
    assert sorted(order) == indices.tolist()
    shards_in_order = shard_of_index[order]
    assert (np.diff(shards_in_order) != 0).sum() == 2  # each shard visited in one run
