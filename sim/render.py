"""Rendering the three named cameras, and visual randomization (Dactyl appendix C.2) for the pose estimator.

Set MUJOCO_GL=egl on a headless machine. Processes that render should be started with spawn or forkserver:
a child forked after its parent rendered with EGL hangs at its first render.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

import mujoco
import numpy as np

from sim import rotations
from sim.config import EnvConfig, VisualRandomization
from sim.scene import CAMERA_NAMES, copy_arrays, write_arrays

GOAL_GEOM_GROUP = 2  # the goal marker, hidden from the cameras the pose estimator sees
OFF_RENDER_FLAGS = (mujoco.mjtRndFlag.mjRND_REFLECTION, mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_SKYBOX)


@dataclass(frozen=True)
class NominalVisuals:
    """Model arrays that visual randomization rewrites, as compiled."""

    cam_pos: np.ndarray
    cam_quat: np.ndarray
    cam_fovy: np.ndarray
    light_active: np.ndarray
    light_pos: np.ndarray
    light_diffuse: np.ndarray
    mat_rgba: np.ndarray
    mat_specular: np.ndarray
    mat_shininess: np.ndarray

    @classmethod
    def capture(cls, model: mujoco.MjModel) -> NominalVisuals:
        """Snapshot the visual parameters of a freshly compiled model."""
        return cls(**copy_arrays(model, VISUAL_ARRAYS))


VISUAL_ARRAYS = tuple(NominalVisuals.__dataclass_fields__)


def randomize_visuals(
    model: mujoco.MjModel, nominal: NominalVisuals, rng: np.random.Generator, config: VisualRandomization
) -> None:
    """Write one sample's cameras, lights and materials into `model`, drawn around `nominal`."""
    write_arrays(model, nominal, VISUAL_ARRAYS)
    if not config.enabled:
        return
    n_cameras, n_lights, n_materials = model.ncam, model.nlight, model.nmat
    model.cam_pos[:] = nominal.cam_pos + rng.uniform(-1, 1, (n_cameras, 3)) * config.camera_position_m
    tilt = rotations.from_axis_angle(
        rotations.random_axis(rng, n_cameras), np.deg2rad(rng.uniform(0.0, config.camera_rotation_deg, n_cameras))
    )
    model.cam_quat[:] = rotations.multiply(nominal.cam_quat, tilt)
    model.cam_fovy[:] = nominal.cam_fovy + rng.uniform(-1, 1, n_cameras) * config.camera_fovy_deg

    lo, hi = config.lights_on
    n_on = min(int(rng.integers(lo, hi + 1)), n_lights)
    model.light_active[:] = 0
    model.light_active[rng.choice(n_lights, n_on, replace=False)] = 1
    model.light_pos[:] = nominal.light_pos + rng.uniform(-1, 1, (n_lights, 3)) * config.light_position_m
    model.light_diffuse[:] = rng.uniform(*config.light_diffuse, (n_lights, 1))

    colour = rng.uniform(*config.colour_scale, (n_materials, 3))
    model.mat_rgba[:, :3] = np.clip(nominal.mat_rgba[:, :3] * colour, 0.0, 1.0)
    model.mat_specular[:] = rng.uniform(*config.specular, n_materials)
    model.mat_shininess[:] = rng.uniform(*config.shininess, n_materials)


def postprocess(images: np.ndarray, rng: np.random.Generator, config: VisualRandomization) -> np.ndarray:
    """Contrast about each image's mean, scaled by U[contrast], plus per-pixel Gaussian noise; (..., H, W, 3) uint8."""
    if not config.enabled:
        return images
    pixels = images.astype(np.float32)
    contrast = rng.uniform(*config.contrast, pixels.shape[:-3] + (1, 1, 1)).astype(np.float32)
    mean = pixels.mean(axis=(-3, -2, -1), keepdims=True)
    pixels = mean + (pixels - mean) * contrast
    pixels += rng.normal(0.0, config.pixel_noise_std, pixels.shape).astype(np.float32)
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


class CameraRig:
    """Renders the named cameras of a model into RGB arrays."""

    def __init__(
        self,
        model: mujoco.MjModel,
        height: int,
        width: int,
        cameras: tuple[str, ...] = CAMERA_NAMES,
        multisamples: int = 0,
    ):
        self.cameras = cameras
        # multisample anti-aliasing costs a third of a CPU (llvmpipe) render; the pose estimator downsamples its
        # inputs anyway. Videos for people use mujoco.Renderer directly, with the model's default of 4.
        default_samples = model.vis.quality.offsamples
        model.vis.quality.offsamples = multisamples
        try:
            self.renderer = mujoco.Renderer(model, height, width)
        finally:
            model.vis.quality.offsamples = default_samples
        self.options = mujoco.MjvOption()
        self.options.geomgroup[GOAL_GEOM_GROUP] = 0

    def render(self, data: mujoco.MjData) -> np.ndarray:
        """Images (cameras, H, W, 3) uint8 of the current state."""
        frames = []
        for camera in self.cameras:
            self.renderer.update_scene(data, camera=camera, scene_option=self.options)
            # mirror reflections, shadow maps and the skybox cost ~40% of a CPU (llvmpipe) render and carry
            # no pose information; lighting and materials are randomized instead
            for flag in OFF_RENDER_FLAGS:
                self.renderer.scene.flags[flag] = 0
            frames.append(self.renderer.render())
        return np.stack(frames)

    def close(self) -> None:
        """Free the GL context."""
        self.renderer.close()


