"""env.factory: only a function(env_section, num_envs, seed) that returns a VecEnv, named in every error."""
from __future__ import annotations

import os

import pytest

from policies.config import EnvSection
from policies.env_factory import make_env
from sim.config_loading import ConfigError

NOT_A_FUNCTION = 3


def returns_a_dict(section: EnvSection, num_envs: int, seed: int) -> dict[str, int]:
    """A factory whose result is no VecEnv."""
    return {"num_envs": num_envs}


def test_a_function_of_another_signature_is_never_called(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []
    monkeypatch.setattr(os, "system", lambda command: calls.append(command) or 0)
    with pytest.raises(ConfigError, match=r"'env.factory' 'os:system' does not take \(env_section, num_envs, seed\)"):
        make_env(EnvSection(factory="os:system"), 2, 0)
    assert calls == []


@pytest.mark.parametrize(("factory", "message"), [
    (f"{__name__}:returns_a_dict", "returned a dict, not a VecEnv \\(it lacks num_envs, observation_sizes, "),
    (f"{__name__}:NOT_A_FUNCTION", "is a int; expected a function"),
    ("no_such_module_here:make", "cannot be loaded: No module named 'no_such_module_here'"),
    (f"{__name__}:missing", "cannot be loaded: .*has no attribute 'missing'"),
])
def test_bad_factories_are_config_errors(factory: str, message: str) -> None:
    with pytest.raises(ConfigError, match=f"key 'env.factory' '{factory}' {message}"):
        make_env(EnvSection(factory=factory), 2, 0)
