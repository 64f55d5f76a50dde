"""Automatic domain randomization: the boundary table, per-episode draws, the threshold rule, limits, resume."""
from dataclasses import replace

import numpy as np
import pytest

from sim.adr import NO_BOUNDARY, AdrState, AdrTable, choose_boundary, episode_randomization
from sim.batch import ReorientBatch
from sim.config import AdrConfig, EnvConfig, Randomization
from sim.config_loading import ConfigError


def table(**adr) -> AdrTable:
    return AdrTable.from_randomization(replace(Randomization(), mode="adr", adr=AdrConfig(**adr)))


def test_every_enabled_quantity_gets_its_boundaries_from_nominal_to_the_configured_limit():
    boundaries = {item.name: item for item in table().boundaries}
    mass_lo, mass_hi = boundaries["physics.mass_scale.lo"], boundaries["physics.mass_scale.hi"]
    assert (mass_lo.nominal, mass_lo.limit, mass_hi.nominal, mass_hi.limit) == (1.0, 0.5, 1.0, 1.5)
    noise = boundaries["observation_noise.fingertip_step_std_m"]
    assert (noise.kind, noise.nominal, noise.limit) == ("magnitude", 0.0, 0.001)
    # the control-period jitter widens from the smallest configured jitter (rate 10000/s) to the largest (1250/s)
    timing = boundaries["control_timing.rate_range.lo"]
    assert (timing.nominal, timing.limit) == (10000.0, 1250.0) and "control_timing.rate_range.hi" not in boundaries
    # 5 two-sided physics ranges + 15 magnitudes (2 physics, 3 action noise, delay, backlash, pushes, 6 observation
    # noise, marker freezing) + the timing rate
    assert len(boundaries) == 5 * 2 + 15 + 1
    without_physics = replace(Randomization(), physics=replace(Randomization().physics, enabled=False))
    assert not any(name.startswith("physics.") for name in AdrTable.from_randomization(without_physics).names)


def test_a_scripted_signal_widens_one_boundary_and_narrows_another_exactly_as_the_thresholds_say():
    adr = table(buffer_size=4, high_threshold=8.0, low_threshold=3.0, steps=10)
    state = AdrState(adr)
    mass_hi = adr.names.index("physics.mass_scale.hi")
    friction_lo = adr.names.index("physics.friction_scale.lo")
    for successes in (9, 8, 7, 9):  # mean 8.25 >= 8: widen by (1.5 - 1.0) / 10
        state.record(mass_hi, successes)
    assert state.values[mass_hi] == pytest.approx(1.05) and state.buffers[mass_hi] == []
    for successes in (10, 10, 10, 4):  # mean 8.5: again
        state.record(mass_hi, successes)
    assert state.values[mass_hi] == pytest.approx(1.10)
    # friction lo first widens to 0.97, then a mean of 2.5 < 3 narrows it back to nominal
    for successes in (8, 8, 8, 8, 2, 3, 2, 3):
        state.record(friction_lo, successes)
    assert state.values[friction_lo] == pytest.approx(1.0)
    assert (state.widened[friction_lo], state.narrowed[friction_lo]) == (1, 1)
    # between the thresholds nothing moves, and the buffer still empties
    for successes in (5, 5, 5, 5):
        state.record(mass_hi, successes)
    assert state.values[mass_hi] == pytest.approx(1.10) and state.buffers[mass_hi] == []
    # a buffer that is not yet full decides nothing; episodes without a boundary count nowhere
    state.record(mass_hi, 50)
    state.record(NO_BOUNDARY, 50)
    assert state.values[mass_hi] == pytest.approx(1.10) and state.buffers[mass_hi] == [50.0]
    untouched = [index for index in range(len(adr.boundaries)) if index not in (mass_hi, friction_lo)]
    np.testing.assert_array_equal(state.values[untouched], adr.nominal_values()[untouched])


def test_boundaries_never_pass_their_hard_limits_or_nominal():
    adr = table(buffer_size=1, steps=3)
    state = AdrState(adr)
    for _ in range(10):
        for index in range(len(adr.boundaries)):
            state.record(index, 100.0)
    np.testing.assert_allclose(state.values, adr.limit_values())
    np.testing.assert_allclose(state.fractions(), 1.0)
    for _ in range(10):
        for index in range(len(adr.boundaries)):
            state.record(index, 0.0)
    np.testing.assert_allclose(state.values, adr.nominal_values())
    assert state.metrics()["adr_fraction_mean"] == 0.0


