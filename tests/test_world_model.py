"""WorldModel serving: seeded, batch-independent dreams; per-env reset; counter noise; tokenizer basics."""

import numpy as np
import pytest
import torch

from worldenv.diffusion.noise import counter_noise
from worldenv.nn.backbone import Backbone, BackboneConfig
from worldenv.nn.batch_invariant import MIN_ROWS, BatchInvariantLinear, in_fixed_chunks, pad_rows
from worldenv.nn.tokenizer import Tokenizer, TokenizerConfig, edge_weights, to_uint8, to_unit_range
from worldenv.world_model import WorldModel, resolve_dtype


def tiny_world_model(
    batch: int, action_flow: bool = False, dtype: torch.dtype = torch.float32, action_history: int = 1
) -> WorldModel:
    torch.manual_seed(0)
    tokenizer = Tokenizer(TokenizerConfig(channels=(8, 8, 16), latent_channels=4))
    backbone = Backbone(
        BackboneConfig(
            latent_channels=4,
            grid=8,
            action_dim=2,
            width=32,
            depth=2,
            heads=2,
            sink_frames=1,
            window_frames=2,
            action_flow=action_flow,
            action_history=action_history,
        )
    )
    with torch.no_grad():
        for p in backbone.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return WorldModel(tokenizer, backbone, batch=batch, sampler="heun", sampling_steps=2, dtype=dtype)


