"""Exponential moving average of a model's weights, the weights that get shipped."""

import copy

import torch
from torch import nn


class EMA:
    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        # Warm-up (as in timm/k-diffusion): early on the average follows the model
        # closely instead of remembering its random initialisation.
        decay = min(self.decay, (1 + step) / (10 + step))
        # One fused kernel per dtype, not one per parameter (it matters on a GPU).
        torch._foreach_lerp_(list(self.model.parameters()), [p.detach() for p in model.parameters()], 1 - decay)
        for average, current in zip(self.model.buffers(), model.buffers()):
            average.copy_(current)
