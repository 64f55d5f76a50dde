"""Each unmodeled effect seen through ReorientBatch.step, against values computed by hand."""
import numpy as np
import pytest

from sim import task
from sim.batch import ReorientBatch
from sim.config import EnvConfig
from sim.config_loading import from_mapping

GROUPS = ("physics", "action_noise", "action_delay", "control_timing", "backlash", "random_forces",
          "observation_noise", "marker_freeze")


def only(*enabled: str, **settings: dict) -> EnvConfig:
    """Every randomization group off except `enabled`, with `settings` for them."""
    randomization = {group: {"enabled": group in enabled, **settings.get(group, {})} for group in GROUPS}
    return from_mapping(EnvConfig, {"task": {"goal_mode": "z"}, "randomization": randomization})


def expected_targets(batch: ReorientBatch, bins: np.ndarray) -> np.ndarray:
    """The EMA-smoothed targets one step of `bins` produces, computed from the state before the step."""
    task_config = batch.config.task
    new = task.relative_targets(task.bins_to_actions(bins, task_config.action_bins),
                                batch.qpos[:, batch.actuated_qpos], batch.ctrl_range, task_config.relative_action_scale)
    return task_config.action_ema * new + (1 - task_config.action_ema) * batch.actuation.targets


def test_a_delayed_actuator_applies_last_steps_target_and_the_others_this_steps():
    batch = ReorientBatch(only("action_delay", action_delay={"probability": 0.0}), 1, seed=0)
    batch.reset(0)
    delayed = np.zeros(20, bool)
    delayed[[3, 7]] = True
    batch.effects.delayed[0] = delayed
    for level in (10, 10, 0):  # targets move up, up, then down
        bins = np.full((1, 20), level)
        last_targets = batch.actuation.targets.copy()
        targets = expected_targets(batch, bins)
        batch.step(bins)
        np.testing.assert_allclose(batch.actuation.targets, targets)
        applied = batch.datas[0].ctrl
        np.testing.assert_allclose(applied[delayed], last_targets[0, delayed])
        np.testing.assert_allclose(applied[~delayed], targets[0, ~delayed])
        assert not np.allclose(last_targets[0, delayed], targets[0, delayed])


def test_backlash_holds_the_applied_target_inside_its_dead_band():
    batch = ReorientBatch(only("backlash"), 1, seed=1)
    batch.reset(1)
    width = np.full(20, 0.02)
    width[5] = 10.0  # a dead band wider than any move: this actuator's applied target never moves
    batch.effects.backlash_width[0] = width
    before = batch.actuation.applied.copy()
    bins = np.full((1, 20), 10)  # every target moves up by 0.3 of its half range (EMA 0.3 of a full action)
    targets = expected_targets(batch, bins)
    batch.step(bins)
    applied = batch.datas[0].ctrl
    assert applied[5] == before[0, 5]
    moved = np.arange(20) != 5
    # outside the band the applied target trails the command by half the width
    np.testing.assert_allclose(applied[moved], np.clip(before[0, moved], targets[0, moved] - 0.01,
                                                        targets[0, moved] + 0.01))


def test_a_push_changes_the_cube_velocity_by_force_over_mass_times_the_period():
    velocities = []
    for probability in (0.0, 1.0):
        batch = ReorientBatch(only("random_forces", random_forces={"decay": 1.0}), 1, seed=2, autoreset=False)
        batch.reset(2)
        data, index = batch.datas[0], batch.index
        # the cube floats 30 cm above the hand, out of reach of any contact, for one control period
        data.qpos[index.cube_qpos + 2] += 0.3
        data.qvel[index.cube_dof : index.cube_dof + 6] = 0.0
        batch.effects.force_probability[0] = probability
        batch.step(np.full((1, 20), 5))
        velocities.append(data.qvel[index.cube_dof : index.cube_dof + 3].copy())
        forces = batch.actuation.forces[0].copy()
    mass = batch.models[0].body_mass[batch.index.cube_body]
    assert np.abs(forces).max() > 0
    np.testing.assert_allclose(velocities[1] - velocities[0], forces / mass * 0.08, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("timing", [True, False])
def test_control_timing_stretches_the_simulated_time_of_a_step(timing):
    config = only("control_timing", control_timing={"rate_range": [100.0, 100.0]}) if timing else only()
    batch = ReorientBatch(config, 4, seed=3)
    batch.reset(3)
    before = np.array([data.time for data in batch.datas])
    batch.step(np.full((4, 20), 5))
    elapsed = np.array([data.time for data in batch.datas]) - before
    np.testing.assert_allclose(elapsed, [10 * model.opt.timestep for model in batch.models])
    if timing:  # 80 ms + Exp(100/s): a mean of 10 ms extra, never less than nominal, different per env
        assert (elapsed > 0.08).all() and len(np.unique(elapsed)) == 4
    else:
        np.testing.assert_allclose(elapsed, 0.08)
