"""Automatic domain randomization: which ranges widen, how an env's episode ranges are drawn, and the ADR state.

Every randomized quantity of the env config becomes one parameter whose range starts at its nominal value and
may widen toward the configured value, its hard limit. A tuple range such as mass_scale [0.5, 1.5] has two
boundaries (lo moves from 1 down to 0.5, hi from 1 up to 1.5); a magnitude such as an observation-noise std has
one (from 0 up to the configured std), and every episode runs at the boundary itself, as fixed mode runs at the
configured std. So a run whose boundaries all reached their limits trains on exactly the distribution `inhand
eval` tests (drawing a magnitude uniformly below its boundary would leave full-range training at about half the
noise the eval applies).
An episode that evaluates a boundary runs with that one quantity fixed at it; its consecutive successes go to the
boundary's buffer, and a full buffer's mean moves the boundary (OpenAI 2019, DeXtreme 2022).

The env only needs the boundary values (`Randomization` per episode: `episode_randomization`); the learner owns
the buffers (`AdrState`), so the same state serves envs in this process, in worker processes and on Ray actors.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from sim.config import AdrConfig, EnvConfig, Randomization
from sim.config_loading import ConfigError

NO_BOUNDARY = -1

# (group, field, nominal, kind): "range" fields are [lo, hi] pairs around the nominal value; "magnitude" fields
# grow from the nominal value (no effect) to the configured one
PARAMETERS: tuple[tuple[str, str, float, str], ...] = (
    ("physics", "object_size_scale", 1.0, "range"),
    ("physics", "mass_scale", 1.0, "range"),
    ("physics", "friction_scale", 1.0, "range"),
    ("physics", "damping_scale", 1.0, "range"),
    ("physics", "actuator_gain_scale", 1.0, "range"),
    ("physics", "joint_limit_std_rad", 0.0, "magnitude"),
    ("physics", "gravity_std", 0.0, "magnitude"),
    ("action_noise", "additive_std", 0.0, "magnitude"),
    ("action_noise", "correlated_std", 0.0, "magnitude"),
    ("action_noise", "multiplicative_std", 0.0, "magnitude"),
    ("action_delay", "probability", 0.0, "magnitude"),
    # the jitter's rate starts at the configured upper rate (the smallest jitter) and widens down to the lower
    ("control_timing", "rate_range", math.nan, "range"),
    ("backlash", "max_width_rad", 0.0, "magnitude"),
    ("random_forces", "acceleration_std", 0.0, "magnitude"),
    ("observation_noise", "fingertip_step_std_m", 0.0, "magnitude"),
    ("observation_noise", "fingertip_episode_std_m", 0.0, "magnitude"),
    ("observation_noise", "object_position_step_std_m", 0.0, "magnitude"),
    ("observation_noise", "object_position_episode_std_m", 0.0, "magnitude"),
    ("observation_noise", "object_rotation_step_std_rad", 0.0, "magnitude"),
    ("observation_noise", "object_rotation_episode_std_rad", 0.0, "magnitude"),
    ("marker_freeze", "rate_hz", 0.0, "magnitude"),
)


@dataclass(frozen=True)
class Boundary:
    """One movable end of a parameter's range: it starts at `nominal` and may move as far as `limit`."""

    name: str  # "physics.mass_scale.lo", "observation_noise.fingertip_step_std_m"
    group: str
    field: str
    side: str  # "lo" or "hi" of a range; "hi" for a magnitude
    kind: str
    nominal: float
    limit: float


