"""The Ray backend on a local 2-CPU Ray: rollout actors use the newest weights; its checkpoint resumes locally."""
from __future__ import annotations

import json

import torch

from policies.cli import train
from policies.ppo import build_ppo
from policies.ray_backend import RayBackend
from policies.runner import Runner
from tests.policies.memory_envs import memory_config


def test_ray_workers_roll_out_with_the_newest_weights_and_local_backend_resumes_the_run(tmp_path, capsys):
    # float32 updates, so the learner re-evaluates the workers' log-probs exactly when their weights are its own
    config = memory_config(**{"env.num_envs": 8, "ray.num_workers": 2, "ray.local_num_cpus": 2,
                              "runner.total_updates": 2, "runner.checkpoint_every": 2, "ppo.precision": "fp32"})
    run_dir = tmp_path / "run"
    backend = RayBackend(config)
    try:
        runner = Runner(config, backend, run_dir, progress=False)
        runner.train()
        assert [row["update"] for row in runner.metrics.rows] == [1, 2]
        storage, episodes = backend.collect()
        assert storage.policy_obs.shape == (20, 8, 2) and len(episodes["episode_return"]) == 8 * 4
        everything = torch.arange(8)
        log_probs, _, _ = runner.ppo.evaluate(storage.select(everything))
        torch.testing.assert_close(log_probs, storage.log_probs, atol=1e-5, rtol=0)
        initial = build_ppo(backend.spec, config.model, config.ppo, config.seed)
        stale, _, _ = initial.evaluate(storage.select(everything))
        assert (stale - storage.log_probs).abs().max() > 1e-3
    finally:
        backend.close()

    assert train(["--resume", str(run_dir), "--set", "runner.total_updates=3", "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["update"] == 3 and summary["env_steps"] == 3 * 20 * 8
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [row["update"] for row in rows] == [1, 2, 3]
