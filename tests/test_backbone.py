"""The block-causal backbone and its KV cache: incremental generation equals a full pass."""

import pytest
import torch

from worldenv.memory import FastPaths
from worldenv.nn.backbone import Backbone, BackboneConfig

B, N, C = 3, 16, 4
# (action_history, action_flow): the ways a frame's action reaches it.
CONDITIONS = [(1, False), (3, False), (1, True), (3, True)]
# The reference path, and every shortcut a dream on the CPU takes.
PATHS = {"reference": FastPaths(), "fast": FastPaths.for_device("cpu")}


def make_backbone(
    sink: int = 1, window: int = 3, seed: int = 0, depth: int = 2, history: int = 1, flow: bool = False, flow_history: int = 0
) -> Backbone:
    torch.manual_seed(seed)
    config = BackboneConfig(
        latent_channels=C,
        grid=4,
        action_dim=2,
        width=32,
        depth=depth,
        heads=4,
        sink_frames=sink,
        window_frames=window,
        action_history=history,
        action_flow=flow,
        action_flow_history=flow_history,
    )
    model = Backbone(config).eval()
    with torch.no_grad():  # leave the zero-initialised (identity) state so every path matters
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    return model


def dreams(model: Backbone, batch: int = B):
    """A fresh cache and dream state for ``batch`` dreams."""
    return model.new_cache(batch, "cpu"), model.new_state(batch, "cpu")