def test_entropy_grows_as_ranges_widen():
    adr = table(buffer_size=1, steps=2)
    state = AdrState(adr)
    at_nominal = state.entropy()
    state.record(adr.names.index("physics.mass_scale.hi"), 100.0)
    assert state.entropy() > at_nominal
    # mass: width 0.25 of 1.0 -> log(0.25) replaces log(1e-3 * 1.0), averaged over 21 parameters
    assert state.entropy() - at_nominal == pytest.approx((np.log(0.25) - np.log(1e-3)) / 21)


def test_state_round_trips_through_plain_data_and_refuses_another_table():
    adr = table(buffer_size=3)
    state = AdrState(adr)
    state.record(0, 20.0)
    for successes in (20.0, 20.0, 20.0):
        state.record(5, successes)
    copy = AdrState(adr)
    copy.restore(state.to_mapping(), "test")
    np.testing.assert_array_equal(copy.values, state.values)
    assert copy.buffers == state.buffers and copy.widened.tolist() == state.widened.tolist()
    other = AdrState(table())
    smaller = AdrTable(adr.boundaries[:-1], adr.config)
    with pytest.raises(ConfigError, match="saved for boundaries"):
        AdrState(smaller).restore(state.to_mapping(), "test")
    bad = state.to_mapping()
    bad["values"][0] = 100.0
    with pytest.raises(ConfigError, match="outside nominal..limit"):
        other.restore(bad, "test")


def test_episode_draws_stay_inside_the_current_boundaries_magnitudes_sit_at_them_and_a_pinned_one_is_exact():
    adr = table()
    base = replace(Randomization(), mode="adr")
    values = adr.nominal_values() + 0.5 * (adr.limit_values() - adr.nominal_values())
    rng = np.random.default_rng(0)
    mass_lo = adr.names.index("physics.mass_scale.lo")
    noise = adr.names.index("action_noise.additive_std")
    pinned = episode_randomization(base, adr, values, mass_lo)
    assert pinned.physics.mass_scale == (0.75, 0.75) and pinned.mode == "fixed"
    pinned_noise = episode_randomization(base, adr, values, noise)
    assert pinned_noise.action_noise.additive_std == pytest.approx(0.025)
    assert pinned_noise.physics.mass_scale == (0.75, 1.25)
    free = episode_randomization(base, adr, values, NO_BOUNDARY)
    assert free.physics.friction_scale == (0.85, 1.15)
    assert free.control_timing.rate_range == (5625.0, 10000.0)
    # a magnitude runs at its boundary, as fixed mode runs at the configured value
    assert free.action_noise.additive_std == pytest.approx(0.025)
    assert free.observation_noise.object_rotation_step_std_rad == pytest.approx(0.01)
    at_limits = episode_randomization(base, adr, adr.limit_values(), NO_BOUNDARY)
    assert replace(at_limits, mode="adr") == base
    # the boundary choice: a fraction of episodes, uniform over boundaries
    choices = np.array([choose_boundary(rng, adr) for _ in range(20000)])
    assert (choices != NO_BOUNDARY).mean() == pytest.approx(0.4, abs=0.015)
    assert set(np.unique(choices[choices != NO_BOUNDARY])) == set(range(len(adr.boundaries)))


def test_a_batch_in_adr_mode_starts_at_nominal_and_reports_each_episodes_boundary():
    config = EnvConfig(randomization=replace(Randomization(), mode="adr", adr=AdrConfig(boundary_fraction=1.0)))
    batch = ReorientBatch(config.with_options(timeout_s=0.16), 4, seed=2)
    batch.reset(2)
    nominal_mass = batch.nominal.body_mass[batch.nominal.randomized_bodies]
    for model in batch.models:
        np.testing.assert_allclose(model.body_mass[batch.nominal.randomized_bodies], nominal_mass)
    assert (batch.effects.action_additive_std == 0.0).all() and not batch.effects.delayed.any()
    full = batch.adr_table.limit_values()
    batch.set_adr_values(full)
    hold = np.full((4, 20), 5)
    batch.step(hold)
    result = batch.step(hold)  # every episode times out after 2 steps and restarts inside the full ranges
    assert result.info["episode_done"].all() and (result.info["adr_boundary"] >= 0).all()
    assert (batch.adr_boundary >= 0).all() and (batch.adr_boundary < len(full)).all()
    with pytest.raises(ValueError, match="boundaries"):
        batch.set_adr_values(full[:-1])
    fixed = ReorientBatch(EnvConfig(), 1, seed=0)
    with pytest.raises(ValueError, match="randomization.mode is fixed"):
        fixed.set_adr_values(full)


def test_inverted_thresholds_are_refused():
    with pytest.raises(ConfigError, match="low_threshold"):
        table(high_threshold=2.0, low_threshold=5.0)
