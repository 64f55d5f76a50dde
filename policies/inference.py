"""Deployment side of a trained policy: load (training or inference checkpoint), act with LSTM state, export."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from policies.config import TrainConfig, config_from_mapping
from policies.models import Actor, EnvSpec
from policies.modules import LSTMState
from sim import checkpoint
from sim.atomic import atomic_write
from sim.config_loading import to_mapping
from sim.errors import CheckpointError

ONNX_INPUTS = ("obs", "h", "c")
ONNX_OPSET = 17


class InferencePolicy:
    """The actor with its normalizer, holding the LSTM state of B envs between calls to act()."""

    def __init__(self, actor: Actor, config: TrainConfig) -> None:
        self.actor = actor.eval()
        self.config = config
        self.spec = actor.spec
        self.state: LSTMState = actor.memory.initial_state(1)

    @classmethod
    def load(cls, path: str | Path) -> InferencePolicy:
        """From a training or inference checkpoint file."""
        return cls.from_content(checkpoint.load(path, checkpoint.POLICY_KINDS), path)

    @classmethod
    def from_content(cls, content: dict[str, Any], path: str | Path) -> InferencePolicy:
        """From a loaded training or inference checkpoint (`path` names it in errors)."""
        config = config_from_mapping(content["config"], f"{path} (config)")
        actor = Actor(EnvSpec(**content["spec"]), config.model)
        try:
            actor.load_state_dict(content["actor"])
        except RuntimeError as error:
            raise CheckpointError(f"{path}: actor weights do not fit the checkpoint's own config: {error}") from error
        return cls(actor, config)

    def reset(self, num_envs: int = 1) -> None:
        """Zero the LSTM state for `num_envs` envs (start of an episode or trial)."""
        self.state = self.actor.memory.initial_state(num_envs)

    def reset_envs(self, dones: np.ndarray) -> None:
        """Zero the LSTM state of the envs where dones (B,) is true."""
        keep = torch.as_tensor(~np.asarray(dones, dtype=bool)).unsqueeze(-1).float()
        self.state = (self.state[0] * keep, self.state[1] * keep)

    @torch.no_grad()
    def act(self, policy_obs: np.ndarray, deterministic: bool = True,
            generator: torch.Generator | None = None) -> np.ndarray:
        """Raw policy observations (B, P) -> actions (B, A): bin indices int64, or floats clipped to [-1, 1]."""
        observation = torch.as_tensor(np.asarray(policy_obs, dtype=np.float32))
        if observation.ndim != 2 or observation.shape != (self.state[0].shape[0], self.spec.policy_size):
            raise ValueError(f"policy_obs shape {tuple(observation.shape)}; expected "
                             f"({self.state[0].shape[0]}, {self.spec.policy_size}) (call reset(num_envs) to resize)")
        params, self.state = self.actor(observation, self.state)
        head = self.actor.head
        actions = head.mode(params) if deterministic else head.sample(params, generator)
        if self.spec.action_type == "continuous":
            return actions.clamp(-1.0, 1.0).numpy().astype(np.float32)
        return actions.numpy().astype(np.int64)


def inference_payload(actor: Actor, config: TrainConfig) -> dict[str, Any]:
    """What an inference checkpoint holds: actor weights and normalizer, env spec, config."""
    return {"config": to_mapping(config), "spec": actor.spec.to_mapping(),
            "actor": {name: tensor.detach().cpu() for name, tensor in actor.state_dict().items()}}


def export_inference(policy: InferencePolicy, path: str | Path) -> Path:
    """Write a small inference-only checkpoint (no critic, no optimizer), atomically."""
    return checkpoint.save(path, "inference", inference_payload(policy.actor, policy.config))


class _StatefulPolicy(nn.Module):
    """(obs, h, c) -> (distribution parameters, h, c): the graph that goes into ONNX."""

    def __init__(self, actor: Actor) -> None:
        super().__init__()
        self.actor = actor

    def forward(self, obs: torch.Tensor, hidden: torch.Tensor, cell: torch.Tensor) -> tuple[torch.Tensor, ...]:
        params, (hidden, cell) = self.actor(obs, (hidden, cell))
        return params, hidden, cell


def export_onnx(policy: InferencePolicy, path: str | Path) -> Path:
    """Write a stateful ONNX policy: inputs obs (B, P), h, c (B, H); outputs logits (B, A, K) or mean (B, A), h, c."""
    import onnx

    spec = policy.spec
    output_name = "logits" if spec.action_type == "discrete" else "mean"
    lstm_size = policy.actor.memory.hidden_size
    example = (torch.zeros(1, spec.policy_size), *policy.actor.memory.initial_state(1))
    batch_axis = {0: "batch"}

    def write(temp: Path) -> None:
        with warnings.catch_warnings():
            # the TorchScript exporter is deprecated in favour of the dynamo one, which needs onnxscript
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(_StatefulPolicy(policy.actor).eval(), example, str(temp), input_names=list(ONNX_INPUTS),
                              output_names=[output_name, "h_out", "c_out"], opset_version=ONNX_OPSET,
                              dynamic_axes={name: batch_axis for name in (*ONNX_INPUTS, output_name, "h_out", "c_out")},
                              dynamo=False)
        model = onnx.load(str(temp))
        metadata = {"action_type": spec.action_type, "num_actions": spec.num_actions, "num_bins": spec.num_bins,
                    "policy_size": spec.policy_size, "lstm_size": lstm_size}
        for key, value in metadata.items():
            model.metadata_props.add(key=key, value=str(value))
        onnx.checker.check_model(model)
        onnx.save(model, str(temp))

    return atomic_write(path, write)
