"""The default env factory: the inhand MuJoCo sim (imported only when an env is built)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from policies.config import EnvSection
from sim.contract import VecEnv

if TYPE_CHECKING:
    from sim.config import EnvConfig


def section_env_config(section: EnvSection, fixed_ranges: bool = False) -> EnvConfig:
    """The env YAML of `section` (config/env.yaml when null), its goal mode, goal angle and ADR thresholds
    overridden if set; fixed_ranges keeps the YAML's configured ranges even where it asks for automatic
    randomization."""
    from dataclasses import replace

    from sim.config import DEFAULT_CONFIG_PATH, load_env_config
    from sim.config_loading import ConfigError

    env_config = load_env_config(section.config)
    options = {"goal_mode": section.goal_mode, "goal_max_angle_rad": section.goal_max_angle_rad}
    options = {name: value for name, value in options.items() if value is not None}
    if options:
        env_config = env_config.with_options(**options)
    thresholds = {"high_threshold": section.adr_high_threshold, "low_threshold": section.adr_low_threshold}
    thresholds = {name: value for name, value in thresholds.items() if value is not None}
    if thresholds:
        randomization = env_config.randomization
        if randomization.mode != "adr":
            raise ConfigError(f"{' and '.join(f'env.adr_{name}' for name in thresholds)} set, but "
                              f"{section.config or DEFAULT_CONFIG_PATH} has randomization.mode "
                              f"{randomization.mode}; the thresholds apply to adr only (config/env_adr.yaml)")
        # AdrConfig checks the merged pair
        adr = replace(randomization.adr, **thresholds)
        env_config = replace(env_config, randomization=replace(randomization, adr=adr))
    if fixed_ranges:
        env_config = replace(env_config, randomization=replace(env_config.randomization, mode="fixed"))
    return env_config


def sim_vec_env(env_config: EnvConfig, section: EnvSection, num_envs: int, seed: int) -> VecEnv:
    """sim.vec_env_from_config on `env_config` with the section's worker processes and physics threads."""
    from sim import vec_env_from_config

    return vec_env_from_config(env_config, num_envs=num_envs, num_workers=section.num_workers, seed=seed,
                               num_threads=section.num_threads)


def make_vec_env(section: EnvSection, num_envs: int, seed: int, fixed_ranges: bool = False) -> VecEnv:
    """The inhand sim as env.factory: sim_vec_env on section_env_config(section, fixed_ranges)."""
    return sim_vec_env(section_env_config(section, fixed_ranges), section, num_envs, seed)
