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
        for average, current in zip(self.model.parameters(), model.parameters()):
            average.lerp_(current.detach(), 1 - decay)
        for average, current in zip(self.model.buffers(), model.buffers()):
            average.copy_(current)
