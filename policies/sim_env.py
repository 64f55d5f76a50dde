"""The default env factory: the inhand MuJoCo sim (imported only when an env is built)."""
from __future__ import annotations

from policies.config import EnvSection
from policies.vec_env import VecEnv


def make_vec_env(section: EnvSection, num_envs: int, seed: int, fixed_ranges: bool = False) -> VecEnv:
    """sim.make_vec_env on the env YAML of `section` (config/env.yaml when null), goal mode overridden if set;
    fixed_ranges evaluates at the YAML's configured ranges even where it asks for automatic randomization."""
    from dataclasses import replace

    from sim import make_vec_env as make_sim_vec_env
    from sim.config import load_env_config

    env_config = load_env_config(section.config)
    if section.goal_mode is not None:
        env_config = env_config.with_options(goal_mode=section.goal_mode)
    if fixed_ranges:
        env_config = replace(env_config, randomization=replace(env_config.randomization, mode="fixed"))
    return make_sim_vec_env(env_config, num_envs=num_envs, num_workers=section.num_workers, seed=seed,
                             num_threads=section.num_threads)
