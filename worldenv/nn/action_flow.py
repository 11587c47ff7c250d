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

``reach`` sets the neighbourhood: the tokens within ``reach`` of a token on each axis
((2 reach + 1)^2 of them; 1 is 3x3). A token spans 8 pixels of a 64-pixel frame, so
reach 1 sees motion of up to about a token per frame; the reacher's forearm tip moves
further than that under a held push, and that is where the dream's arm comes apart.
:func:`widen` grows a trained map to a larger reach without changing what it computes,
so a wider flow fine-tunes from a narrower one.
"""

import torch
import torch.nn.functional as F
from torch import nn

from worldenv.nn.batch_invariant import BatchInvariantLinear


def neighbourhood_size(reach: int) -> int:
    return (2 * reach + 1) ** 2


def widen(displacement: torch.Tensor, channels: int, reach: int, new_reach: int) -> torch.Tensor:
    """The weight of a ``displacement`` map of neighbourhood ``reach`` as one of ``new_reach``
    (>= reach) that computes the same: each old neighbour's columns move to the same
    offset in the larger neighbourhood, and the new ring's columns are zero."""
    if new_reach < reach:
        raise ValueError(f"expected new_reach >= reach ({reach}), got {new_reach}")
    side, new_side, block = 2 * reach + 1, 2 * new_reach + 1, 3 * channels
    if displacement.shape[1] != side * side * block:
        raise ValueError(
            f"expected a displacement weight with {side * side * block} columns for reach {reach} and "
            f"{channels} channels, got shape {tuple(displacement.shape)}"
        )
    wide = displacement.new_zeros(displacement.shape[0], new_side * new_side * block)
    shift = new_reach - reach
    for i in range(side):
        for j in range(side):
            old, new = i * side + j, (i + shift) * new_side + (j + shift)
            wide[:, new * block : (new + 1) * block] = displacement[:, old * block : (old + 1) * block]
    return wide


class ActionFlow(nn.Module):
    coordinates: torch.Tensor  # a buffer (register_buffer below), declared for the checker

    def __init__(self, channels: int, grid: int, actions: int, width: int, reach: int = 1):
        """``actions``: entries of the action condition (action_dim x action_history);
        ``reach``: neighbourhood half-width in tokens (module docstring)."""
        super().__init__()
        if reach < 1:
            raise ValueError(f"expected an ActionFlow reach of at least 1 token, got {reach}")
        self.grid, self.actions, self.reach = grid, actions, reach
        axis = torch.linspace(-1.0, 1.0, grid)
        v, u = torch.meshgrid(axis, axis, indexing="ij")
        self.register_buffer("coordinates", torch.stack([u, v], dim=-1).reshape(grid * grid, 2), persistent=False)
        # Neighbourhood tokens x (value, u * value, v * value) -> one latent displacement per action entry.
        self.displacement = BatchInvariantLinear(neighbourhood_size(reach) * 3 * channels, actions * channels)
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
        r, g, side = self.reach, self.grid, 2 * self.reach + 1
        padded = F.pad(grid, (r, r, r, r))  # zeros beyond the frame's edge
        neighbourhood = torch.cat([padded[:, :, i : i + g, j : j + g] for i in range(side) for j in range(side)], dim=1)
        neighbourhood = neighbourhood.permute(0, 2, 3, 1).reshape(B, T, N, side * side * 3 * C)
        per_action = self.displacement(neighbourhood).reshape(B, T, N, self.actions, C)
        # Summed one action entry at a time, not by einsum: einsum becomes a batched matmul whose
        # CPU kernel, and so its last bits, change with the batch (nn/batch_invariant.py), while
        # an elementwise product and sum round alike in every batch. No slower on the CPU.
        weights = actions.to(per_action.dtype)[:, :, None, :, None]  # (B, T, 1, actions, 1)
        moved = per_action[:, :, :, 0] * weights[:, :, :, 0]
        for entry in range(1, self.actions):
            moved = moved + per_action[:, :, :, entry] * weights[:, :, :, entry]
        return self.embed(moved)
