"""MuJoCo environments of the Shadow Hand reorienting a cube, with Dactyl's task and randomizations."""
from __future__ import annotations

import gymnasium

from sim.contract import VecEnv
from sim.vec_env import vec_env_from_config

# id -> task options; every variant is checked by gymnasium's env checker in the tests
VARIANTS: dict[str, dict[str, str]] = {
    "inhand/Reorient-v0": {},
    "inhand/ReorientZ-v0": {"goal_mode": "z"},
    "inhand/ReorientContinuous-v0": {"action_type": "continuous"},
    "inhand/ReorientZContinuous-v0": {"goal_mode": "z", "action_type": "continuous"},
}

for _env_id, _options in VARIANTS.items():
    if _env_id not in gymnasium.registry:
        gymnasium.register(_env_id, entry_point="sim.env:ReorientEnv", kwargs=dict(_options))

__all__ = ["VARIANTS", "VecEnv", "vec_env_from_config"]
