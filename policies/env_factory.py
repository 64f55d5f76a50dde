"""Building the VecEnv a config names: its env.factory "module:function", checked against sim.contract's VecEnv."""
from __future__ import annotations

import importlib
import inspect

from policies.config import EnvSection
from sim.config_loading import ConfigError
from sim.contract import VECENV_MEMBERS, VecEnv


def make_env(section: EnvSection, num_envs: int, seed: int) -> VecEnv:
    """Call the config's factory "module:function" as function(section, num_envs, seed); the result must be a VecEnv.

    This imports and runs code named by a config file: only train or evaluate configs and checkpoints you trust."""
    module_name, _, function_name = section.factory.partition(":")
    accepted = "a function(env_section, num_envs, seed) -> VecEnv, as 'module:function'"
    try:
        factory = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError, ValueError) as error:
        raise ConfigError(f"key 'env.factory' {section.factory!r} cannot be loaded: {error}; "
                          f"expected {accepted}") from None
    if not callable(factory):
        raise ConfigError(f"key 'env.factory' {section.factory!r} is a {type(factory).__name__}; expected {accepted}")
    try:
        inspect.signature(factory).bind(section, num_envs, seed)
    except TypeError:
        raise ConfigError(f"key 'env.factory' {section.factory!r} does not take (env_section, num_envs, seed); "
                          f"expected {accepted}") from None
    except ValueError:
        pass  # a builtin without a signature: calling it tells
    env = factory(section, num_envs, seed)
    missing = [name for name in VECENV_MEMBERS if not hasattr(env, name)]
    if missing:
        if hasattr(env, "close"):
            env.close()
        raise ConfigError(f"key 'env.factory' {section.factory!r} returned a {type(env).__name__}, not a VecEnv "
                          f"(it lacks {', '.join(missing)}); expected {accepted}")
    if env.num_envs != num_envs:
        raise ValueError(f"env.factory {section.factory!r} made {env.num_envs} envs, {num_envs} were asked for")
    return env