@dataclass(frozen=True)
class AdrTable:
    """The boundaries ADR moves for one env config: every enabled, non-degenerate randomized quantity."""

    boundaries: tuple[Boundary, ...]
    config: AdrConfig = field(default_factory=AdrConfig)

    @classmethod
    def from_randomization(cls, randomization: Randomization) -> AdrTable:
        """The table of `randomization`'s enabled groups, limits = their configured values."""
        boundaries = []
        for group, name, nominal, kind in PARAMETERS:
            section = getattr(randomization, group)
            if not section.enabled:
                continue
            value = getattr(section, name)
            if kind == "magnitude":
                candidates = [("hi", nominal, float(value))]
            elif group == "control_timing":
                candidates = [("lo", float(value[1]), float(value[0]))]
            else:
                candidates = [("lo", nominal, float(value[0])), ("hi", nominal, float(value[1]))]
            for side, start, limit in candidates:
                if start != limit:
                    label = f"{group}.{name}" + (f".{side}" if kind == "range" else "")
                    boundaries.append(Boundary(label, group, name, side, kind, start, limit))
        return cls(tuple(boundaries), randomization.adr)

    @property
    def names(self) -> list[str]:
        """Boundary names, in order."""
        return [boundary.name for boundary in self.boundaries]

    def nominal_values(self) -> np.ndarray:
        """Every boundary at its nominal value (K,)."""
        return np.array([boundary.nominal for boundary in self.boundaries])

    def limit_values(self) -> np.ndarray:
        """Every boundary at its hard limit (K,)."""
        return np.array([boundary.limit for boundary in self.boundaries])


def adr_table(config: EnvConfig) -> AdrTable | None:
    """The ADR table of an env config whose randomization.mode is adr; None for fixed ranges."""
    return AdrTable.from_randomization(config.randomization) if config.randomization.mode == "adr" else None


def choose_boundary(rng: np.random.Generator, table: AdrTable) -> int:
    """The boundary a new episode evaluates: NO_BOUNDARY, or with boundary_fraction a uniform choice."""
    if not table.boundaries or rng.random() >= table.config.boundary_fraction:
        return NO_BOUNDARY
    return int(rng.integers(len(table.boundaries)))


def episode_randomization(base: Randomization, table: AdrTable, values: np.ndarray,
                          boundary: int) -> Randomization:
    """One episode's ranges: `base` with each ADR quantity at its current boundaries `values` (K,).

    A range uses [lo, hi] as its current boundaries and a magnitude its boundary value. The evaluated `boundary`
    (if any) pins its quantity: a range to [b, b]; a magnitude is at b either way.
    """
    current: dict[tuple[str, str], dict[str, float]] = {}
    kinds: dict[tuple[str, str], Boundary] = {}
    for index, item in enumerate(table.boundaries):
        current.setdefault((item.group, item.field), {})[item.side] = float(values[index])
        kinds[(item.group, item.field)] = item
    pinned = table.boundaries[boundary] if boundary != NO_BOUNDARY else None
    groups: dict[str, dict[str, Any]] = {}
    for key, sides in current.items():
        group, name = key
        item = kinds[key]
        is_pinned = pinned is not None and (pinned.group, pinned.field) == key
        if item.kind == "magnitude":
            value: Any = sides["hi"]
        elif is_pinned:
            value = (sides[pinned.side], sides[pinned.side])
        else:
            # a side that is no boundary stays as configured (it equals nominal, or it is the timing's upper rate)
            configured = getattr(getattr(base, group), name)
            value = (sides.get("lo", configured[0]), sides.get("hi", configured[1]))
        groups.setdefault(group, {})[name] = value
    return replace(base, mode="fixed",
                   **{group: replace(getattr(base, group), **fields) for group, fields in groups.items()})


