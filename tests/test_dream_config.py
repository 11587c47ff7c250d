"""``DreamConfig``: how a dream is served, one frozen value that every env, evaluation,
agent script and ``worldenv`` subcommand takes."""

import dataclasses
import typing

import gymnasium as gym
import numpy as np
import pytest
import torch

from worldenv.dream_config import Commit, DreamConfig, Sampler, StartPolicy, dream_config
from worldenv.envs import DiffusionWorldEnv, DiffusionWorldVectorEnv
from worldenv.serving import Serving


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("model", 3, r"expected model to be None \(the bundle's choice\) or the name of a bundle component, got 3"),
        ("sampling_steps", 0, "expected sampling_steps to be a positive integer, got 0"),
        ("sampling_steps", True, "expected sampling_steps to be a positive integer, got True"),
        ("action_guidance", float("nan"), "expected action_guidance to be a positive number"),
        ("commit", "pixels", r"expected commit to be one of \('latent', 'frame'\), got 'pixels'"),
        ("sampler", "rk4", r"expected sampler to be one of \['dpm', 'euler', 'heun'\], got 'rk4'"),
        ("sampler", None, r"expected sampler to be one of \['dpm', 'euler', 'heun'\], got None"),
        ("device", "tpu", r"expected device to be one of \['cpu'.*got 'tpu'"),
        ("dtype", "float16", r"expected dtype to be 'auto', one of \['bfloat16', 'float32'\] or the torch dtype, got 'float16'"),
        ("dtype", "bf16", r"expected dtype to be 'auto', one of \['bfloat16', 'float32'\]"),
        ("start_contexts", 0, r"expected start_contexts to be None \(the bundle's bank\) or a positive integer, got 0"),
        ("start_within", -1, "expected start_within to be a number of steps >= 0, got -1"),
        ("start_policy", "wander", r"expected start_policy to be one of \['gentle', 'goal', .*got 'wander'"),
    ],
)
def test_each_field_is_checked_when_the_config_is_made_and_the_error_names_it(field, value, message):
    settings = {field: value}
    if field.startswith("start_") and field != "start_contexts":
        settings["start_contexts"] = 2  # they shape a recorded bank
    with pytest.raises(ValueError, match=message):
        DreamConfig(**settings)


def test_start_settings_need_a_recorded_bank():
    with pytest.raises(ValueError, match=r"expected start_contexts=N with start_within=3 and start_policy='mix'"):
        DreamConfig(start_within=3)
    assert DreamConfig(start_contexts=np.int64(5), start_within=np.int64(3)).start_contexts == 5


