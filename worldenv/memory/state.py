"""``DreamState``: what a batch of dreams carries from one frame to the next besides the
KV cache: the newest committed latent (each token's "previous frame" input) and the
newest actions (the older part of each frame's action condition)."""

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class DreamState:
    last_latent: Tensor  # (B, N, C): the newest committed frame's latent; zeros before the first
    recent_actions: Tensor  # (B, P, A): the newest committed frames' actions, oldest first; zeros before the first

    @classmethod
    def new(
        cls,
        batch: int,
        tokens_per_frame: int,
        latent_channels: int,
        action_dim: int,
        past_count: int,
        device: torch.device | str,
        dtype: torch.dtype,
        past_actions: Tensor | None = None,
    ) -> "DreamState":
        """The state of ``batch`` fresh dreams. ``past_actions`` (B, P, A), oldest first: the
        actions that preceded the first frame to come, of which the last ``past_count`` are
        kept (zeros in front when P is smaller, as at an episode's start)."""
        state = cls(
            torch.zeros(batch, tokens_per_frame, latent_channels, device=device, dtype=dtype),
            torch.zeros(batch, past_count, action_dim, device=device, dtype=dtype),
        )
        if past_actions is not None:
            if past_actions.ndim != 3 or past_actions.shape[0] != batch or past_actions.shape[2] != action_dim:
                raise ValueError(f"past_actions: expected shape ({batch}, P, {action_dim}), got {tuple(past_actions.shape)}")
            kept = min(past_actions.shape[1], past_count)
            if kept:
                state.recent_actions[:, -kept:] = past_actions[:, -kept:].to(dtype)
        return state

    def reset(self, mask: Tensor | None = None) -> None:
        """Forget everything of the dreams where ``mask`` (B,) is True (all if None)."""
        if mask is None:
            self.last_latent.zero_()
            self.recent_actions.zero_()
            return
        self.last_latent.masked_fill_(mask[:, None, None], 0.0)
        self.recent_actions.masked_fill_(mask[:, None, None], 0.0)

    def replace_rows(self, rows: Tensor, other: "DreamState") -> None:
        """Copy all of ``other`` (the state of ``len(rows)`` dreams) into the dreams ``rows``."""
        self.last_latent[rows] = other.last_latent
        self.recent_actions[rows] = other.recent_actions

    def advance(self, latents: Tensor, actions: Tensor) -> None:
        """After committing frames ``latents`` (B, count, N, C) that the actions ``actions``
        (B, count, A) led to. Stores detached copies: the state never joins a graph."""
        self.last_latent.copy_(latents[:, -1].detach())
        past = self.recent_actions.shape[1]
        if past:
            history = torch.cat([self.recent_actions, actions.detach().to(self.recent_actions.dtype)], dim=1)
            self.recent_actions.copy_(history[:, -past:])
