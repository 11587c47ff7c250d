"""``worldenv.eval.memory_rules``: retention rules replayed as the KV cache runs them, on
real revisit episodes (``benchmarks/memory_rules.py`` prints the table)."""

import torch
from dream_bundles import tiny_dream_bundle

from worldenv.checkpoint import load_bundle
from worldenv.eval.memory_rules import RULES, most_recent, older_of_closest_pair, replay, rules_on_revisits
from worldenv.memory import frame_summary
from worldenv.world_model import load_tokenizer


def test_replay_offers_each_frame_that_leaves_the_window_to_the_rule():
    summaries = frame_summary(torch.randn(10, 4, 2, generator=torch.Generator().manual_seed(0)))
    # Frames 1 .. 6 leave (the sink, frame 0, never does; 7 .. 9 are still in the window).
    assert sorted(replay(most_recent, summaries, memory_frames=2, sinks=1, window=3, until=10)) == [5, 6]
    assert sorted(replay(most_recent, summaries, memory_frames=8, sinks=1, window=3, until=10)) == [1, 2, 3, 4, 5, 6]


def test_the_older_of_two_equal_views_goes():
    summaries = frame_summary(torch.randn(3, 4, 2, generator=torch.Generator().manual_seed(1)))
    kept = torch.stack([summaries[0], summaries[1]])
    assert older_of_closest_pair(kept, torch.tensor([-1, 4]), summaries[2]) == 0  # an empty slot first
    assert older_of_closest_pair(kept, torch.tensor([3, 4]), summaries[0]) == 0  # frame 3 equals the newcomer


def test_every_rule_is_scored_on_every_revisit_and_a_large_memory_keeps_the_view(tmp_path):
    tokenizer = load_tokenizer(load_bundle(tiny_dream_bundle(tmp_path / "panorama", "panorama")))
    torch.set_num_threads(1)
    results = rules_on_revisits(tokenizer, episodes=1, away=[2, 4], memory=[1, 16], window=1)
    assert set(results) == {(name, size, t) for name in RULES for size in (1, 16) for t in (2, 4)}
    for name in RULES:  # memory for every frame that left: each rule keeps them all
        assert results[(name, 16, 4)] == results[("most recent (FIFO)", 16, 4)]
        assert results[(name, 16, 4)]["gap"] < 1.0  # the view turned away from is remembered
    assert all(0 <= r["exact"] <= 1 and r["gap"] >= 0 for r in results.values())
