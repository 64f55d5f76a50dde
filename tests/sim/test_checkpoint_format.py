"""The one checkpoint format: round trip of every kind, refusal of truncated / corrupt / foreign files, of other
versions and kinds (naming both), and of pose-estimator files from before the format (naming the converter)."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from sim import checkpoint
from sim.errors import CheckpointError

PAYLOAD = {"weights": {"layer.weight": torch.arange(256, dtype=torch.float32).reshape(16, 16)},
           "config": {"seed": 3, "sizes": [1, 2]}, "step": 12, "score": float("inf")}


@pytest.fixture
def saved(tmp_path) -> Path:
    return checkpoint.save(tmp_path / "state.pt", "pose_training", PAYLOAD)


@pytest.mark.parametrize("kind", list(checkpoint.KINDS))
def test_every_kind_round_trips_with_its_stamp(tmp_path, kind):
    content = checkpoint.load(checkpoint.save(tmp_path / f"{kind}.pt", kind, PAYLOAD), (kind,))
    assert (content["format"], content["version"], content["kind"]) == ("inhand-policy", 1, kind)
    assert torch.equal(content["weights"]["layer.weight"], PAYLOAD["weights"]["layer.weight"])
    assert (content["config"], content["step"], content["score"]) == (PAYLOAD["config"], 12, float("inf"))
    assert "digest" not in content


def test_the_digest_is_a_function_of_the_contents_not_their_order():
    reordered = {"step": 12, "score": float("inf"), "config": {"sizes": [1, 2], "seed": 3},
                 "weights": {"layer.weight": torch.arange(256, dtype=torch.float32).reshape(16, 16)}}
    assert checkpoint.digest(reordered) == checkpoint.digest(PAYLOAD)
    changed = dict(PAYLOAD, weights={"layer.weight": PAYLOAD["weights"]["layer.weight"].to(torch.float64)})
    assert checkpoint.digest(changed) != checkpoint.digest(PAYLOAD)  # same numbers, another dtype


def test_an_unknown_kind_is_not_written(tmp_path):
    with pytest.raises(ValueError, match="checkpoint kind 'weights': expected one of \\('training', 'inference', "
                                         "'pose_training', 'pose_inference', 'palm_detector'\\)"):
        checkpoint.save(tmp_path / "x.pt", "weights", PAYLOAD)
    assert not (tmp_path / "x.pt").exists()


def test_truncated_checkpoint_is_refused(saved, tmp_path):
    data = saved.read_bytes()
    for keep in (len(data) // 2, len(data) - 10, 100):
        cut = tmp_path / f"cut{keep}.pt"
        cut.write_bytes(data[:keep])
        with pytest.raises(CheckpointError, match=f"cut{keep}.pt: not a readable checkpoint \\(truncated, corrupt "
                                                  "or not a torch file\\)"):
            checkpoint.load(cut, checkpoint.POSE_KINDS)


def test_flipped_byte_in_the_weights_is_refused(saved, tmp_path):
    data = bytearray(saved.read_bytes())
    where = bytes(data).find(PAYLOAD["weights"]["layer.weight"].numpy().tobytes()[:32])
    assert where > 0
    data[where + 5] ^= 0x40
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt.pt: contents do not match the stored digest"):
        checkpoint.load(corrupt, checkpoint.POSE_KINDS)


def test_foreign_files_are_refused_and_never_unpickled(tmp_path):
    marker = tmp_path / "unpickled"
    hostile = tmp_path / "hostile.pt"
    hostile.write_bytes(pickle.dumps(_Touch(str(marker)), protocol=2))
    torch_hostile = tmp_path / "torch_hostile.pt"
    torch.save({"format": checkpoint.FORMAT, "payload": _Touch(str(marker))}, torch_hostile)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(np.random.default_rng(0).bytes(4096))
    for path in (hostile, torch_hostile, garbage):
        with pytest.raises(CheckpointError, match="not a readable checkpoint"):
            checkpoint.load(path, checkpoint.POLICY_KINDS)
    assert not marker.exists()
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(CheckpointError, match="other.pt: not an inhand-policy checkpoint"):
        checkpoint.load(other, checkpoint.POLICY_KINDS)
    with pytest.raises(CheckpointError, match="missing.pt: checkpoint file not found"):
        checkpoint.load(tmp_path / "missing.pt", checkpoint.POLICY_KINDS)


class _Touch:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_other_versions_and_kinds_are_refused_naming_both(saved, tmp_path):
    with pytest.raises(CheckpointError, match="state.pt: holds a pose-estimator training state \\('pose_training'\\); "
                                              "this needs a policy training state \\('training'\\) or a policy "
                                              "\\('inference'\\)"):
        checkpoint.load(saved, checkpoint.POLICY_KINDS)
    raw = torch.load(saved, weights_only=True)
    raw["version"] = 99
    raw["digest"] = checkpoint.digest({key: value for key, value in raw.items() if key != "digest"})
    torch.save(raw, tmp_path / "v99.pt")
    with pytest.raises(CheckpointError, match="v99.pt: checkpoint version 99; this code reads 1"):
        checkpoint.load(tmp_path / "v99.pt", checkpoint.POSE_KINDS)


def test_an_old_pose_estimator_file_is_refused_naming_the_converter(tmp_path):
    torch.save({"kind": "inference", "model": {}, "config": {}, "step": 5}, tmp_path / "model.pt")
    with pytest.raises(CheckpointError, match="model.pt: a pose-estimator file from before the inhand-policy "
                                              "checkpoint format; convert it once with `inhand vision convert "):
        checkpoint.load(tmp_path / "model.pt", checkpoint.POSE_KINDS)