def test_equal_settings_make_equal_configs_whatever_their_spelling():
    """One config per meaning: a torch device or dtype, None for auto and numpy numbers are
    taken by their plain values, so configs compare (and hash) equal."""
    plain = DreamConfig(sampling_steps=2, action_guidance=1.5, device="cpu", dtype="float32")
    assert (
        DreamConfig(sampling_steps=np.int64(2), action_guidance=np.float32(1.5), device=torch.device("cpu"), dtype=torch.float32)
        == plain
    )
    assert DreamConfig(dtype=None).dtype == "auto" and DreamConfig(dtype=torch.bfloat16).dtype == "bfloat16"
    assert hash(plain) == hash(DreamConfig(sampling_steps=2, action_guidance=1.5, dtype="float32"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        plain.sampling_steps = 3


def test_the_options_are_the_ones_the_package_has():
    from worldenv.data.policies import POLICIES
    from worldenv.diffusion.samplers import SAMPLERS
    from worldenv.serving import COMMITS

    assert set(typing.get_args(Sampler)) == set(SAMPLERS)
    assert typing.get_args(Commit) == COMMITS
    assert set(typing.get_args(StartPolicy)) == set(POLICIES)


def test_serving_fields_left_none_are_the_bundles_choice():
    shipped = {"serving": {"model": "student_consistency", "sampling_steps": 1, "action_guidance": 1.8, "commit": "frame"}}
    assert DreamConfig().serving(shipped) == Serving("student_consistency", 1, 1.8, "frame")
    assert DreamConfig(sampling_steps=2).serving(shipped) == Serving("student_consistency", 2, 1.8, "frame")
    assert DreamConfig(model="teacher").serving(shipped) == Serving("teacher", 4, 1.0, "latent")
    assert DreamConfig().serving({}) == Serving("teacher", 4, 1.0, "latent")


def test_an_env_takes_either_a_config_or_its_fields_as_keyword_arguments():
    config = DreamConfig(sampling_steps=2)
    assert dream_config(None, {"sampling_steps": 2}, "here") == config
    assert dream_config(config, {}, "here") is config
    with pytest.raises(ValueError, match=r"here: expected the dream's settings either as config= or as keyword arguments"):
        dream_config(config, {"dtype": "float32"}, "here")
    with pytest.raises(TypeError, match=r"here: unknown keyword arguments \['sampling_step'\]"):
        dream_config(None, {"sampling_step": 2}, "here")
    with pytest.raises(TypeError, match="here: expected config to be None or a DreamConfig, got dict"):
        dream_config({"sampling_steps": 2}, {}, "here")


def _rollout(env, actions) -> tuple[np.ndarray, np.ndarray]:
    env.reset(seed=4)
    steps = [env.step(action)[:2] for action in actions]
    return np.stack([frame for frame, _ in steps]), np.array([reward for _, reward in steps])


def test_a_config_and_the_same_keyword_arguments_dream_the_same(reacher_dream):
    """gym.make with keyword arguments, gym.make with config=, and the env class with config=:
    one rollout, bit for bit; the vector env likewise."""
    settings = {"sampling_steps": 2, "action_guidance": 1.5, "commit": "frame", "sampler": "heun"}
    actions = np.random.default_rng(0).uniform(-1, 1, (4, 2)).astype(np.float32)
    by_kwargs = _rollout(gym.make("DiffusionWorld-v0", checkpoint=reacher_dream, **settings), actions)
    by_config = _rollout(gym.make("DiffusionWorld-v0", checkpoint=reacher_dream, config=DreamConfig(**settings)), actions)
    direct = DiffusionWorldEnv(checkpoint=reacher_dream, config=DreamConfig(**settings))
    assert direct.dream.serving == Serving("teacher", 2, 1.5, "frame") and direct.dream.model.sampler == "heun"
    for frames, rewards in (by_config, _rollout(direct, actions)):
        assert np.array_equal(frames, by_kwargs[0]) and np.array_equal(rewards, by_kwargs[1])
    vectors = [
        DiffusionWorldVectorEnv(2, checkpoint=reacher_dream, **settings),
        DiffusionWorldVectorEnv(2, checkpoint=reacher_dream, config=DreamConfig(**settings)),
    ]
    batched = [_rollout(env, np.repeat(actions[:, None], 2, axis=1)) for env in vectors]
    assert np.array_equal(batched[0][0], batched[1][0]) and np.array_equal(batched[0][1], batched[1][1])


def test_evaluations_refuse_recorded_starts():
    from worldenv.eval.evaluate import EvalConfig
    from worldenv.eval.long_rollout import LongRolloutConfig
    from worldenv.eval.revisit import RevisitConfig

    starts = DreamConfig(start_contexts=4)
    with pytest.raises(ValueError, match="EvalConfig: its dreams start from MuJoCo episodes of its own"):
        EvalConfig(dream=starts)
    for config in (LongRolloutConfig(dream=starts), RevisitConfig(dream=starts)):
        with pytest.raises(ValueError, match="expected start_contexts=None, got 4"):
            config.validate()


def test_an_evaluation_report_records_its_config_flat():
    """The form every report and bundle card has had: the dream's serving fields beside the
    evaluation's own, not nested."""
    from worldenv.dream_config import report_config
    from worldenv.eval.evaluate import EvalConfig

    config = EvalConfig(episodes=2, dream=DreamConfig(model="teacher", sampling_steps=3, dtype="bfloat16"))
    record = report_config(config, config.dream.serving({}))
    assert record == {
        "episodes": 2,
        "horizon": 200,
        "context": 4,
        "policies": ["uniform", "smooth", "goal"],
        "seed": 100_000,
        "sampler": "euler",
        "model": "teacher",
        "sampling_steps": 3,
        "action_guidance": 1.0,
        "commit": "latent",
        "dtype": "bfloat16",
    }


DREAMING = ["eval", "compare", "record", "bench"]


def _parse(*argv: str):
    from worldenv.cli import build_parser

    return build_parser().parse_args(list(argv))


def _dream_flags(command: str) -> set[str]:
    import argparse

    from worldenv.cli import build_parser

    (commands,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    parser = commands.choices[command]
    (group,) = [g for g in parser._action_groups if g.title == "how the dream is served"]
    return {flag for action in group._group_actions for flag in action.option_strings}


def test_the_dream_flags_are_one_group_in_every_command_that_dreams():
    serving = {"--model", "--sampling-steps", "--action-guidance", "--commit"}
    common = {"--sampler", "--device", "--dtype"}
    for command in DREAMING:
        flags = _dream_flags(command)
        assert common <= flags, command
        assert (serving <= flags) == (command != "compare"), command  # compare names its models in --models


def test_the_cli_builds_the_dream_config_from_its_flags():
    from worldenv.cli.dream_args import dream_config as from_args

    record = _parse("record", "out.mp4", "--sampling-steps", "2", "--commit", "frame", "--dtype", "bfloat16")
    assert from_args(record) == DreamConfig(sampling_steps=2, commit="frame", dtype="bfloat16")
    # eval scores teacher@8 unless told otherwise, and keeps --steps for the sampling steps
    evaluation = _parse("eval", "--checkpoint", "b", "--steps", "2", "--sampler", "dpm")
    assert from_args(evaluation) == DreamConfig(
        model="teacher", sampling_steps=2, action_guidance=1.0, commit="latent", sampler="dpm"
    )
    assert from_args(_parse("compare", "--checkpoint", "b", "--models", "teacher@1", "--dtype", "float32")) == DreamConfig(
        dtype="float32"
    )
    bench = _parse("bench", "dream", "--sampling-steps", "1", "2", "--dtype", "auto", "bfloat16")
    assert bench.sampling_steps == [1, 2] and bench.dtype == ["auto", "bfloat16"]
    assert from_args(bench, sampling_steps=2, dtype="bfloat16") == DreamConfig(
        model="teacher", sampling_steps=2, action_guidance=1.0, commit="latent", dtype="bfloat16"
    )
    with pytest.raises(ValueError, match="expected action_guidance to be a positive number"):
        from_args(_parse("record", "out.mp4", "--action-guidance", "0"))
