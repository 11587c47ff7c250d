"""How a bundle dreams (``worldenv/serving.py``): the choice's precedence, its written
form, bad input, and what a ``frame`` commit leaves in the cache."""

import numpy as np
import pytest
import torch
from test_world_model import context, tiny_world_model

from worldenv.serving import Serving, serving_choice


def test_serving_choice_prefers_the_caller_then_the_bundle_then_teacher_at_4():
    bundle_choice = {"serving": {"model": "student_consistency", "sampling_steps": 1, "action_guidance": 1.8, "commit": "frame"}}
    assert serving_choice({}) == Serving("teacher", 4, 1.0, "latent")
    assert serving_choice(bundle_choice) == Serving("student_consistency", 1, 1.8, "frame")
    # guidance and commit go with the served model; another model gets the plain defaults
    assert serving_choice(bundle_choice, "teacher") == Serving("teacher", 4, 1.0, "latent")
    assert serving_choice(bundle_choice, "teacher", 16, 2.0, "frame") == Serving("teacher", 16, 2.0, "frame")
    assert serving_choice(bundle_choice, None, 2, 1.0, "latent") == Serving("student_consistency", 2, 1.0, "latent")
    # bundles recorded before commits existed keep dreaming as they were measured
    assert serving_choice({"serving": {"model": "student_consistency", "sampling_steps": 1}}).commit == "latent"


def test_serving_refuses_bad_values_naming_what_was_expected():
    with pytest.raises(ValueError, match="sampling_steps to be a positive integer"):
        serving_choice({}, None, 0)
    for bad in (0.0, -1.0, float("nan"), "2"):
        with pytest.raises(ValueError, match="action_guidance to be a positive number"):
            serving_choice({}, None, None, bad)
    with pytest.raises(ValueError, match=r"commit to be one of \('latent', 'frame'\)"):
        serving_choice({}, None, None, None, "pixels")


@pytest.mark.parametrize(
    "text", ["teacher@8", "student_consistency@1g1.8", "student_consistency@1+frame", "student_dmd@2g0.5+frame"]
)
def test_a_serving_reads_back_from_its_name(text):
    serving = Serving.parse(text)
    assert serving.name == text and Serving.parse(serving.name) == serving
    assert Serving(**serving.record()) == serving
    assert Serving.from_record({**serving.record(), "command": "worldenv compare ..."}) == serving


def test_a_record_from_before_guidance_and_commits_reads_as_the_plain_model():
    assert Serving.from_record({"model": "teacher", "sampling_steps": 8}) == Serving("teacher", 8, 1.0, "latent")


@pytest.mark.parametrize("text", ["teacher", "teacher@0", "teacher@8g0", "teacher@8+pixels", "@8", "teacher@8g"])
def test_a_malformed_serving_name_is_refused(text):
    with pytest.raises(ValueError, match="expected a model like teacher@8"):
        Serving.parse(text)


def test_guided_and_plain_evaluations_per_frame():
    assert Serving("teacher", 8).evaluations == 9
    assert Serving("student_consistency", 1, 1.8, "frame").evaluations == 3


def test_a_frame_commit_leaves_what_priming_on_that_frame_leaves():
    """A dream that commits its frame is in the state of a dream primed on the same context
    plus that frame as a real one: its next frame is the same."""
    frames, actions = context(2)
    push, then = np.full((2, 2), 0.7, np.float32), np.full((2, 2), -0.4, np.float32)
    dreaming = tiny_world_model(2)
    dreaming.commit = "frame"
    dreaming.reset(frames, actions, [5, 6])
    frame = dreaming.step(push)[0]

    primed = tiny_world_model(2)
    primed.reset(np.concatenate([frames, frame[:, None].numpy()], 1), np.concatenate([actions, push[:, None]], 1), [5, 6])
    assert torch.allclose(dreaming.state.last_latent, primed.state.last_latent, atol=1e-5)
    assert (dreaming.step(then)[0].int() - primed.step(then)[0].int()).abs().max() <= 1


def test_a_frame_commit_decodes_even_when_frames_are_not_wanted():
    frames, actions = context(2)
    push = np.full((2, 2), 0.7, np.float32)
    results = []
    for decode in (True, False):
        model = tiny_world_model(2)
        model.commit = "frame"
        model.reset(frames, actions, [5, 6])
        shown, reward, _ = model.step(push, decode=decode)
        assert (shown is None) == (not decode)
        results.append((reward, model.state.last_latent.clone()))
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])


def test_the_commit_is_checked_when_a_world_model_is_built():
    model = tiny_world_model(1)
    with pytest.raises(ValueError, match="commit to be one of"):
        type(model)(model.tokenizer, model.backbone, batch=1, commit="sample")
