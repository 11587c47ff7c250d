"""Tiny, untrained dream checkpoints for env tests: real bundle files (tokenizer, backbone,
start contexts from MuJoCo), random weights, built in a second."""

from dataclasses import asdict
from pathlib import Path

import torch

from worldenv.checkpoint import save_bundle
from worldenv.contexts import COMPONENT, record_start_contexts
from worldenv.eval.probe import StateProbe
from worldenv.nn.backbone import Backbone, BackboneConfig
from worldenv.nn.tokenizer import Tokenizer, TokenizerConfig

ACTION_DIMS = {"reacher": 2, "duo": 4, "cartpole": 1, "panorama": 2}
AGENTS = {"duo": 2}


def tiny_dream_bundle(
    directory: Path,
    scene: str = "reacher",
    contexts: int = 6,
    length: int = 3,
    memory_frames: int = 0,
    probe_outputs: int = 0,
    action_dim: int | None = None,
) -> Path:
    """``memory_frames``: long-term memory slots; ``probe_outputs``: add an (untrained) state probe;
    ``action_dim``: a ``gym:`` scene's (the built-in scenes' are in ``ACTION_DIMS``)."""
    torch.manual_seed(0)
    tokenizer_config = TokenizerConfig(channels=(8, 8, 16), latent_channels=4)
    backbone_config = BackboneConfig(
        latent_channels=4,
        grid=8,
        action_dim=action_dim or ACTION_DIMS[scene],
        rewards=AGENTS.get(scene, 1),
        width=32,
        depth=1,
        heads=2,
        sink_frames=1,
        window_frames=2,
        memory_frames=memory_frames,
    )
    tokenizer, backbone = Tokenizer(tokenizer_config), Backbone(backbone_config)
    with torch.no_grad():  # adaLN-Zero starts as identity: perturb so frames change from step to step
        for p in backbone.parameters():
            p.add_(0.05 * torch.randn_like(p))
        backbone.heads[-1].bias[-1] = -5.0  # no termination: episodes run to the time limit
    bank, bank_config = record_start_contexts(scene, contexts, length, 64, seed=7)
    components = {
        "tokenizer": (tokenizer, {"model": asdict(tokenizer_config)}),
        "teacher": (backbone, {"model": asdict(backbone_config)}),
        COMPONENT: (bank, bank_config),
    }
    if probe_outputs:
        components["probe"] = (StateProbe(probe_outputs), {"outputs": probe_outputs, "scene": scene})
    return save_bundle(directory, components, {"scene": scene})


def tiny_trained_bundle(root: Path, steps_per_episode: int = 12, **teacher_model) -> Path:
    """A reacher bundle trained here for a few steps (tokenizer, teacher, probe) on 3
    episodes collected in ``root / "data"`` (the last held out), from the preset it writes
    to ``root / "tiny.yaml"``; ``teacher_model`` overrides the teacher's model config."""
    import yaml

    from worldenv.data.collect import CollectConfig, collect
    from worldenv.train import main as train_main

    collect(
        CollectConfig(scene="reacher", episodes=3, steps_per_episode=steps_per_episode, shard_size=3),
        root / "data",
        progress=False,
    )
    common = {"data": {"path": str(root / "data"), "held_out_episodes": 1}, "bundle": str(root / "bundle")}
    train = {"steps": 4, "batch": 2, "warmup": 1, "log_every": 2, "checkpoint_every": 4}
    model = {
        "latent_channels": 4,
        "grid": 8,
        "action_dim": 2,
        "width": 16,
        "depth": 1,
        "heads": 2,
        "sink_frames": 1,
        "window_frames": 2,
        **teacher_model,
    }
    config = {
        "tokenizer": {
            **common,
            "run": str(root / "tok"),
            "model": {"channels": [8, 8, 16], "latent_channels": 4},
            "train": train,
        },
        "teacher": {**common, "run": str(root / "teacher"), "train": train, "model": model},
        "probe": {**common, "steps": 5, "batch": 8},
    }
    (root / "tiny.yaml").write_text(yaml.safe_dump(config))
    for task in ("tokenizer", "teacher", "probe"):
        assert train_main([task, "--config", str(root / "tiny.yaml"), "--no-progress"]) == 0
    return root / "bundle"
