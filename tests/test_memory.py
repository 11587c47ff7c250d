"""Long-term memory in the KV cache: which frames it keeps, that a dream with memory
sees exactly what a training sequence laid out by ``memory_schedule`` shows, and
that its cost and size do not grow."""

import numpy as np
import pytest
import torch

from worldenv.memory import REFERENCE, CacheShape, FastPaths, memory_slot_for, plan_commit, slot_positions, slots_for, token_index
from worldenv.nn.backbone import Backbone, BackboneConfig, Segments
from worldenv.training.memory_schedule import memory_schedule

B, N, C = 2, 4, 3
SINKS, MEMORY, WINDOW = 1, 3, 2


def make_backbone(depth: int = 1, action_flow: bool = False) -> Backbone:
    torch.manual_seed(0)
    config = BackboneConfig(
        latent_channels=C,
        grid=2,
        action_dim=2,
        width=32,
        depth=depth,
        heads=4,
        sink_frames=SINKS,
        window_frames=WINDOW,
        memory_frames=MEMORY,
        action_flow=action_flow,
    )
    model = Backbone(config).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    return model


def test_a_leaving_frame_fills_an_empty_slot_first():
    summaries = torch.zeros(1, 3, 4)
    frames = torch.tensor([[5, -1, -1]])
    assert memory_slot_for(summaries, frames, torch.ones(1, 4) / 2).tolist() == [1]


def test_when_full_the_more_redundant_of_the_most_similar_pair_goes():
    """Views along a turn (unit vectors at increasing angles): the closest pair is the one
    around 20-25 degrees, and of the two the frame in the middle of the crowd goes."""

    def view(degrees: float) -> torch.Tensor:
        angle = torch.tensor(degrees) * torch.pi / 180
        return torch.stack([angle.cos(), angle.sin(), torch.tensor(0.0), torch.tensor(0.0)])

    summaries = torch.stack([view(0), view(20), view(25)])[None]
    frames = torch.tensor([[1, 3, 9]])
    # Candidate at 60: the closest pair is (20, 25), and 20 is nearer the rest (0 at 20 degrees)
    # than 25 is (the candidate at 35): 20 goes, leaving 0, 25, 60, the widest spread.
    assert memory_slot_for(summaries, frames, view(60)[None]).tolist() == [1]
    # Candidate at 22: the closest pair is (22, 20) or (22, 25); the candidate itself is the redundant one.
    assert memory_slot_for(summaries, frames, view(22.4)[None]).tolist() == [-1]


def test_a_view_seen_again_replaces_its_older_sighting():
    summaries = torch.eye(4)[:3][None]
    frames = torch.tensor([[1, 3, 9]])
    assert memory_slot_for(summaries, frames, torch.eye(4)[1][None]).tolist() == [1]  # a tie: the older goes
    one = memory_slot_for(torch.eye(4)[:1][None], torch.tensor([[4]]), torch.eye(4)[0][None])
    assert one.tolist() == [0]  # a memory of one frame keeps the newest sighting


def commit_frames(model, x, a, cache, state, fast: FastPaths = REFERENCE):
    clean = torch.zeros(B, 1)
    for i in range(x.shape[1]):
        model.commit(x[:, i : i + 1], clean, a[:, i : i + 1], cache, state, fast)


def dreamed(frames: int):
    """A backbone, random frames and actions, and a cache and state that have committed them all."""
    model = make_backbone()
    x, a = torch.randn(B, frames, N, C), torch.randn(B, frames, 2)
    cache, state = model.new_cache(B, "cpu"), model.new_state(B, "cpu")
    commit_frames(model, x, a, cache, state)
    return model, x, a, cache, state