def camera_parameters(model: mujoco.MjModel, data: mujoco.MjData, height: int, cameras=CAMERA_NAMES) -> dict:
    """Per camera: world position (C, 3), rotation camera->world (C, 3, 3), focal length in pixels (C,)."""
    ids = [model.camera(name).id for name in cameras]
    fovy = np.deg2rad(model.cam_fovy[ids])
    return {
        "position": data.cam_xpos[ids].copy(),
        "rotation": data.cam_xmat[ids].reshape(-1, 3, 3).copy(),
        "focal_px": 0.5 * height / np.tan(0.5 * fovy),
    }


class RolloutPolicy(Protocol):
    """What PoseSampleRenderer needs of a policy (policies.inference.InferencePolicy has it)."""

    def reset(self, num_envs: int = 1) -> None:
        """Zero the recurrent state for `num_envs` envs."""

    def act(self, policy_obs: np.ndarray) -> np.ndarray:
        """Policy observations (B, P) float32 -> the most likely actions (B, A)."""


class PoseSampleRenderer:
    """Renders randomized three-camera samples of the cube on the palm, with its true pose, for vision/.

    Cube states: a reset (random orientation dropped on the palm) followed by 0..max_random_steps steps of
    random actions, so the hand and cube are in poses the policy meets; or, with a policy, 0..max_policy_steps
    steps of that policy's most likely actions on its own "policy" observations, so they are the poses it
    actually produces. An episode that ends on the way is restarted, as in training.
    """

    def __init__(
        self,
        config: EnvConfig,
        size: int,
        max_random_steps: int = 15,
        policy: RolloutPolicy | None = None,
        max_policy_steps: int = 100,
    ):
        from sim.batch import ReorientBatch

        self.config = config
        self.size = size
        self.max_random_steps = max_random_steps
        self.policy = policy
        # 100 control steps (8 s at 80 ms) is Dactyl's time-out for one goal: the rollout lengths then cover a
        # policy's states from the drop onto the palm to the end of a whole goal attempt, its first rotations
        # included, at about 1 ms of physics and network per step
        self.max_policy_steps = max_policy_steps
        self.batch = ReorientBatch(config, 1, seed=0, autoreset=False)
        self.model, self.data = self.batch.models[0], self.batch.datas[0]
        self.nominal = NominalVisuals.capture(self.model)
        self.rig = CameraRig(self.model, size, size)

    def __call__(self, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
        """(images (3, H, W, 3) uint8, cube position (3,) m, quaternion (4,), camera parameters) for `seed`."""
        rng = np.random.default_rng(seed)
        batch = self.batch
        self._roll_out(rng)
        randomize_visuals(self.model, self.nominal, rng, self.config.randomization.visual)
        mujoco.mj_forward(self.model, self.data)
        images = postprocess(self.rig.render(self.data), rng, self.config.randomization.visual)
        cube = batch.qpos[0, batch.index.cube_qpos : batch.index.cube_qpos + 7]
        return images, cube[:3].copy(), rotations.canonical(cube[3:]), camera_parameters(self.model, self.data, self.size)

    def _roll_out(self, rng: np.random.Generator) -> None:
        """Reset, then step random actions or the policy's for a random number of control steps."""
        batch, policy = self.batch, self.policy
        observation = self._restart(rng)
        max_steps = self.max_random_steps if policy is None else self.max_policy_steps
        for _ in range(int(rng.integers(0, max_steps + 1))):
            if policy is None:
                actions = rng.integers(0, self.config.task.action_bins, (1, batch.n_actuators))
            else:
                actions = policy.act(observation["policy"])
            result = batch.step(actions)
            observation = result.observation
            if result.terminated[0] or result.truncated[0]:
                observation = self._restart(rng)

    def _restart(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """A fresh episode, and fresh policy memory when a policy acts; its observation."""
        observation = self.batch.reset(int(rng.integers(2**63)))
        if self.policy is not None:
            self.policy.reset(1)
        return observation

    def close(self) -> None:
        """Free the renderer."""
        self.rig.close()


_SAMPLE_RENDERERS: dict[tuple[int, str | None], PoseSampleRenderer] = {}


def render_pose_sample(
    seed: int,
    image_size: int = 96,
    policy_path: str | None = None,
    load_policy: Callable[[str], tuple[RolloutPolicy, dict[str, Any]]] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """One randomized sample (see PoseSampleRenderer) with config/env.yaml; one renderer per size, policy and process.

    With `policy_path`, load_policy(policy_path) -> (policy, env options such as goal_mode) supplies the policy
    whose rollouts give the cube states; it is passed in because sim never imports policies/. Both must be
    picklable for render worker processes (a module-level function, a path string).
    """
    from sim.config import load_env_config

    key = (image_size, policy_path)
    renderer = _SAMPLE_RENDERERS.get(key)
    if renderer is None:
        config, policy = load_env_config(), None
        if policy_path is not None:
            if load_policy is None:
                raise ValueError(f"policy_path {policy_path!r} needs load_policy(path) -> (policy, env options)")
            policy, options = load_policy(policy_path)
            config = config.with_options(**options)
        renderer = _SAMPLE_RENDERERS[key] = PoseSampleRenderer(config, image_size, policy=policy)
    return renderer(seed)
