"""The gymnasium env `inhand/Reorient-v0`: one Shadow Hand reorienting a cube (a batch of one)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium
import mujoco
import numpy as np
from gymnasium import spaces

from sim.batch import OBSERVATION_SIZES, ReorientBatch
from sim.config import EnvConfig, load_env_config
from sim.contract import CONSECUTIVE_SUCCESSES


def action_space(config: EnvConfig, n_actuators: int) -> spaces.Space:
    """MultiDiscrete bins per actuator, or a Box in [-1, 1] for the continuous variant."""
    if config.task.action_type == "discrete":
        return spaces.MultiDiscrete(np.full(n_actuators, config.task.action_bins))
    return spaces.Box(-1.0, 1.0, (n_actuators,), np.float32)


def observation_space() -> spaces.Dict:
    """{"policy": (22,), "critic": (84,)} float32 boxes."""
    return spaces.Dict(
        {name: spaces.Box(-np.inf, np.inf, (size,), np.float32) for name, size in OBSERVATION_SIZES.items()}
    )


def resolve_config(config: EnvConfig | str | Path | None, options: dict[str, Any]) -> EnvConfig:
    """An EnvConfig from a config object, a YAML path or the default file, with task options applied."""
    if not isinstance(config, EnvConfig):
        config = load_env_config(config)
    return config.with_options(**options) if options else config


class ReorientEnv(gymnasium.Env):
    """Dactyl's block reorientation on the Shadow Hand, with domain randomization.

    Options: config (EnvConfig or YAML path), render_mode ("rgb_array"), camera (name), and any task field,
    e.g. goal_mode="z", action_type="continuous"; randomize=False switches every randomization off.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 12.5}

    def __init__(
        self,
        config: EnvConfig | str | Path | None = None,
        render_mode: str | None = None,
        camera: str = "overview",
        width: int = 320,
        height: int = 240,
        **options: Any,
    ):
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.config = resolve_config(config, options)
        self.batch = ReorientBatch(self.config, num_envs=1, autoreset=False)
        self.action_space = action_space(self.config, self.batch.n_actuators)
        self.observation_space = observation_space()
        self.render_mode = render_mode
        self.camera = camera
        self.render_size = (height, width)
        self._renderer: mujoco.Renderer | None = None

    @property
    def model(self) -> mujoco.MjModel:
        """This episode's (randomized) MuJoCo model."""
        return self.batch.models[0]

    @property
    def data(self) -> mujoco.MjData:
        """The MuJoCo data of the simulation."""
        return self.batch.datas[0]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Randomize physics, place the cube on the palm in a random orientation, pick a goal."""
        super().reset(seed=seed)
        observation = self.batch.reset(seed)
        return _first(observation), {CONSECUTIVE_SUCCESSES: 0}

    def step(self, action: np.ndarray):
        """One 80 ms control period."""
        result = self.batch.step(np.asarray(action)[None])
        info = {name: value[0].item() for name, value in result.info.items()}
        return (
            _first(result.observation),
            float(result.reward[0]),
            bool(result.terminated[0]),
            bool(result.truncated[0]),
            info,
        )

    def render(self) -> np.ndarray | None:
        """An RGB frame (H, W, 3) of the configured camera."""
        if self.render_mode != "rgb_array":
            return None
        if self._renderer is None:
            height, width = self.render_size
            self._renderer = mujoco.Renderer(self.model, height, width)
        self._renderer.update_scene(self.data, camera=self.camera)
        return self._renderer.render()

    def close(self) -> None:
        """Free the renderer."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None


def _first(observation: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {name: value[0] for name, value in observation.items()}
