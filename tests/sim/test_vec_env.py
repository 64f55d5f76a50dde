"""Vectorized envs: worker processes reproduce the in-process batch, auto-reset, and shut down."""
import numpy as np
import pytest

from sim import vec_env_from_config
from sim.config import EnvConfig

CONFIG = EnvConfig().with_options(timeout_s=0.8)


def run(env, steps: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    observation = env.reset(seed)
    trace = [observation["policy"]]
    for _ in range(steps):
        observation, reward, terminated, truncated, info = env.step(rng.integers(0, 11, (env.num_envs, 20)))
        trace += [observation["policy"], observation["critic"], reward, terminated, truncated, info["final_critic"]]
    return trace


def test_one_worker_reproduces_the_in_process_backend():
    with vec_env_from_config(CONFIG, 3, 0, seed=4) as local, vec_env_from_config(CONFIG, 3, 1, seed=4) as remote:
        for a, b in zip(run(local, 15, 4), run(remote, 15, 4)):
            np.testing.assert_array_equal(a, b)


def test_two_workers_share_the_envs_and_autoreset():
    with vec_env_from_config(CONFIG, 5, 2, seed=1) as env:
        assert env.shares == [3, 2] and env.single_action_space.shape == (20,)
        observation = env.reset(1)
        assert observation["policy"].shape == (5, 22) and observation["critic"].shape == (5, 84)
        done_seen = np.zeros(5, bool)
        for _ in range(15):
            observation, reward, terminated, truncated, info = env.step(np.full((5, 20), 5))
            done = info["episode_done"]
            np.testing.assert_array_equal(done, terminated | truncated)
            assert (info["episode_length"][done] >= 1).all()
            np.testing.assert_array_equal(info["final_critic"][~done], observation["critic"][~done])
            done_seen |= done
        # with the hand holding still an env rarely reaches its goal (one did, by chance, at step 3), so every env
        # times out 10 steps after its start or its last success
        assert done_seen.all()


def test_worker_errors_surface_with_their_traceback():
    with vec_env_from_config(CONFIG, 2, 2, seed=0) as env:
        env.reset(0)
        with pytest.raises(RuntimeError, match="integer bins"):
            env.step(np.full((2, 20), 99))


def test_bad_worker_count():
    with pytest.raises(ValueError, match="num_workers"):
        vec_env_from_config(CONFIG, 2, 3)
