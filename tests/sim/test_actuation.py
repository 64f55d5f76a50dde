"""The command path shared by the env and the sim driver: a policy's commands through step_commands reproduce the
env's own step, action noise included, and each switch of the env config reaches the driver's side too."""
import numpy as np
import pytest

from sim import task
from sim.batch import ReorientBatch
from sim.config_loading import from_mapping
from sim.config import EnvConfig

GROUPS = ("physics", "action_noise", "action_delay", "control_timing", "backlash", "random_forces",
          "observation_noise", "marker_freeze")


def config_with(*enabled: str, action_type: str = "discrete") -> EnvConfig:
    randomization = {group: {"enabled": group in enabled} for group in GROUPS}
    return from_mapping(EnvConfig, {"task": {"goal_mode": "z", "action_type": action_type},
                                    "randomization": randomization})


def test_a_policys_commands_move_the_hand_exactly_as_its_actions_do_in_the_env():
    """The env steps actions; a twin of it (same seed) steps the targets a noise-free policy node would command
    for the same actions. With action noise, delay, backlash, timing and pushes on, both draw the same noise in
    the same order and end in the same state. The actions keep each relative target inside its control range: a
    clipped one cannot be read back exactly (task.implied_actions)."""
    config = config_with("action_noise", "action_delay", "control_timing", "backlash", "random_forces",
                         action_type="continuous")
    env, driver = (ReorientBatch(config, 2, seed=5, autoreset=False) for _ in range(2))
    env.reset(5)
    driver.reset(5)
    rng = np.random.default_rng(0)
    commands = driver.actuation.targets.copy()  # the policy node's EMA starts at the reset targets
    for _ in range(30):
        current = driver.qpos[:, driver.actuated_qpos]
        half_range = 0.5 * (driver.ctrl_range[:, 1] - driver.ctrl_range[:, 0])
        reach = [(driver.ctrl_range[:, end] - current) / half_range for end in (0, 1)]
        actions = np.clip(rng.uniform(-1, 1, (2, 20)), reach[0] + 1e-6, reach[1] - 1e-6)
        commands = task.smoothed_targets(actions, driver.qpos[:, driver.actuated_qpos], commands, driver.ctrl_range,
                                         config.task)
        env.step(actions)
        driver.step_commands(commands)
        np.testing.assert_allclose(driver.actuation.targets, env.actuation.targets, atol=1e-9, rtol=0)
        np.testing.assert_allclose(driver.qpos, env.qpos, atol=1e-7, rtol=0)
    # the noise did act: the env's targets are not the commanded ones
    assert np.abs(env.actuation.targets - commands).max() > 0.01


def test_without_unmodeled_effects_the_hand_applies_the_command_as_sent():
    batch = ReorientBatch(config_with(), 1, seed=1, autoreset=False)
    batch.reset(1)
    commands = batch.actuation.targets + 0.05
    commands[0, 3] = 99.0  # beyond the control range: clipped to it
    batch.step_commands(commands)
    expected = np.clip(commands, batch.ctrl_range[:, 0], batch.ctrl_range[:, 1])
    np.testing.assert_array_equal(batch.datas[0].ctrl, expected[0])
    assert batch.datas[0].time == pytest.approx(0.08 * (1 + batch.config.task.settle_steps))  # settling + 1 period