@torch.no_grad()
def test_frames_leave_the_window_for_memory_not_for_nowhere():
    model, x, a, cache, _ = dreamed(12)
    memory = cache.slot_frame[:, SINKS : SINKS + MEMORY]
    window = cache.slot_frame[:, SINKS + MEMORY :]
    assert cache.slot_frame[:, :SINKS].tolist() == [[0]] * B
    assert sorted(window[0].tolist()) == [10, 11]
    assert (memory >= SINKS).all() and (memory < 10).all()  # only frames that left the window
    assert all(len(set(row.tolist())) == MEMORY for row in memory)  # full, no frame twice
    # A memory slot holds the keys its frame got when it was committed, moved, not recomputed.
    for slot in range(SINKS, SINKS + MEMORY):
        frame = int(cache.slot_frame[0, slot])
        replay = model.new_cache(B, "cpu")
        commit_frames(model, x[:, : frame + 1], a[:, : frame + 1], replay, model.new_state(B, "cpu"))
        where = replay.slot_frame[0].tolist().index(frame)
        tokens = token_index(torch.tensor([[slot]]), N)[0]
        torch.testing.assert_close(cache.keys[:, 0, :, tokens], replay.keys[:, 0, :, token_index(torch.tensor([[where]]), N)[0]])


@torch.no_grad()
@pytest.mark.parametrize("fast", [FastPaths(), FastPaths.for_device("cpu")], ids=["reference", "fast"])
@pytest.mark.parametrize("action_flow", [False, True])
def test_a_step_with_memory_equals_a_training_sequence_laid_out_by_the_schedule(action_flow, fast):
    """The dream's context after many frames (sink, memory chosen by the rule, window)
    is what ``memory_schedule`` gives training, and with one layer (keys depend on their
    frame alone) the step equals a full pass over that sequence with ``Segments``
    (whose ``previous`` latents also feed ActionFlow)."""
    model = make_backbone(depth=1, action_flow=action_flow)
    T = 14
    x, a, t = torch.randn(B, T + 1, N, C), torch.randn(B, T + 1, 2), torch.zeros(B, T + 1)
    cache, state = model.new_cache(B, "cpu"), model.new_state(B, "cpu")
    commit_frames(model, x[:, :T], a[:, :T], cache, state, fast)
    # The schedule, replayed over the same latents (episodes back to back).
    flat = x.reshape(B * (T + 1), N, C)
    starts, lengths = np.arange(B) * (T + 1), np.full(B, T + 1)
    schedule = memory_schedule(flat, starts, lengths, SINKS, MEMORY)
    window_start = T - WINDOW
    step = model(x[:, T : T + 1], t[:, T : T + 1], a[:, T : T + 1], cache, state, fast=fast)
    for row in range(B):
        remembered = schedule[starts[row] + window_start] - starts[row]
        assert sorted(remembered.tolist()) == sorted(cache.slot_frame[row, SINKS : SINKS + MEMORY].tolist())
        order = [0, *sorted(remembered.tolist()), *range(window_start, T + 1)]
        sequence = x[row : row + 1, order]
        L = len(order)
        starts_mask = torch.ones(1, L, dtype=torch.bool)
        starts_mask[:, -WINDOW:] = False  # the window's frames after its first follow one another
        previous = torch.stack([x[row, f - 1] if f > 0 else torch.zeros(N, C) for f in order])[None]
        segments = Segments(torch.ones(1, L, dtype=torch.bool), starts_mask, previous)
        full = model(sequence, t[row : row + 1, order], a[row : row + 1, order], segments=segments)
        torch.testing.assert_close(step.velocity[row], full.velocity[0, -1:], atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_missing_frames_of_a_training_sequence_change_nothing():
    """A sequence with absent sink and memory frames equals the same sequence without them."""
    model = make_backbone(depth=2)
    x, a, t = torch.randn(1, 6, N, C), torch.randn(1, 6, 2), torch.rand(1, 6)
    valid = torch.tensor([[False, True, False, True, True, True]])
    starts = torch.tensor([[True, True, True, True, False, False]])
    previous = torch.randn(1, 6, N, C)
    out = model(x, t, a, segments=Segments(valid, starts, previous))
    keep = valid[0]
    alone = model(x[:, keep], t[:, keep], a[:, keep], segments=Segments(valid[:, keep], starts[:, keep], previous[:, keep]))
    torch.testing.assert_close(out.velocity[:, keep], alone.velocity, atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_committing_reads_the_same_context_as_the_passes_that_denoised_the_frame():
    model = make_backbone(depth=2)
    x, a, t = torch.randn(B, 16, N, C), torch.randn(B, 16, 2), torch.zeros(B, 16)
    cache, state = model.new_cache(B, "cpu"), model.new_state(B, "cpu")
    for i in range(16):
        step = slice(i, i + 1)
        read = model(x[:, step], t[:, step], a[:, step], cache, state)
        committed = model.commit(x[:, step], t[:, step], a[:, step], cache, state)
        torch.testing.assert_close(read.velocity, committed.velocity)


@torch.no_grad()
def test_reset_by_mask_clears_memory_of_those_envs_only():
    model, x, a, cache, state = dreamed(10)
    before = cache.slot_frame.clone()
    cache.reset(torch.tensor([True, False]))
    assert (cache.slot_frame[0] == -1).all()
    assert torch.equal(cache.slot_frame[1], before[1])
    commit_frames(model, x[:1].expand(B, -1, -1, -1)[:, :4], a[:1].expand(B, -1, -1)[:, :4], cache, state)
    assert sorted(f for f in cache.slot_frame[0].tolist() if f >= 0) == [0, 1, 2, 3]


@torch.no_grad()
def test_cache_size_and_context_stay_bounded_over_a_long_dream():
    model = make_backbone()
    cache, state = model.new_cache(B, "cpu"), model.new_state(B, "cpu")
    sizes = {cache.keys.shape, cache.values.shape, cache.summary.shape}
    x, a = torch.randn(B, 1, N, C), torch.randn(B, 1, 2)
    for _ in range(300):
        model.commit(x + 0.1 * torch.randn_like(x), torch.zeros(B, 1), a, cache, state)
    assert {cache.keys.shape, cache.values.shape, cache.summary.shape} == sizes
    assert cache.valid.sum(1).tolist() == [SINKS + MEMORY + WINDOW] * B
    assert cache.frames_seen.tolist() == [300] * B


def test_cache_slots_can_be_overridden_for_ablations():
    model = make_backbone()
    cache = model.new_cache(B, "cpu", memory_frames=0, sink_frames=0)
    assert cache.shape.slots == WINDOW
    with pytest.raises(ValueError, match="window_frames"):
        model.new_cache(B, "cpu", window_frames=0)


SHAPE = CacheShape(
    layers=1,
    heads=1,
    head_dim=4,
    tokens_per_frame=N,
    sink_frames=SINKS,
    window_frames=WINDOW,
    latent_channels=C,
    memory_frames=MEMORY,
)


def test_new_frames_take_the_sinks_then_roll_through_the_window():
    # Slots [sink 0 | memory 1-3 | window 4-5].
    assert slots_for(SHAPE, torch.tensor([0, 1, 2, 5]), 1).tolist() == [[0], [4], [5], [4]]
    assert slots_for(SHAPE, torch.tensor([0, 3]), 2).tolist() == [[0, 4], [4, 5]]
    with pytest.raises(ValueError, match="window of 2"):
        slots_for(SHAPE, torch.tensor([0]), 3)


def test_a_cached_frame_sits_as_far_back_as_its_rank_says():
    """Frames 0 (sink), 3 and 5 (memory) and 8, 9 (window) after 10 frames: ranked 0-4 from
    the next frame's position 10, so the sink and memory move up to sit just before the
    window, whose frames keep their frame numbers; an empty slot counts for nothing."""
    slot_frame = torch.tensor([[0, 3, -1, 5, 8, 9]])
    positions, following = slot_positions(slot_frame, torch.tensor([10]))
    assert following.tolist() == [10]
    assert positions[0, [0, 1, 3, 4, 5]].tolist() == [5, 6, 7, 8, 9]


def test_a_commit_plan_moves_the_overwritten_window_frame_into_memory_and_touches_nothing():
    """After frames 0-2 (sink 0, window 1 and 2), committing frame 3 overwrites frame 1's
    window slot: frame 1 moves into the first empty memory slot. Planning changes none of
    its inputs; the plan says where everything goes."""
    slot_frame = torch.tensor([[0, -1, -1, -1, 1, 2]])
    summary = torch.randn(1, SHAPE.slots, SHAPE.summary_dim)
    inputs = slot_frame.clone(), summary.clone()
    latents = torch.randn(1, 1, N, C)
    plan = plan_commit(SHAPE, slot_frame, summary, torch.tensor([3]), latents)
    assert torch.equal(slot_frame, inputs[0]) and torch.equal(summary, inputs[1])
    assert plan.slots.tolist() == [[4]]
    ((source, destination, kept),) = plan.moves
    assert (source.tolist(), destination.tolist(), kept.tolist()) == ([4], [1], [True])
    assert plan.memory_frames.tolist() == [[1, -1, -1]]
    assert torch.equal(plan.memory_summary[0, 0], summary[0, 4])
    assert plan.new_summary.shape == (1, 1, SHAPE.summary_dim) and plan.shared_tokens is None
    # Without memory there is nothing to move; one slot for every env can be written as a slice.
    windowed = CacheShape(1, 1, 4, N, SINKS, WINDOW, C)
    plan = plan_commit(
        windowed,
        torch.tensor([[0, 1, 2]] * 2),
        torch.zeros(2, 3, 0),
        torch.tensor([3, 3]),
        latents.expand(2, -1, -1, -1),
        shared_slot=True,
    )
    assert plan.moves == () and plan.memory_frames is None and plan.shared_tokens == slice(N, 2 * N)
    assert (
        plan_commit(
            windowed,
            torch.tensor([[0, 1, 2]] * 2),
            torch.zeros(2, 3, 0),
            torch.tensor([3, 4]),
            latents.expand(2, -1, -1, -1),
            shared_slot=True,
        ).shared_tokens
        is None
    )


@pytest.mark.parametrize("option", ["reuse_context", "shared_slot", "unmasked_when_full"])
def test_each_fast_path_gives_the_reference_paths_bits(option):
    """A long dream with memory (frames leave the window, memory fills and drops, one env
    restarts on the way), every pass once on the reference path and once with the shortcut:
    the same velocities and the same cache, bit for bit."""
    model = make_backbone(depth=2)
    torch.manual_seed(3)
    x, a, t = torch.randn(B, 14, N, C), torch.randn(B, 14, 2), torch.rand(B, 14)
    dreams = {}
    for fast in (FastPaths(), FastPaths(**{option: True})):
        cache, state = model.new_cache(B, "cpu"), model.new_state(B, "cpu")
        velocities = []
        with torch.inference_mode():
            for i in range(14):
                if i == 9:
                    restart = torch.tensor([True, False])
                    cache.reset(restart)
                    state.reset(restart)
                frame = slice(i, i + 1)
                velocities.append(model(x[:, frame], t[:, frame], a[:, frame], cache, state, fast=fast).velocity)
                model.commit(x[:, frame], torch.zeros(B, 1), a[:, frame], cache, state, fast)
        dreams[fast] = torch.cat(velocities, 1), cache
    (reference, cache), (shortcut, fast_cache) = dreams.values()
    assert torch.equal(reference, shortcut)
    assert torch.equal(cache.keys, fast_cache.keys) and torch.equal(cache.values, fast_cache.values)
    assert torch.equal(cache.slot_frame, fast_cache.slot_frame) and torch.equal(cache.summary, fast_cache.summary)
