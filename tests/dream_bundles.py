"""Tiny, untrained dream checkpoints for env tests: real bundle files (tokenizer, backbone,
start contexts from MuJoCo), random weights, built in a second."""

from dataclasses import asdict
from pathlib import Path

import torch

from worldenv.checkpoint import save_bundle
from worldenv.contexts import COMPONENT, record_start_contexts
from worldenv.nn.backbone import Backbone, BackboneConfig
from worldenv.nn.tokenizer import Tokenizer, TokenizerConfig
from worldenv.probe import StateProbe

ACTION_DIMS = {"reacher": 2, "duo": 4, "cartpole": 1, "panorama": 2}
AGENTS = {"duo": 2}


def tiny_dream_bundle(directory: Path, scene: str = "reacher", contexts: int = 6, length: int = 3,
                      memory_frames: int = 0, probe_outputs: int = 0) -> Path:
    """``memory_frames``: long-term memory slots; ``probe_outputs``: add an (untrained) state probe."""
    torch.manual_seed(0)
    tokenizer_config = TokenizerConfig(channels=(8, 8, 16), latent_channels=4)
    backbone_config = BackboneConfig(latent_channels=4, grid=8, action_dim=ACTION_DIMS[scene], rewards=AGENTS.get(scene, 1),
                                     width=32, depth=1, heads=2, sink_frames=1, window_frames=2,
                                     memory_frames=memory_frames)
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
