"""Physics randomization: every draw inside its configured range, drawn from nominal (never compounding)."""
import mujoco
import numpy as np
import pytest

from sim.config import PhysicsRandomization
from sim.randomization import capture_nominal, log_uniform, randomize_physics, truncated_normal
from sim.scene import index_scene, load_model

EPISODES = 200


@pytest.fixture(scope="module")
def scene():
    model = load_model()
    index = index_scene(model)
    return model, index, capture_nominal(model, index)


def test_every_draw_lies_in_its_range_over_many_episodes(scene):
    model, index, nominal = scene
    config = PhysicsRandomization()
    rng = np.random.default_rng(0)
    bodies, dofs, joints = nominal.randomized_bodies, nominal.hand_dofs, nominal.hand_joints
    mass_ratios, gain_ratios, gravity_shifts = [], [], []
    for _ in range(EPISODES):
        randomize_physics(model, nominal, rng, config)
        mass = model.body_mass[bodies] / nominal.body_mass[bodies]
        assert mass.min() >= 0.5 and mass.max() <= 1.5
        mass_ratios.append(mass)
        size = model.geom_size[nominal.cube_geom] / nominal.cube_size
        assert np.ptp(size) < 1e-12 and 0.95 <= size[0] <= 1.05
        assert model.geom_rbound[nominal.cube_geom] / nominal.cube_rbound == pytest.approx(size[0])
        cube_inertia = model.body_inertia[nominal.cube_body] / nominal.body_inertia[nominal.cube_body]
        np.testing.assert_allclose(cube_inertia, mass[-1] * size[0] ** 2)
        friction = model.geom_friction / nominal.geom_friction
        assert friction.min() >= 0.7 and friction.max() <= 1.3
        damping = model.dof_damping[dofs] / nominal.dof_damping[dofs]
        assert damping.min() >= 0.3 and damping.max() <= 3.0
        kp = model.actuator_gainprm[:, 0] / nominal.actuator_gainprm[:, 0]
        np.testing.assert_allclose(model.actuator_biasprm[:, 1], -model.actuator_gainprm[:, 0])
        assert kp.min() >= 0.75 and kp.max() <= 1.5
        gain_ratios.append(kp)
        limit_shift = model.jnt_range[joints] - nominal.jnt_range[joints]
        narrowed = model.jnt_range[joints, 1] - model.jnt_range[joints, 0] <= config.min_joint_range_rad + 1e-12
        assert np.abs(limit_shift[~narrowed]).max() <= 3 * 0.15
        assert np.all(model.jnt_range[joints, 1] - model.jnt_range[joints, 0] >= config.min_joint_range_rad - 1e-12)
        gravity = model.opt.gravity - nominal.gravity
        assert np.abs(gravity).max() <= 3 * 0.4
        gravity_shifts.append(gravity)
    # not compounding: the spread over 200 episodes is that of one draw around nominal
    mass_ratios = np.concatenate(mass_ratios)
    assert mass_ratios.mean() == pytest.approx(1.0, abs=0.02)
    assert mass_ratios.std() == pytest.approx(1 / np.sqrt(12), abs=0.02)
    log_gain = np.log(np.concatenate(gain_ratios))
    assert log_gain.mean() == pytest.approx(0.5 * (np.log(0.75) + np.log(1.5)), abs=0.02)
    assert np.std(gravity_shifts) == pytest.approx(0.4, rel=0.15)


def test_disabled_restores_the_nominal_model_exactly(scene):
    model, _, nominal = scene
    randomize_physics(model, nominal, np.random.default_rng(1), PhysicsRandomization())
    assert not np.array_equal(model.body_mass, nominal.body_mass)
    randomize_physics(model, nominal, np.random.default_rng(1), PhysicsRandomization(enabled=False))
    fresh = load_model()
    for name in ("body_mass", "body_inertia", "geom_friction", "dof_damping", "actuator_gainprm", "jnt_range", "geom_size"):
        np.testing.assert_array_equal(getattr(model, name), getattr(fresh, name), err_msg=name)
    np.testing.assert_array_equal(model.opt.gravity, fresh.opt.gravity)


def test_same_seed_same_model(scene):
    model, _, nominal = scene
    randomize_physics(model, nominal, np.random.default_rng(5), PhysicsRandomization())
    first = model.body_mass.copy(), model.jnt_range.copy()
    randomize_physics(model, nominal, np.random.default_rng(6), PhysicsRandomization())
    randomize_physics(model, nominal, np.random.default_rng(5), PhysicsRandomization())
    np.testing.assert_array_equal(model.body_mass, first[0])
    np.testing.assert_array_equal(model.jnt_range, first[1])


def test_randomized_model_still_simulates(scene):
    model, _, nominal = scene
    randomize_physics(model, nominal, np.random.default_rng(2), PhysicsRandomization())
    data = mujoco.MjData(model)
    mujoco.mj_setConst(model, data)
    mujoco.mj_step(model, data, 100)
    assert np.isfinite(data.qpos).all() and data.warning.number.sum() == 0


def test_samplers():
    rng = np.random.default_rng(3)
    draws = truncated_normal(rng, 0.5, 100000, 2.0)
    assert np.abs(draws).max() <= 1.0
    # a N(0, 1) truncated at +-2 has standard deviation 0.8796
    assert draws.std() == pytest.approx(0.5 * 0.8796, rel=0.01)
    logs = np.log(log_uniform(rng, (0.1, 10.0), 100000))
    assert logs.min() >= np.log(0.1) and logs.max() <= np.log(10.0)
    assert logs.mean() == pytest.approx(0.0, abs=0.02)
