"""Randomized three-camera renders of the cube on the palm and off it (falling, lying on the table), for the drop
detector of vision/ (vision.on_palm), in the pose dataset's sample format (vision.dataset): the label is the task's
drop rule on the stored cube position.

Every sample starts as the task leaves the cube on the palm: a reset, then up to max_random_steps control steps of
random actions, which take the fingers far from the reset pose (a policy whose cube fell goes on moving them), so
both halves show the hand in the same variety of poses and a network cannot tell them apart by the fingers. Half
the samples stop there. The other half then put the cube somewhere around the hand, up to a little above the drop
height, in a random orientation, and run a random number of further control steps of random actions: the cube is
then falling, bouncing, or lying on the table (toward the cameras too, out of their view), or it landed on the
hand after all. The label is
the task's own rule on the rendered state: on the palm when the cube's centre is at or above drop_height_m. Visual
randomization (cameras, lights, materials, contrast, pixel noise) is drawn fresh per sample, except for a share of
samples rendered with the nominal look, which is what the sim driver's cameras show.
"""
from __future__ import annotations

import mujoco
import numpy as np

from sim import rotations
from sim.config import EnvConfig
from sim.render import CameraRig, NominalVisuals, camera_parameters, postprocess, randomize_visuals

# where an off-palm cube starts (world frame): the table around the hand and towards the cameras, where the policy's
# drops land, up to a little above the drop height, so some fall past the hand's edge; higher, a cube would float
# beside the hand, not on the palm but not dropped by the task's rule either, a state a falling cube passes in an
# instant
OFF_PALM_LOW = np.array([0.75, 0.45, 0.03])
OFF_PALM_HIGH = np.array([1.25, 1.15, 0.12])
MAX_FALL_STEPS = 12  # control steps of physics after placing: 0 = in the air, 12 (~1 s) = lying still
NOMINAL_LOOK_SHARE = 0.3  # samples rendered as the sim driver's cameras show the scene


class PalmSampleRenderer:
    """render(seed) -> (images (3, size, size, 3) uint8, cube position (3,) m, quaternion (4,), camera parameters)."""

    def __init__(self, config: EnvConfig, size: int, max_random_steps: int = 40) -> None:
        from sim.batch import ReorientBatch

        self.config = config
        self.size = size
        self.max_random_steps = max_random_steps
        self.batch = ReorientBatch(config, 1, seed=0, autoreset=False)
        self.model, self.data = self.batch.models[0], self.batch.datas[0]
        self.nominal = NominalVisuals.capture(self.model)
        self.rig = CameraRig(self.model, size, size)

    def __call__(self, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
        """One sample of randomization seed `seed`."""
        rng = np.random.default_rng(seed)
        batch, index = self.batch, self.batch.index
        batch.reset(int(rng.integers(2**63)))
        self._random_actions(rng, self.max_random_steps)
        if rng.random() < 0.5:
            self._off_palm(rng)
        nominal_look = rng.random() < NOMINAL_LOOK_SHARE
        visuals = self.config.randomization.visual
        if nominal_look:
            visuals = type(visuals)(enabled=False)
        randomize_visuals(self.model, self.nominal, rng, visuals)
        mujoco.mj_forward(self.model, self.data)
        images = postprocess(self.rig.render(self.data), rng, visuals)
        cube = batch.qpos[0, index.cube_qpos : index.cube_qpos + 7]
        return images, cube[:3].copy(), rotations.canonical(cube[3:]), camera_parameters(self.model, self.data,
                                                                                          self.size)

    def _random_actions(self, rng: np.random.Generator, max_steps: int) -> None:
        """0..max_steps control steps of uniformly random action bins."""
        for _ in range(int(rng.integers(0, max_steps + 1))):
            self.batch.step(rng.integers(0, self.config.task.action_bins, (1, self.batch.n_actuators)))

    def _off_palm(self, rng: np.random.Generator) -> None:
        batch, index = self.batch, self.batch.index
        position = rng.uniform(OFF_PALM_LOW, OFF_PALM_HIGH)
        cube = np.concatenate((position, rotations.uniform(rng, 1)[0]))
        hand = self.data.qpos[index.hand_qpos].copy()
        batch.place(0, hand, cube, batch.actuation.commands[0])
        self._random_actions(rng, MAX_FALL_STEPS)

    def close(self) -> None:
        """Free the renderer."""
        self.rig.close()


_RENDERERS: dict[int, PalmSampleRenderer] = {}


def render_palm_sample(seed: int, image_size: int = 96) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """One sample (PalmSampleRenderer) with config/env.yaml; one renderer per size and process (picklable for the
    dataset writer's worker processes)."""
    from sim.config import load_env_config

    renderer = _RENDERERS.get(image_size)
    if renderer is None:
        renderer = _RENDERERS[image_size] = PalmSampleRenderer(load_env_config(), image_size)
    return renderer(seed)
