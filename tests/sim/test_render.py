"""Camera rendering and visual randomization."""
import mujoco
import numpy as np
import pytest

from sim import rotations
from sim.config import EnvConfig, VisualRandomization
from sim.render import CameraRig, NominalVisuals, PoseSampleRenderer, camera_parameters, postprocess, randomize_visuals
from sim.scene import CAMERA_NAMES, load_model


@pytest.fixture(scope="module")
def scene():
    model = load_model()
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    return model, data, NominalVisuals.capture(model)


def test_visual_draws_lie_in_their_ranges(scene):
    model, _, nominal = scene
    config = VisualRandomization()
    rng = np.random.default_rng(0)
    for _ in range(200):
        randomize_visuals(model, nominal, rng, config)
        assert np.abs(model.cam_pos - nominal.cam_pos).max() <= 0.0015
        tilt = np.rad2deg(rotations.angle_between(model.cam_quat, nominal.cam_quat))
        assert tilt.max() <= 3.0 + 1e-9
        assert np.abs(model.cam_fovy - nominal.cam_fovy).max() <= 1.0
        assert 4 <= model.light_active.sum() <= 6
        assert model.light_diffuse.min() >= 0.1 and model.light_diffuse.max() <= 0.6
        assert np.abs(model.light_pos - nominal.light_pos).max() <= 0.3
        assert model.mat_specular.min() >= 0 and model.mat_specular.max() <= 1
        scale = model.mat_rgba[:, :3] / np.maximum(nominal.mat_rgba[:, :3], 1e-9)
        unclipped = model.mat_rgba[:, :3] < 1.0
        assert scale[unclipped].min() >= 0.6 - 1e-6 and scale[unclipped].max() <= 1.2 + 1e-6
    randomize_visuals(model, nominal, rng, VisualRandomization(enabled=False))
    np.testing.assert_array_equal(model.cam_pos, nominal.cam_pos)
    np.testing.assert_array_equal(model.mat_rgba, nominal.mat_rgba)


def test_postprocess_contrast_and_noise():
    rng = np.random.default_rng(1)
    flat = np.full((2, 8, 8, 3), 100, np.uint8)
    flat[:, :4] = 50
    plain = postprocess(flat, rng, VisualRandomization(contrast=(2.0, 2.0), pixel_noise_std=0.0))
    # mean 75: 50 -> 25 and 100 -> 125 at contrast 2
    assert plain[0, 0, 0, 0] == 25 and plain[0, 7, 0, 0] == 125
    noisy = postprocess(np.full((1, 64, 64, 3), 128, np.uint8), rng, VisualRandomization(contrast=(1.0, 1.0)))
    assert noisy.astype(float).std() == pytest.approx(4.0, rel=0.1)


def test_rig_renders_three_cameras(scene):
    model, data, nominal = scene
    randomize_visuals(model, nominal, np.random.default_rng(2), VisualRandomization(enabled=False))
    rig = CameraRig(model, 64, 64)
    images = rig.render(data)
    rig.close()
    assert images.shape == (len(CAMERA_NAMES), 64, 64, 3) and images.dtype == np.uint8
    assert all(image.std() > 10 for image in images)
    assert not np.array_equal(images[0], images[2])


def test_pose_samples_are_reproducible_and_project_the_cube_into_view():
    renderer = PoseSampleRenderer(EnvConfig(), 64, max_random_steps=3)
    images, position, quaternion, cameras = renderer(11)
    again = renderer(11)
    other = renderer(12)
    renderer.close()
    np.testing.assert_array_equal(images, again[0])
    assert not np.array_equal(images, other[0])
    assert position[2] > 0.1 and np.linalg.norm(quaternion) == pytest.approx(1.0)
    # the cube centre lies in front of every camera and inside its image
    for camera in range(3):
        local = cameras["rotation"][camera].T @ (position - cameras["position"][camera])
        assert local[2] < 0  # MuJoCo cameras look along their -z axis
        pixel = cameras["focal_px"][camera] * local[:2] / -local[2]
        assert np.abs(pixel).max() < 32


class ScriptedPolicy:
    """Flexes every joint (the top bin) and records what the renderer gives it."""

    def __init__(self, bins: int):
        self.bins = bins
        self.resets: list[int] = []
        self.observations: list[np.ndarray] = []

    def reset(self, num_envs: int = 1) -> None:
        self.resets.append(num_envs)

    def act(self, policy_obs: np.ndarray) -> np.ndarray:
        self.observations.append(policy_obs)
        return np.full((len(policy_obs), 20), self.bins - 1)


def test_policy_rollouts_give_the_cube_states():
    config = EnvConfig()
    policy = ScriptedPolicy(config.task.action_bins)
    with_policy = PoseSampleRenderer(config, 32, policy=policy, max_policy_steps=6)
    random_actions = PoseSampleRenderer(config, 32, max_random_steps=6)
    # a sample's second draw is its rollout length: 6 steps for seed 4, 4 for seed 7 (bound 6 + 1)
    steps = {}
    for seed in (4, 7):
        rng = np.random.default_rng(seed)
        rng.integers(2**63)
        steps[seed] = int(rng.integers(0, 7))
    assert steps == {4: 6, 7: 4}
    first, again = with_policy(4), with_policy(4)
    assert policy.resets == [1, 1]
    assert len(policy.observations) == 2 * steps[4]
    assert all(obs.shape == (1, 22) and obs.dtype == np.float32 for obs in policy.observations)
    np.testing.assert_array_equal(first[1], again[1])
    np.testing.assert_array_equal(first[0], again[0])
    for seed in (4, 7):
        assert np.linalg.norm(with_policy(seed)[1] - random_actions(seed)[1]) > 1e-4
    with_policy.close()
    random_actions.close()


def test_render_pose_sample_keeps_one_renderer_per_policy_with_its_env_options():
    from sim.render import _SAMPLE_RENDERERS, render_pose_sample

    def load(path):
        return ScriptedPolicy(11), {"goal_mode": "z"}

    with pytest.raises(ValueError, match="needs load_policy"):
        render_pose_sample(0, image_size=24, policy_path="scripted")
    images, *_ = render_pose_sample(0, image_size=24, policy_path="scripted", load_policy=load)
    assert images.shape == (3, 24, 24, 3)
    renderer = _SAMPLE_RENDERERS.pop((24, "scripted"))
    assert renderer.config.task.goal_mode == "z" and isinstance(renderer.policy, ScriptedPolicy)
    renderer.close()
