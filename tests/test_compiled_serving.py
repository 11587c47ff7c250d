"""``compile=True``: the cache-free networks under ``torch.compile``
(``world_model.compile_networks``), eager where compiling fails."""

import logging

import numpy as np
import pytest
import torch

from worldenv.dream_config import DreamConfig
from worldenv.world_model import WorldModel

STEPS = 6


def rollout(checkpoint, compile: bool, batch: int = 2):
    """Frames, rewards and termination logits of a seeded dream under fixed actions."""
    from worldenv.checkpoint import load_bundle
    from worldenv.contexts import load_start_contexts

    model = WorldModel.from_bundle(checkpoint, batch, commit="frame", compile=compile)
    starts = load_start_contexts(load_bundle(checkpoint))
    model.reset(starts.frames[:batch], starts.actions[:batch], seeds=torch.arange(batch))
    actions = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (STEPS, batch, 2)).astype(np.float32))
    out = [model.advance(action) for action in actions]
    return model, [torch.stack(part).float() for part in zip(*out)]


@pytest.mark.slow  # Inductor compiles each network at its first shape: minutes on two busy cores
def test_compiled_and_eager_dreams_agree(reacher_dream):
    """Within float rounding: frames within one level on average (uint8 rounding of a decoder
    whose sums Inductor orders otherwise), rewards and logits to 1e-3."""
    _, (eager_frames, eager_rewards, eager_logits) = rollout(reacher_dream, compile=False)
    model, (frames, rewards, logits) = rollout(reacher_dream, compile=True)
    assert not model.tokenizer.decode.failed and not model.backbone.blocks[0].mlp.forward.failed
    assert (frames - eager_frames).abs().mean() < 1.0
    torch.testing.assert_close(rewards, eager_rewards, atol=1e-3, rtol=0)
    torch.testing.assert_close(logits, eager_logits, atol=1e-3, rtol=0)


def test_a_network_that_fails_to_compile_is_served_eagerly(reacher_dream, monkeypatch, caplog):
    def failing_compile(fn, **options):
        def compiled(*args):
            raise RuntimeError("no C compiler here")

        return compiled

    monkeypatch.setattr(torch, "compile", failing_compile)
    _, eager = rollout(reacher_dream, compile=False)
    with caplog.at_level(logging.WARNING, logger="worldenv.world_model"):
        model, served = rollout(reacher_dream, compile=True)
    assert model.tokenizer.decode.failed
    for got, expected in zip(served, eager):
        torch.testing.assert_close(got, expected, atol=0, rtol=0)  # eager: the same bits
    failures = [record.getMessage() for record in caplog.records]
    assert any("torch.compile of the tokenizer's decoder failed (RuntimeError: no C compiler here)" in m for m in failures)
    assert len(failures) == 3  # once per network: decoder, encoder, the tiny bundle's one block


def test_compile_is_a_boolean_of_the_dream_config():
    assert DreamConfig(compile=True).world_model_kwargs(DreamConfig().serving({}))["compile"] is True
    with pytest.raises(ValueError, match="expected compile to be True or False"):
        DreamConfig(compile="yes")
