"""Distillation pieces that the tiny training runs in test_training.py cannot see."""

import numpy as np
import pytest
import torch
from test_world_model import context, tiny_world_model

from worldenv.config import ConfigError
from worldenv.diffusion.noise import counter_noise
from worldenv.distill.base import last_frame_velocity
from worldenv.distill.consistency import ConsistencyConfig
from worldenv.distill.self_forcing import self_rollout
from worldenv.nn.tokenizer import to_uint8
from worldenv.world_model import WorldModel


@pytest.mark.parametrize("commit", ["latent", "frame"])
def test_self_forcing_rollout_is_the_dream_at_one_step(commit):
    """Training rolls out exactly what WorldModel.step dreams with one Euler step: same
    context, same noise, same actions, same commit -> the same frames, bit for bit."""
    base = tiny_world_model(2)
    world = WorldModel(base.tokenizer, base.backbone, batch=2, sampler="euler", sampling_steps=1, commit=commit)
    frames, actions = context(2, frames=3)
    plan = np.random.default_rng(3).uniform(-1, 1, (2, 3, 2)).astype(np.float32)
    seeds = torch.tensor([11, 12])
    world.reset(frames, actions, seeds)
    dreamed = [world.step(plan[:, k])[0] for k in range(3)]

    latents = world.tokenizer.encode(torch.from_numpy(frames).flatten(0, 1)).reshape(2, 3, 64, 4)
    noises = [counter_noise(seeds, torch.full((2,), 3 + k), (64, 4)) for k in range(3)]
    all_actions = torch.cat([torch.from_numpy(actions), torch.from_numpy(plan)], dim=1)  # (B, 6, A)
    with torch.no_grad():
        samples, committed = self_rollout(
            world.backbone, latents, all_actions, noises, grad=False, tokenizer=world.tokenizer if commit == "frame" else None
        )
    for k, sample in enumerate(samples):
        assert torch.equal(to_uint8(world.tokenizer.decode(sample.reshape(2, 8, 8, 4))), dreamed[k])
    assert torch.equal(committed[-1], world.state.last_latent)
    assert torch.equal(committed[-1], samples[-1]) == (commit == "latent")


@pytest.mark.parametrize("steps", [1, 2])
def test_self_forcing_rolls_out_the_latents_world_model_steps_to(steps):
    """``sampling_steps`` Euler steps a frame: the rollout Self-Forcing trains on and the
    dream WorldModel serves give the same latent at every frame, bit for bit."""
    base = tiny_world_model(2, action_history=2)
    world = WorldModel(base.tokenizer, base.backbone, batch=2, sampler="euler", sampling_steps=steps)
    frames, actions = context(2, frames=3)
    plan = np.random.default_rng(4).uniform(-1, 1, (2, 3, 2)).astype(np.float32)
    seeds = torch.tensor([21, 22])
    world.reset(frames, actions, seeds)
    stepped = []
    for k in range(3):
        world.step(plan[:, k])
        stepped.append(world.state.last_latent.clone())

    latents = world.tokenizer.encode(torch.from_numpy(frames).flatten(0, 1)).reshape(2, 3, 64, 4)
    noises = [counter_noise(seeds, torch.full((2,), 3 + k), (64, 4)) for k in range(3)]
    all_actions = torch.cat([torch.from_numpy(actions), torch.from_numpy(plan)], dim=1)
    with torch.no_grad():
        samples, committed = self_rollout(world.backbone, latents, all_actions, noises, grad=False, steps=steps)
    for k in range(3):
        assert torch.equal(samples[k], stepped[k]) and torch.equal(committed[k], stepped[k])


def test_self_forcing_rollout_carries_gradients_to_the_student_only_through_its_frames():
    base = tiny_world_model(2)
    student = base.backbone.train().requires_grad_(True)
    latents = torch.randn(2, 2, 64, 4)
    samples, _ = self_rollout(student, latents, torch.zeros(2, 4, 2), [torch.randn(2, 64, 4) for _ in range(2)], grad=True)
    samples[-1].square().mean().backward()
    assert all(s.requires_grad for s in samples)
    assert student.embed.weight.grad is not None and student.embed.weight.grad.abs().sum() > 0


def test_guided_teacher_target_is_what_the_guided_dream_samples():
    """Guidance distillation regresses the student on the velocity the dream would use
    with the same guidance: one Euler step of it from the dream's noise is the dream's frame."""
    base = tiny_world_model(2)
    guidance = 1.7
    world = WorldModel(base.tokenizer, base.backbone, batch=2, sampler="euler", sampling_steps=1, action_guidance=guidance)
    frames, actions = context(2, frames=3)
    push = np.array([[0.9, -0.4], [-0.7, 0.8]], np.float32)
    seeds = torch.tensor([5, 6])
    world.reset(frames, actions, seeds)
    world.step(push)
    dreamed = world.state.last_latent.float()

    latents = world.tokenizer.encode(torch.from_numpy(frames).flatten(0, 1)).reshape(2, 3, 64, 4)
    noise = counter_noise(seeds, torch.full((2,), 3), (64, 4))
    x = torch.cat([latents, noise[:, None]], dim=1)
    t = torch.tensor([[0.0, 0.0, 0.0, 1.0]] * 2)
    all_actions = torch.cat([torch.from_numpy(actions), torch.from_numpy(push)[:, None]], dim=1)
    with torch.no_grad():
        guided = last_frame_velocity(world.backbone, x, t, all_actions, guidance)
        plain = last_frame_velocity(world.backbone, x, t, all_actions)
    torch.testing.assert_close(noise - guided, dreamed, atol=2e-6, rtol=0)
    assert (guided - plain).abs().max() > 1e-3, "guidance changes the target"


def test_teacher_guidance_must_be_positive(tmp_path):
    with pytest.raises(ConfigError, match="teacher_guidance: expected a positive number"):
        ConsistencyConfig(data=None, bundle="b", run="r", teacher_guidance=0.0).validate()
