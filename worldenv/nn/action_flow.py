"""How an action moves what is on screen, to first order, as a per-token input.

A torque that turns a reacher's arm, a push on a cart, a turn of a camera: each moves
the picture by a small motion field, and for a small motion the change of a frame is
linear in the action and in the frame's local spatial derivatives, with coefficients
that depend on where the token sits (a rotation about a point p moves the pixel at x
along (x - p) turned by 90 degrees). The transformer can learn that product of the
action and the frame's local geometry, but slowly: neither factor alone says anything
about the next frame, so the plain condition (an action embedding that modulates
every token alike) gets no first-order gradient towards it. Measured on reacher
latents (``benchmarks/action_pathways.py``): after 1500 steps a next-frame regressor
with the action only in its adaLN condition answers a push with 0.1 % of MuJoCo's
change (0.4 % when trained on counterfactual pairs too); with ActionFlow, 10 % (20 %).

``ActionFlow`` gives the product directly: for each token, a linear map of the previous
frame's 3x3 latent neighbourhood and of the same values scaled by the token's
coordinates (so rotations and zooms about any point, not only translations, are
linear in its input), one map per action entry, weighted by that entry and summed:
a latent-space displacement per token, embedded into the backbone's width. Its output
layer starts at zero, so a backbone with it starts as one without.
"""

import torch
import torch.nn.functional as F
from torch import nn

from worldenv.nn.batch_invariant import BatchInvariantLinear


class ActionFlow(nn.Module):
    def __init__(self, channels: int, grid: int, actions: int, width: int):
        """``actions``: entries of the action condition (action_dim x action_history)."""
        super().__init__()
        self.grid, self.actions = grid, actions
        axis = torch.linspace(-1.0, 1.0, grid)
        v, u = torch.meshgrid(axis, axis, indexing="ij")
        self.register_buffer("coordinates", torch.stack([u, v], dim=-1).reshape(grid * grid, 2), persistent=False)
        # Neighbourhood of 9 tokens x (value, u * value, v * value) -> one latent displacement per action entry.
        self.displacement = BatchInvariantLinear(9 * 3 * channels, actions * channels)
        self.embed = BatchInvariantLinear(channels, width)
        nn.init.zeros_(self.embed.weight)
        nn.init.zeros_(self.embed.bias)

    def forward(self, previous: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """previous: (B, T, N, C) latent of the frame before each frame; actions: (B, T, actions)
        -> (B, T, N, width)."""
        B, T, N, C = previous.shape
        u, v = self.coordinates[:, :1].to(previous.dtype), self.coordinates[:, 1:].to(previous.dtype)
        features = torch.cat([previous, u * previous, v * previous], dim=-1)  # (B, T, N, 3C)
        grid = features.reshape(B * T, self.grid, self.grid, 3 * C).permute(0, 3, 1, 2)
        padded = F.pad(grid, (1, 1, 1, 1))  # zeros beyond the frame's edge
        g = self.grid
        neighbourhood = torch.cat([padded[:, :, i : i + g, j : j + g] for i in range(3) for j in range(3)], dim=1)
        neighbourhood = neighbourhood.permute(0, 2, 3, 1).reshape(B, T, N, 9 * 3 * C)
        per_action = self.displacement(neighbourhood).reshape(B, T, N, self.actions, C)
        # Summed one action entry at a time, not by einsum: einsum becomes a batched matmul whose
        # CPU kernel, and so its last bits, change with the batch (nn/batch_invariant.py), while
        # an elementwise product and sum round alike in every batch. No slower on the CPU.
        weights = actions.to(per_action.dtype)[:, :, None, :, None]  # (B, T, 1, actions, 1)
        moved = per_action[:, :, :, 0] * weights[:, :, :, 0]
        for entry in range(1, self.actions):
            moved = moved + per_action[:, :, :, entry] * weights[:, :, :, entry]
        return self.embed(moved)