def inputs(frames: int, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, frames, N, C, generator=g), torch.rand(B, frames, generator=g), torch.randn(B, frames, 2, generator=g)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("history, flow", CONDITIONS)
@torch.no_grad()
def test_incremental_generation_with_cache_equals_full_causal_pass(history, flow, path):
    model = make_backbone(sink=1, window=3, history=history, flow=flow)
    x, t, a = inputs(frames=5)  # 5 = 1 sink + 3 window + the new frame: nothing evicted yet
    full = model(x, t, a)
    cache, state = dreams(model)
    for i in range(5):
        step = slice(i, i + 1)
        read = model(x[:, step], t[:, step], a[:, step], cache, state, fast=PATHS[path])
        committed = model.commit(x[:, step], t[:, step], a[:, step], cache, state, PATHS[path])
        torch.testing.assert_close(read.velocity, committed.velocity)  # reading never writes
        torch.testing.assert_close(committed.velocity, full.velocity[:, step], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(committed.reward, full.reward[:, step], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(committed.termination_logit, full.termination_logit[:, step], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("history, flow", CONDITIONS)
@torch.no_grad()
def test_committing_a_chunk_equals_committing_frame_by_frame(history, flow):
    model = make_backbone(history=history, flow=flow)
    x, t, a = inputs(frames=4)
    chunk, single = dreams(model), dreams(model)
    model.commit(x[:, :3], t[:, :3], a[:, :3], *chunk)
    for i in range(3):
        model.commit(x[:, i : i + 1], t[:, i : i + 1], a[:, i : i + 1], *single)
    torch.testing.assert_close(
        model(x[:, 3:], t[:, 3:], a[:, 3:], *chunk).velocity,
        model(x[:, 3:], t[:, 3:], a[:, 3:], *single).velocity,
        atol=1e-6,
        rtol=1e-6,
    )


@torch.no_grad()
def test_rolling_window_keeps_sinks_and_the_most_recent_frames():
    """After eviction the next frame sees exactly the sink frame and the last window, at
    cache-relative positions. With one layer a frame's keys depend on that frame alone, so
    this equals a full pass over the kept frames (deeper keys also carry what the evicted
    frames contributed when they were computed, as in every rolling KV cache)."""
    sink, window = 1, 3
    model = make_backbone(sink, window, depth=1)
    with torch.no_grad():  # the previous-frame input differs by construction for frame 5 (4 vs 0)
        model.embed_previous.weight.zero_()
        model.embed_previous.bias.zero_()
    x, t, a = inputs(frames=9)
    cache, state = dreams(model)
    for i in range(8):
        model.commit(x[:, i : i + 1], t[:, i : i + 1], a[:, i : i + 1], cache, state)
    kept = [0, 5, 6, 7, 8]  # the sink frame, the 3 most recent, then the new frame 8
    full = model(x[:, kept], t[:, kept], a[:, kept])
    step = model(x[:, 8:9], t[:, 8:9], a[:, 8:9], cache, state)
    torch.testing.assert_close(step.velocity, full.velocity[:, -1:], atol=1e-5, rtol=1e-5)
    assert cache.frames_seen.tolist() == [8] * B
    assert sorted(cache.slot_frame[0].tolist()) == [0, 5, 6, 7]
    slot_positions, next_position = cache.positions()
    assert next_position.tolist() == [8] * B  # its frame number
    order = cache.slot_frame[0].argsort()
    # As far before it as in the training sequence of the kept frames: a window frame at its frame number.
    assert slot_positions[0, order].tolist() == [4, 5, 6, 7]


@torch.no_grad()
def test_a_long_dream_reads_its_cache_as_a_context_built_afresh_would():
    """With ``reuse_context`` the cache keeps each layer's attention context up to date
    frame by frame (a new frame's keys written in, only the sinks rotated anew); over many
    frames of a rolling window, with a reset on the way, that equals the context built
    from scratch out of the same cache."""
    model = make_backbone(sink=1, window=3)
    x, t, a = inputs(frames=30)
    cache, state = dreams(model)
    reuse = FastPaths(reuse_context=True)
    for i in range(29):
        if i == 12:
            mask = torch.tensor([False, True, False])
            cache.reset(mask)
            state.reset(mask)
        frame = slice(i, i + 1)
        model(x[:, frame], t[:, frame], a[:, frame], cache, state, fast=reuse)  # a denoising pass, as in a dream
        model.commit(x[:, frame], torch.zeros_like(t[:, frame]), a[:, frame], cache, state, reuse)
    afresh = model.new_cache(B, "cpu")
    afresh.replace_rows(torch.arange(B), cache)
    step = model(x[:, 29:], t[:, 29:], a[:, 29:], cache, state, fast=reuse)
    torch.testing.assert_close(
        step.velocity, model(x[:, 29:], t[:, 29:], a[:, 29:], afresh, state).velocity, atol=1e-6, rtol=1e-6
    )


@pytest.mark.parametrize("history, flow", CONDITIONS)
@torch.no_grad()
def test_reset_by_mask_restarts_only_those_envs(history, flow):
    model = make_backbone(history=history, flow=flow)
    x, t, a = inputs(frames=3)
    cache, state = dreams(model)
    model.commit(x[:, :2], t[:, :2], a[:, :2], cache, state)
    mask = torch.tensor([False, True, False])
    cache.reset(mask)
    state.reset(mask)
    assert cache.frames_seen.tolist() == [2, 0, 2]
    out = model(x[:, 2:], t[:, 2:], a[:, 2:], cache, state)
    fresh = model(x[:, 2:], t[:, 2:], a[:, 2:])  # no context at all
    continued = model(x, t, a)
    torch.testing.assert_close(out.velocity[1], fresh.velocity[1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.velocity[0], continued.velocity[0, 2:], atol=1e-5, rtol=1e-5)


def test_cache_size_is_bounded_over_many_steps():
    model = make_backbone(sink=1, window=2)
    cache, state = dreams(model, 1)
    before = cache.keys.data_ptr(), cache.keys.shape
    x, t, a = inputs(frames=1)
    with torch.no_grad():
        for _ in range(50):
            model.commit(x[:1], t[:1], a[:1], cache, state)
    assert (cache.keys.data_ptr(), cache.keys.shape) == before
    assert int(cache.valid.sum()) == 3 and cache.frames_seen.item() == 50


def test_causality_future_frames_do_not_change_the_past():
    model = make_backbone()
    x, t, a = inputs(frames=4)
    with torch.no_grad():
        first = model(x, t, a).velocity
        x2 = x.clone()
        x2[:, 3] += 1.0
        second = model(x2, t, a).velocity
    torch.testing.assert_close(first[:, :3], second[:, :3])
    assert not torch.allclose(first[:, 3], second[:, 3])


def test_committing_more_frames_than_the_window_is_refused():
    model = make_backbone(window=2)
    x, t, a = inputs(frames=3)
    with pytest.raises(ValueError, match="window of 2"):
        model.commit(x, t, a, *dreams(model))


@torch.no_grad()
def test_action_history_conditions_each_frame_on_the_actions_before_it():
    """A frame's output depends on the action two frames back through its condition, also
    when that action's frame is not in the sequence (the training window's past_actions)."""
    model = make_backbone(history=3)
    x, t, a = inputs(frames=4)
    cache, state = dreams(model)
    model.commit(x[:, :2], t[:, :2], a[:, :2], cache, state)
    changed = a.clone()
    changed[:, 0] += 1.0  # two frames before frame 2: inside its history
    cache_changed, state_changed = dreams(model)
    model.commit(x[:, :2], t[:, :2], changed[:, :2], cache_changed, state_changed)
    base = model(x[:, 2:], t[:, 2:], a[:, 2:], past_actions=a[:, :2])
    moved = model(x[:, 2:], t[:, 2:], a[:, 2:], past_actions=changed[:, :2])
    assert (moved.velocity[:, 0] - base.velocity[:, 0]).abs().max() > 1e-4
    assert torch.equal(state.recent_actions, a[:, :2]) and torch.equal(state_changed.recent_actions, changed[:, :2])
    with pytest.raises(ValueError, match="past_actions: expected shape"):
        model(x[:, 2:], t[:, 2:], a[:, 2:], past_actions=a[:, :1])
    with pytest.raises(ValueError, match="takes neither"):
        model(x[:, 2:], t[:, 2:], a[:, 2:], cache, state, past_actions=a[:, :2])
    with pytest.raises(ValueError, match="takes the dreams' state with it"):
        model(x[:, 2:], t[:, 2:], a[:, 2:], cache)


@torch.no_grad()
def test_action_flow_moves_tokens_by_the_newest_actions_of_the_history_only():
    """With action_flow_history 1 ActionFlow gets each frame's own action, in a training
    pass and against the cache alike, while the condition still sees all three."""
    model = make_backbone(history=3, flow=True, flow_history=1)
    seen = []
    model.action_flow.register_forward_hook(lambda module, args, output: seen.append(args[1]))
    x, t, a = inputs(frames=4)
    past = torch.randn(B, 2, 2)
    full = model(x, t, a, past_actions=past)
    cache, state = model.new_cache(B, "cpu"), model.new_state(B, "cpu", past_actions=past)
    model.commit(x[:, :3], t[:, :3], a[:, :3], cache, state)
    step = model(x[:, 3:], t[:, 3:], a[:, 3:], cache, state)
    assert torch.equal(seen[0], a) and torch.equal(seen[-1], a[:, 3:])
    torch.testing.assert_close(step.velocity, full.velocity[:, 3:], atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="action_flow_history: expected 0 .all. to action_history .3., got 4"):
        make_backbone(history=3, flow=True, flow_history=4)


def test_action_history_with_memory_is_refused():
    with pytest.raises(ValueError, match="action_history > 1 with long-term memory"):
        Backbone(BackboneConfig(latent_channels=C, grid=4, width=32, depth=1, heads=4, memory_frames=2, action_history=2))


def test_actions_before_a_window_stop_at_its_episode_start():
    import numpy as np

    from worldenv.training.latent_windows import actions_before

    actions = np.arange(10, dtype=np.float32)[:, None].repeat(2, 1)  # frame f's action is (f, f)
    episode_starts = np.array([0, 4])
    past = actions_before(actions, episode_starts, np.array([3, 5, 8]), count=2)
    np.testing.assert_array_equal(past[..., 0], [[1, 2], [0, 4], [6, 7]])  # frame 5: frame 3 is another episode's


def test_rotary_turns_channel_pairs_by_position_and_keeps_the_rest():
    from worldenv.nn.attention import rotary, rotations

    head_dim, rotary_dims, base = 8, 4, 100.0
    positions = torch.tensor([[0, 3], [7, 1]])  # (B, frames)
    x = torch.randn(2, 3, 2 * 5, head_dim, dtype=torch.float64)  # 3 heads, 2 frames of 5 tokens
    turned = rotary(x, rotations(positions, head_dim, rotary_dims, base).double())
    angle = positions[..., None].double() * base ** (-torch.arange(2, dtype=torch.float64) / 2)  # (B, F, half)
    cos, sin = (f(angle).repeat_interleave(5, dim=1)[:, None] for f in (torch.cos, torch.sin))
    x1, x2 = x[..., :2], x[..., 2:4]
    torch.testing.assert_close(turned[..., :2], x1 * cos - x2 * sin, atol=1e-6, rtol=0)
    torch.testing.assert_close(turned[..., 2:4], x1 * sin + x2 * cos, atol=1e-6, rtol=0)
    assert torch.equal(turned[..., 4:], x[..., 4:])
    # What attention sees depends on the distance between frames only.
    q, k = torch.randn(head_dim), torch.randn(head_dim)

    def score(p_q, p_k):
        R = rotations(torch.tensor([[p_q, p_k]]), head_dim, rotary_dims, base)[0]
        return (q @ R[0]) @ (k @ R[1])

    torch.testing.assert_close(score(9, 4), score(5, 0))


def test_attention_without_a_mask_where_all_is_allowed_gives_the_masked_bits():
    """A dream step against a full cache skips the mask (``unmasked_when_full``, faster on the
    CPU); a batch where one env was just reset still masks, and the full envs' rows must not
    change by a bit, nor differ by a bit from the masked reference path."""
    torch.manual_seed(0)
    config = BackboneConfig(latent_channels=4, grid=2, action_dim=2, width=64, depth=2, heads=2, sink_frames=1, window_frames=2)
    model = Backbone(config).eval()
    latents = torch.randn(3, 5, 4, 4)
    actions = torch.randn(3, 5, 2)
    unmasked = FastPaths(unmasked_when_full=True)
    with torch.inference_mode():
        cache, state = dreams(model, 3)
        for f in range(4):
            model.commit(latents[:, f : f + 1], torch.zeros(3, 1), actions[:, f : f + 1], cache, state)
        full = model(latents[:, 4:], torch.full((3, 1), 0.5), actions[:, 4:], cache, state, fast=unmasked).velocity
        masked = model(latents[:, 4:], torch.full((3, 1), 0.5), actions[:, 4:], cache, state).velocity
        fresh, fresh_state = dreams(model, 1)
        cache.replace_rows(torch.tensor([2]), fresh)  # env 2 starts over: its empty slots are masked
        state.replace_rows(torch.tensor([2]), fresh_state)
        assert not cache.valid.all()
        mixed = model(latents[:, 4:], torch.full((3, 1), 0.5), actions[:, 4:], cache, state, fast=unmasked).velocity
        alone = model(latents[2:, 4:], torch.full((1, 1), 0.5), actions[2:, 4:], *dreams(model, 1)).velocity
    assert torch.equal(full, masked)
    assert torch.equal(mixed[:2], full[:2])
    torch.testing.assert_close(mixed[2:], alone)  # the reset env attends to its own frame only
