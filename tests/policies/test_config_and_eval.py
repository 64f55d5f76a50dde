"""config/train.yaml restates the dataclass defaults; eval quotas and summaries by hand."""
from __future__ import annotations

import numpy as np
import pytest

from policies.config import TrainConfig, incompatible_keys, load_train_config
from policies.evaluate import episode_quotas, summarize
from tests.policies.memory_envs import REPO_ROOT


def test_train_yaml_matches_the_dataclass_defaults():
    assert load_train_config(REPO_ROOT / "config" / "train.yaml") == TrainConfig()


def test_only_run_length_and_placement_keys_may_change_on_resume():
    base = TrainConfig()
    longer = load_train_config(REPO_ROOT / "config" / "train.yaml",
                               {"runner.total_updates": 5000, "runner.device": "cuda", "ray.address": "auto"})
    assert incompatible_keys(base, longer) == []
    changed = load_train_config(REPO_ROOT / "config" / "train.yaml", {"model.dense_size": 1024, "seed": 3})
    assert incompatible_keys(base, changed) == ["model.dense_size: 256 -> 1024", "seed: 0 -> 3"]


def test_episode_quotas_split_evenly():
    assert episode_quotas(10, 4).tolist() == [3, 3, 2, 2]
    assert episode_quotas(3, 3).tolist() == [1, 1, 1]


def test_summary_numbers_by_hand():
    successes = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 50.0])
    dropped = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 0], dtype=float)
    timed_out = np.array([0, 1, 0, 0, 0, 0, 0, 0, 0, 0], dtype=float)
    summary = summarize(successes, dropped, timed_out, np.full(10, 100.0))
    assert summary["consecutive_successes"]["mean"] == pytest.approx(8.6)
    assert summary["consecutive_successes"]["median"] == pytest.approx(4.5)
    # numpy's linear interpolation: position 0.9 * 9 = 8.1 between 8 and 50
    assert summary["consecutive_successes"]["p90"] == pytest.approx(8 + 0.1 * 42)
    assert summary["drop_rate"] == pytest.approx(0.2) and summary["timeout_rate"] == pytest.approx(0.1)