def context(batch: int, frames: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    return (
        rng.integers(0, 256, (batch, frames, 64, 64, 3), dtype=np.uint8),
        rng.uniform(-1, 1, (batch, frames, 2)).astype(np.float32),
    )


def rollout(model: WorldModel, frames, actions, seeds, steps: int = 4, action_seed: int = 1):
    model.reset(frames, actions, seeds)
    rng = np.random.default_rng(action_seed)
    plan = rng.uniform(-1, 1, (steps, 4, 2)).astype(np.float32)[:, : len(seeds)]
    outputs = [model.step(a) for a in plan]
    return torch.stack([o[0] for o in outputs], 1), torch.stack([o[1] for o in outputs], 1)


def test_same_seeds_same_dream_and_different_seeds_differ():
    frames, actions = context(2)
    a, ra = rollout(tiny_world_model(2), frames, actions, seeds=[5, 6])
    b, rb = rollout(tiny_world_model(2), frames, actions, seeds=[5, 6])
    c, _ = rollout(tiny_world_model(2), frames, actions, seeds=[7, 8])
    assert a.dtype == torch.uint8 and a.shape == (2, 4, 64, 64, 3)
    assert torch.equal(a, b) and torch.equal(ra, rb)
    assert not torch.equal(a, c)


def test_action_guidance_scales_what_the_action_changes():
    """v(0) + g (v(a) - v(0)): g = 1 is the model as trained, g = 0 answers as if the action
    were zero (on the sampled frame; the commit keeps the real action), g = 2 moves further."""
    frames, actions = context(2)
    push = np.full((2, 2), 0.9, np.float32)

    def first_frame(guidance: float, action: np.ndarray) -> torch.Tensor:
        model = tiny_world_model(2)
        model.action_guidance = guidance
        model.reset(frames, actions, [5, 6])
        return model.step(action)[0]

    plain = first_frame(1.0, push)
    assert torch.equal(first_frame(0.0, push), first_frame(1.0, np.zeros_like(push)))
    assert not torch.equal(first_frame(0.0, push), plain)
    neutral, doubled = first_frame(0.0, push).float(), first_frame(2.0, push).float()
    assert (doubled - neutral).abs().mean() > (plain.float() - neutral).abs().mean()


@pytest.mark.parametrize("action_flow", [False, True])
@pytest.mark.parametrize("threads", [1, 2])
def test_a_dream_does_not_depend_on_its_batch(threads, action_flow):
    """Env 1 of a batch of 4 dreams, bit for bit, what it dreams alone with the same seed
    and actions (nn/batch_invariant.py: small-row kernels would otherwise round differently)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        frames, actions = context(4)
        batch, batch_rewards = rollout(tiny_world_model(4, action_flow), frames, actions, seeds=[1, 2, 3, 4])
        plan = np.random.default_rng(1).uniform(-1, 1, (4, 4, 2)).astype(np.float32)
        alone = tiny_world_model(1, action_flow)
        alone.reset(frames[1:2], actions[1:2], [2])
        steps = [alone.step(plan[i, 1:2]) for i in range(4)]
    finally:
        torch.set_num_threads(previous)
    assert torch.equal(batch[1], torch.stack([s[0][0] for s in steps]))
    assert torch.equal(batch_rewards[1], torch.stack([s[1][0] for s in steps]))


def test_a_bfloat16_dream_is_seeded_and_follows_the_float32_one():
    """The networks in bfloat16 (the sampler still in float32): the same seeds give the same
    dream, and its first frame and rewards stay close to the float32 model's."""
    frames, actions = context(2)
    model = tiny_world_model(2, action_flow=True, dtype=torch.bfloat16)
    half, half_rewards = rollout(model, frames, actions, seeds=[5, 6])
    again, again_rewards = rollout(tiny_world_model(2, action_flow=True, dtype=torch.bfloat16), frames, actions, seeds=[5, 6])
    full, full_rewards = rollout(tiny_world_model(2, action_flow=True), frames, actions, seeds=[5, 6])
    assert model.cache.keys.dtype == torch.bfloat16 and model.tokenizer.latent_mean.dtype == torch.bfloat16
    assert half.dtype == torch.uint8 and half_rewards.dtype == torch.float32
    assert torch.equal(half, again) and torch.equal(half_rewards, again_rewards)
    assert (half[:, 0].float() - full[:, 0].float()).abs().mean() < 1.0  # pixel levels
    torch.testing.assert_close(half_rewards, full_rewards, atol=0.02, rtol=0.02)


def test_resolve_dtype_takes_names_dtypes_and_auto():
    assert resolve_dtype("float32", "cpu") is torch.float32 and resolve_dtype(torch.bfloat16, "cpu") is torch.bfloat16
    assert resolve_dtype("bfloat16", "cpu") is torch.bfloat16
    assert resolve_dtype("auto", "cpu") is torch.float32 and resolve_dtype(None, "cpu") is torch.float32
    assert resolve_dtype("auto", "cuda") is torch.bfloat16 and resolve_dtype(None, "meta") is torch.bfloat16
    for bad in ("fp16", torch.float16, 16):
        with pytest.raises(ValueError, match="expected dtype to be 'auto', one of"):
            resolve_dtype(bad, "cpu")


def test_batch_invariant_linear_matches_linear_and_pads_small_batches():
    torch.manual_seed(0)
    layer = BatchInvariantLinear(16, 8)
    plain = torch.nn.Linear(16, 8)
    plain.load_state_dict(layer.state_dict())
    x = torch.randn(2, 3, 16)
    torch.testing.assert_close(layer(x), plain(x))
    many = torch.randn(64, 16)
    assert torch.equal(layer(many[:1]), layer(many)[:1])
    assert pad_rows(torch.ones(1, 2)).shape == (MIN_ROWS, 2) and pad_rows(torch.ones(MIN_ROWS + 1, 2)).shape == (MIN_ROWS + 1, 2)
    calls = []
    out = in_fixed_chunks(lambda chunk: calls.append(len(chunk)) or chunk * 2, torch.arange(5.0)[:, None], size=2)
    assert calls == [2, 2, 2] and torch.equal(out, torch.arange(5.0)[:, None] * 2)


def test_reset_by_mask_primes_only_those_dreams():
    frames, actions = context(3)
    model = tiny_world_model(3)
    model.reset(frames, actions, [1, 2, 3])
    keys_before = model.cache.keys[:, 0].clone()
    other, other_actions = context(1, seed=9)
    model.reset(other, other_actions, [42], mask=torch.tensor([False, True, False]))
    assert torch.equal(model.cache.keys[:, 0], keys_before)
    assert model.seeds.tolist() == [1, 42, 3]
    fresh = tiny_world_model(1)
    fresh.reset(other, other_actions, [42])
    torch.testing.assert_close(model.cache.keys[:, 1], fresh.cache.keys[:, 0])


def test_a_context_from_mid_episode_is_primed_with_the_actions_before_it():
    """With an action history of 4, the 3 actions before the context condition its first
    frames; fewer are zero-padded in front (an episode's start), none means all zeros."""
    frames, actions = context(2)
    past = np.random.default_rng(3).uniform(-1, 1, (2, 5, 2)).astype(np.float32)

    def primed(past_actions):
        model = tiny_world_model(2, action_history=4)
        model.reset(frames, actions, [5, 6], past_actions=past_actions)
        return model

    with_past = primed(past)
    assert torch.equal(with_past.state.recent_actions, torch.from_numpy(actions))  # the context's own, after priming
    first = with_past.step(actions[:, -1])[0]
    assert not torch.equal(first, primed(None).step(actions[:, -1])[0])
    assert torch.equal(first, primed(past[:, -3:]).step(actions[:, -1])[0])  # only the last k - 1 count
    padded = np.concatenate([np.zeros((2, 2, 2), np.float32), past[:, -1:]], axis=1)
    assert torch.equal(primed(past[:, -1:]).step(actions[:, -1])[0], primed(padded).step(actions[:, -1])[0])
    with pytest.raises(ValueError, match=r"past_actions: expected shape \(2, P, 2\)"):
        primed(past[:1])


def test_counter_noise_is_standard_normal_and_per_env():
    noise = counter_noise(torch.arange(64), torch.zeros(64, dtype=torch.long), (1024,))
    assert abs(noise.mean().item()) < 0.02 and abs(noise.std().item() - 1) < 0.02
    again = counter_noise(torch.tensor([5]), torch.tensor([0]), (1024,))
    assert torch.equal(again[0], noise[5])
    later = counter_noise(torch.tensor([5]), torch.tensor([1]), (1024,))
    assert not torch.equal(later, again)


def test_tokenizer_shapes_and_ranges():
    tokenizer = Tokenizer(TokenizerConfig(channels=(8, 8, 16), latent_channels=4))
    frames = torch.randint(0, 256, (2, 64, 64, 3), dtype=torch.uint8)
    latents = tokenizer.encode(frames)
    assert latents.shape == (2, 8, 8, 4)
    assert tokenizer.decode(latents).shape == (2, 64, 64, 3)
    tokenizer.set_latent_statistics(frames)
    normalised = tokenizer.encode(frames).reshape(-1, 4)
    torch.testing.assert_close(normalised.mean(0), torch.zeros(4), atol=1e-4, rtol=0)
    assert torch.equal(to_uint8(to_unit_range(frames)), frames)


def test_edge_weights_emphasise_small_objects():
    frame = torch.full((1, 64, 64, 3), 1.0)
    frame[0, 30:34, 30:34] = -1.0  # a 4-pixel dark square on white
    weights = edge_weights(frame, strength=10.0)
    assert weights.shape == (1, 64, 64, 1)
    assert weights[0, 31, 31, 0] == pytest.approx(11.0) and weights[0, 5, 5, 0] == pytest.approx(1.0)
    assert weights[0, 29, 29, 0] > 5.0  # the dilated rim counts too


def test_tokenizer_latent_noise_perturbs_reconstructions_reproducibly():
    tokenizer = Tokenizer(TokenizerConfig(channels=(8, 8, 16), latent_channels=4))
    frames = torch.randint(0, 256, (2, 64, 64, 3), dtype=torch.uint8)
    plain = tokenizer(frames)
    torch.testing.assert_close(plain, tokenizer.decode(tokenizer.encode(frames)))
    noisy = tokenizer(frames, 0.5, torch.Generator().manual_seed(1))
    again = tokenizer(frames, 0.5, torch.Generator().manual_seed(1))
    assert torch.equal(noisy, again) and not torch.allclose(noisy, plain)


@pytest.mark.gpu
def test_step_never_syncs_with_the_host_on_cuda():
    model = tiny_world_model(4)
    model = WorldModel(
        model.tokenizer, model.backbone, batch=4, sampler="heun", sampling_steps=2, device="cuda", dtype=torch.bfloat16
    )
    frames, actions = context(4)
    model.reset(frames, actions, [1, 2, 3, 4])
    step_actions = torch.zeros(4, 2, device="cuda")
    model.step(step_actions)  # warm-up: first calls may allocate and sync
    torch.cuda.set_sync_debug_mode("error")
    try:
        model.step(step_actions)
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_advance_gives_the_termination_logit_that_step_decides_on():
    frames, actions = context(2)
    push = np.full((2, 2), 0.5, np.float32)
    stepped, advanced = tiny_world_model(2), tiny_world_model(2)
    for model in (stepped, advanced):
        model.reset(frames, actions, [5, 6])
    shown, reward, terminated = stepped.step(push)
    shown_too, reward_too, logit = advanced.advance(push)
    assert logit.dtype == torch.float32 and logit.shape == (2,)
    assert torch.equal(shown, shown_too) and torch.equal(reward, reward_too)
    assert torch.equal(terminated, logit > 0)
