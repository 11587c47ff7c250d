from dream_bundles import tiny_dream_bundle

from worldenv.eval.record import paired_rollout, report_lines


def test_paired_rollout_stops_where_mujoco_ends_the_episode(tmp_path):
    # Uniform pushes drop the real pole within a few dozen steps; the untrained dream's
    # termination head never fires (tiny_dream_bundle biases it off).
    bundle = tiny_dream_bundle(tmp_path / "cartpole", scene="cartpole")
    rollout = paired_rollout(bundle, "uniform", steps=300, context=2)
    assert rollout.truth_ended is not None and rollout.steps == rollout.truth_ended < 300
    assert rollout.dream_ended is None
    assert len(rollout.dream) == len(rollout.truth) == 2 + rollout.steps
    assert f"episode ended at step {rollout.truth_ended} in MuJoCo, - in the dream" in report_lines(rollout)[-1]