@dataclass
class AdrState:
    """Boundary values, their performance buffers and how often each moved; the learner's half of ADR."""

    table: AdrTable
    values: np.ndarray = field(init=False)
    buffers: list[list[float]] = field(init=False)
    widened: np.ndarray = field(init=False)
    narrowed: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        count = len(self.table.boundaries)
        self.values = self.table.nominal_values()
        self.buffers = [[] for _ in range(count)]
        self.widened = np.zeros(count, dtype=np.int64)
        self.narrowed = np.zeros(count, dtype=np.int64)

    def record(self, boundary: int, successes: float) -> None:
        """Add one evaluation episode's consecutive successes; a full buffer moves its boundary and empties."""
        if boundary == NO_BOUNDARY:
            return
        buffer = self.buffers[boundary]
        buffer.append(float(successes))
        config = self.table.config
        if len(buffer) < config.buffer_size:
            return
        mean = float(np.mean(buffer))
        buffer.clear()
        item = self.table.boundaries[boundary]
        step = (item.limit - item.nominal) / config.steps
        if mean >= config.high_threshold:
            self.values[boundary] = _toward(self.values[boundary] + step, item.nominal, item.limit)
            self.widened[boundary] += 1
        elif mean < config.low_threshold:
            self.values[boundary] = _toward(self.values[boundary] - step, item.nominal, item.limit)
            self.narrowed[boundary] += 1

    def fractions(self) -> np.ndarray:
        """How far each boundary has moved from nominal to its limit, in [0, 1] (K,)."""
        span = self.table.limit_values() - self.table.nominal_values()
        return (self.values - self.table.nominal_values()) / span

    def entropy(self) -> float:
        """ADR entropy: the mean over parameters of log(range width), widths floored at 1e-3 of the full width
        so a range still at nominal counts as narrow rather than minus infinity (nats per parameter)."""
        widths: dict[tuple[str, str], list[float]] = {}
        for index, item in enumerate(self.table.boundaries):
            widths.setdefault((item.group, item.field), []).append(abs(self.values[index] - item.nominal))
        full: dict[tuple[str, str], float] = {}
        for item in self.table.boundaries:
            full[(item.group, item.field)] = full.get((item.group, item.field), 0.0) + abs(item.limit - item.nominal)
        if not widths:
            return 0.0
        return float(np.mean([math.log(max(sum(parts), 1e-3 * full[key])) for key, parts in widths.items()]))

    def metrics(self) -> dict[str, float]:
        """Scalars for the metrics log: entropy, mean fraction and each boundary's fraction of its full range."""
        fractions = self.fractions()
        row = {"adr_entropy": self.entropy(),
               "adr_fraction_mean": float(fractions.mean()) if len(fractions) else 0.0}
        row.update({f"adr/{name}": float(fraction) for name, fraction in zip(self.table.names, fractions)})
        return row

    def to_mapping(self) -> dict[str, Any]:
        """Plain data for a checkpoint."""
        return {"names": self.table.names, "values": [float(value) for value in self.values],
                "buffers": [list(buffer) for buffer in self.buffers], "widened": self.widened.tolist(),
                "narrowed": self.narrowed.tolist()}

    def restore(self, mapping: dict[str, Any], source: str) -> None:
        """Load a checkpoint's state; its boundaries must be this table's."""
        if list(mapping["names"]) != self.table.names:
            raise ConfigError(f"{source}: the ADR state was saved for boundaries {list(mapping['names'])}, "
                              f"this env config has {self.table.names}")
        values = np.asarray(mapping["values"], dtype=float)
        low = np.minimum(self.table.nominal_values(), self.table.limit_values())
        high = np.maximum(self.table.nominal_values(), self.table.limit_values())
        if np.any(values < low) or np.any(values > high):
            raise ConfigError(f"{source}: ADR boundary values {values.tolist()} lie outside nominal..limit of this "
                              f"env config")
        self.values = values
        self.buffers = [list(map(float, buffer)) for buffer in mapping["buffers"]]
        self.widened = np.asarray(mapping["widened"], dtype=np.int64)
        self.narrowed = np.asarray(mapping["narrowed"], dtype=np.int64)


def _toward(value: float, nominal: float, limit: float) -> float:
    """`value` clipped to the segment between nominal and limit (either may be the larger)."""
    return float(np.clip(value, min(nominal, limit), max(nominal, limit)))
