"""Property tests of the dream env API (issue 32): whatever a caller passes, the single env, the
vector env and the SB3 adapter answer with a valid step or reset, or refuse with a ValueError or
TypeError whose message says what was expected; never another exception. Hypothesis draws actions
(shapes, dtypes, values with nan and inf; numpy arrays, nested lists, torch tensors with gradients
or in bfloat16), seeds, reset options and constructor keyword arguments, each with an oracle for
when it must work. Tiny untrained bundles (tests/dream_bundles.py) keep it to seconds."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from worldenv.envs import DiffusionWorldVectorEnv
from worldenv.envs.sb3 import DreamVecEnv
from worldenv.envs.single import make_dream

N = 3  # envs in a batch: odd, as no default would be
LOW, HIGH = -1.0, 1.0  # the reacher's action bounds
# Module-scoped envs are reset by every example, so sharing them across examples is safe.
EXAMPLES = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def answer(call):
    """``call()``'s result, or None where it refused as the API promises: a ValueError or TypeError
    that says what was expected. Any other exception fails the test as it is. The events
    (``--hypothesis-show-statistics``) show how many examples went each way."""
    try:
        result = call()
    except (ValueError, TypeError) as error:
        assert "expected" in str(error), f"{type(error).__name__} that names nothing expected: {error}"
        event(f"refused with a {type(error).__name__}")
        return None
    event("accepted")
    return result


def as_torch(array: np.ndarray, form: str):
    """``array`` as a torch tensor in ``form``, with what the env should see; None where torch has no
    such dtype (strings, long doubles, a foreign byte order)."""
    try:
        tensor = torch.from_numpy(np.array(array))  # a row of a 1-d array is a numpy scalar
    except (TypeError, ValueError):
        return None
    if form in ("grad", "bfloat16") and not tensor.is_floating_point():
        return tensor, array
    if form == "bfloat16":
        tensor = tensor.to(torch.bfloat16)
        return tensor, tensor.float().numpy()
    if form == "grad":
        return tensor.requires_grad_(), array
    return tensor, array


@st.composite
def actions(draw, shape: tuple[int, ...]):
    """(what a caller passes, the numpy array the env should see, or None for no array at all)."""
    dtypes = st.one_of(
        hnp.floating_dtypes(),
        hnp.integer_dtypes(),
        hnp.unsigned_integer_dtypes(),
        hnp.boolean_dtypes(),
        hnp.complex_number_dtypes(),
        hnp.unicode_string_dtypes(max_len=2),
    )
    shapes = st.one_of(st.just(shape), hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3))
    array = draw(hnp.arrays(draw(dtypes), draw(shapes)))
    form = draw(st.sampled_from(["numpy", "list", "tensor", "grad", "bfloat16", "tensors", "other"]))
    if form == "list":
        return array.tolist(), np.asarray(array.tolist())
    if form in ("tensor", "grad", "bfloat16"):
        return as_torch(array, form) or (array, array)
    if form == "tensors" and array.ndim:  # a list of one tensor per row, as a policy might give per env
        rows = [as_torch(row, draw(st.sampled_from(["tensor", "grad"]))) for row in array]
        if all(rows):
            return [tensor for tensor, _ in rows], np.asarray([seen for _, seen in rows])
    if form == "other":
        return draw(st.sampled_from([None, "0.5", {"action": 0.5}, [[0.5], [0.5, 0.5]], [0.5, None], object()])), None
    return array, array


def must_step(seen, shape) -> bool:
    return seen is not None and seen.dtype.kind in "fiu" and seen.shape == shape and bool(np.all(np.isfinite(seen)))


def clipped(seen: np.ndarray) -> np.ndarray:
    return np.clip(seen, LOW, HIGH).astype(np.float32)


@pytest.fixture(scope="module")
def single(reacher_dream):
    return gym.make("DiffusionWorld-v0", checkpoint=reacher_dream)  # with Gymnasium's wrappers, as users get it


@pytest.fixture(scope="module")
def vector(reacher_dream):
    return gym.make_vec("DiffusionWorld-v0", num_envs=N, checkpoint=reacher_dream)


@pytest.fixture(scope="module")
def sb3(reacher_dream):
    return DreamVecEnv(N, checkpoint=reacher_dream)


def check_single_step(env, out) -> None:
    observation, reward, terminated, truncated, info = out
    assert env.observation_space.contains(observation)
    assert isinstance(reward, float) and math.isfinite(reward)
    assert isinstance(terminated, bool) and isinstance(truncated, bool) and isinstance(info, dict)


def check_vector_step(env, out) -> None:
    observations, rewards, terminated, truncated, info = out
    assert env.observation_space.contains(observations)
    assert rewards.shape == (N,) and np.isfinite(rewards).all()
    assert terminated.shape == truncated.shape == (N,) and terminated.dtype == truncated.dtype == bool


@EXAMPLES
@given(drawn=actions((2,)))
# What it found, kept: numpy took a list of tensors tensor by tensor and raised torch's errors.
@example(drawn=([torch.tensor(0.5, requires_grad=True), torch.tensor(2.0, dtype=torch.bfloat16)], np.array([0.5, 2.0])))
@example(drawn=(torch.zeros(2).to_sparse(), np.zeros(2)))
@example(drawn=(torch.empty(2, device="meta"), None))  # no data: NotImplementedError from torch
def test_single_env_steps_or_refuses_any_action(single, drawn):
    action, seen = drawn
    single.reset(seed=0)
    out = answer(lambda: single.step(action))
    assert (out is not None) == must_step(seen, (2,)), (action, out)
    if out is not None:  # and an action out of bounds is clipped to them, as MuJoCo clips it
        check_single_step(single, out)
        single.reset(seed=0)
        expected = single.step(clipped(seen))
        assert np.array_equal(out[0], expected[0]) and out[1] == expected[1]


@EXAMPLES
@given(drawn=actions((N, 2)))
def test_vector_env_steps_or_refuses_any_action(vector, drawn):
    action, seen = drawn
    vector.reset(seed=0)
    out = answer(lambda: vector.step(action))
    assert (out is not None) == must_step(seen, (N, 2)), (action, out)
    if out is not None:
        check_vector_step(vector, out)
        vector.reset(seed=0)
        expected = vector.step(clipped(seen))
        assert np.array_equal(out[0], expected[0]) and np.array_equal(out[1], expected[1])


@EXAMPLES
@given(drawn=actions((N, 2)))
@example(drawn=(None, None))  # was taken for "no step_async" and raised a RuntimeError
def test_sb3_adapter_steps_or_refuses_any_action(sb3, drawn):
    action, seen = drawn
    sb3.seed(0)
    sb3.reset()
    out = answer(lambda: sb3.step(action))
    assert (out is not None) == must_step(seen, (N, 2)), (action, out)
    if out is not None:
        observations, rewards, dones, infos = out
        assert sb3.observation_space.contains(observations[0]) and observations.shape == (N, 64, 64, 3)
        assert rewards.shape == dones.shape == (N,) and rewards.dtype == np.float32 and len(infos) == N


VALID_SEEDS = [(None, True), (0, True), (2**70, True), (np.int64(3), True)]
SEEDS = [*VALID_SEEDS * 2, (-1, False), (1.5, False), ("1", False), (True, False)]  # mostly valid, as options often are not


@st.composite
def contexts(draw, lead: tuple[int, ...]):
    """(context_frames, context_actions, whether they are a valid context, the actions the env should use)."""
    # Each part is mostly right, so that whole contexts often are.
    frames_t, actions_t = draw(st.sampled_from([(2, 2), (1, 1), (9, 9), (2, 3), (0, 0)]))
    frame_shape, frames_ok = draw(st.sampled_from([((64, 64, 3), True)] * 3 + [((32, 32, 3), False), ((64, 64), False)]))
    dtype = draw(st.sampled_from([np.uint8] * 3 + [np.float32, np.int64]))
    rng = np.random.default_rng(draw(st.integers(0, 9)))
    frames = rng.integers(0, 256, (*lead, frames_t, *frame_shape)).astype(dtype)
    context_actions = rng.uniform(-3, 3, (*lead, actions_t, 2)).astype(np.float32)  # out of bounds too
    poison = draw(st.sampled_from([None] * 3 + [math.nan, math.inf, -math.inf]))
    if poison is not None and context_actions.size:
        context_actions.flat[draw(st.integers(0, context_actions.size - 1))] = poison
    form = draw(st.sampled_from(["numpy", "tensor", "list"]))
    if form == "tensor":
        frames, context_actions = torch.from_numpy(frames), torch.from_numpy(context_actions).requires_grad_()
    elif form == "list":
        context_actions = context_actions.tolist()
    seen = np.asarray(context_actions.detach() if form == "tensor" else context_actions, np.float32)
    valid = frames_ok and dtype == np.uint8 and frames_t == actions_t >= 1 and np.isfinite(seen).all()
    return frames, context_actions, valid, clipped(seen)


@EXAMPLES
@given(seed=st.sampled_from(SEEDS), data=st.data())
def test_single_env_resets_or_refuses_any_seed_and_options(single, seed, data):
    seed, seed_ok = seed
    kind = data.draw(st.sampled_from(["none", "context", "context", "context", "typo", "not a dict"]))
    options, valid, clip = {
        "none": (None, True, None),
        "typo": ({"context_frame": 1}, False, None),
        "not a dict": ([1, 2], False, None),
    }.get(kind, (None, None, None))
    if kind == "context":
        frames, context_actions, valid, clip = data.draw(contexts(()))
        options = {"context_frames": frames, "context_actions": context_actions}
    out = answer(lambda: single.reset(seed=seed, options=options))
    assert (out is not None) == (seed_ok and valid), (seed, options)
    if out is not None:
        assert single.observation_space.contains(out[0])
        step = single.step(np.zeros(2, np.float32))
        check_single_step(single, step)
        if clip is not None:  # the last context frame is the first observation
            assert np.array_equal(out[0], np.asarray(frames)[-1])
        if clip is not None and seed is not None:  # and context actions are clipped as step clips actions
            single.reset(seed=seed, options={"context_frames": frames, "context_actions": clip})
            assert np.array_equal(single.step(np.zeros(2, np.float32))[0], step[0])


@EXAMPLES
@given(
    seed=st.sampled_from([*SEEDS, ([1, 2, 3], True), ([1, None, 2], True), ([1, 2], False), ([1, -1, 2], False)]), data=st.data()
)
def test_vector_env_resets_or_refuses_any_seed_and_options(vector, seed, data):
    seed, seed_ok = seed
    mask, mask_ok = data.draw(
        st.sampled_from(
            [
                (None, True),
                (np.array([True, False, True]), True),
                ([True] * N, True),
                (np.ones(N, int), False),
                (np.ones(N + 1, bool), False),
                ([[True], [True, False]], False),
                (torch.ones(N, dtype=torch.bool), True),
            ]
        )
    )
    options, valid = ({} if mask is None else {"reset_mask": mask}), mask_ok
    if data.draw(st.booleans()):
        rows = int(np.asarray(mask).sum()) if mask_ok and mask is not None else N
        frames, context_actions, context_ok, _ = data.draw(contexts((rows,)))
        options.update(context_frames=frames, context_actions=context_actions)
        valid = valid and context_ok
    vector.reset(seed=0)  # a masked reset keeps the other envs going: they must have started
    out = answer(lambda: vector.reset(seed=seed, options=options))
    assert (out is not None) == (seed_ok and valid), (seed, options)
    if out is not None:
        assert vector.observation_space.contains(out[0])
        check_vector_step(vector, vector.step(np.zeros((N, 2), np.float32)))


@EXAMPLES
@given(
    seed=st.sampled_from([(0, True), (7, True), (-2, False)]),
    options=st.sampled_from([(None, True), ({"reset_mask": np.ones(N, bool)}, True), ({"reset_masks": 1}, False)]),
)
def test_sb3_adapter_resets_or_refuses_seeds_and_options(sb3, seed, options):
    (seed, seed_ok), (options, options_ok) = seed, options
    sb3.seed(seed)
    sb3.set_options(options)
    out = answer(sb3.reset)
    assert (out is not None) == (seed_ok and options_ok)
    if out is None:  # SB3 keeps a refused seed and options for the next reset: replace them
        sb3.seed(0)
        sb3.set_options(None)
        out = sb3.reset()
    assert out.shape == (N, 64, 64, 3) and out.dtype == np.uint8


# Keyword arguments every dream takes: (value, whether it is valid with the tiny reacher bundle).
KWARGS = {
    "scene": [(None, True), ("reacher", True), ("duo", False), ("nope", False), (3, False), (["reacher"], False)],
    "model": [(None, True), ("teacher", True), ("student", False), ("tokenizer", False), (3, False)],
    "sampler": [("euler", True), ("heun", True), ("dpm", True), ("bad", False), (None, False), (3, False)],
    "sampling_steps": [(None, True), (1, True), (np.int64(2), True), (0, False), (1.5, False), ("2", False), (True, False)],
    "device": [
        ("cpu", True),
        (torch.device("cpu"), True),
        ("mps" if not torch.backends.mps.is_available() else "tpu", False),
        ("tpu", False),
        (None, False),
        (3, False),
    ],
    "dtype": [
        (None, True),
        ("auto", True),
        ("float32", True),
        ("bfloat16", True),
        (torch.float32, True),
        (torch.float16, False),
        ("float64", False),
        (3, False),
    ],
    "action_guidance": [
        (None, True),
        (1.0, True),
        (2, True),
        (0, False),
        (-1.0, False),
        (math.nan, False),
        (math.inf, False),
        ("1", False),
    ],
    "commit": [(None, True), ("latent", True), ("frame", True), ("pixels", False), (3, False)],
    "start_contexts": [(None, True), (1, True), (0, False), (-1, False), (1.5, False), (True, False), ("2", False)],
    "start_within": [(0, True), (2, True), (-1, False), (1.5, False), ("a", False)],
    "start_policy": [("mix", True), ("gentle", True), ("bad", False), (3, False)],
    "render_mode": [(None, True), ("rgb_array", True), ("human", False), (3, False)],
}
LIMITS = [(None, True), (5, True), (np.int64(5), True), (0, False), (2.5, False), ("5", False)]


@st.composite
def keyword_arguments(draw, extra: dict):
    """Some of ``KWARGS`` and ``extra``: (kwargs, whether the dream must be made from them)."""
    table = {**KWARGS, **extra}
    names = draw(st.sets(st.sampled_from(sorted(table)), max_size=4))
    drawn = {name: draw(st.sampled_from(table[name])) for name in names}
    kwargs = {name: value for name, (value, _) in drawn.items()}
    valid = all(ok for _, ok in drawn.values())
    # A recorded bank of starts is what start_within and start_policy shape.
    if kwargs.get("start_contexts") is None and (kwargs.get("start_within", 0) or kwargs.get("start_policy", "mix") != "mix"):
        valid = False
    return kwargs, valid


MAKERS = {
    "single": (lambda checkpoint, **kw: make_dream(checkpoint=checkpoint, **kw), {"episode_steps": LIMITS}),
    "vector": (
        lambda checkpoint, **kw: DiffusionWorldVectorEnv(N, checkpoint=checkpoint, **kw),
        {
            "max_episode_steps": LIMITS,
            "autoreset_mode": [("NextStep", True), ("SameStep", True), ("sometimes", False), (None, False)],
        },
    ),
    "sb3": (lambda checkpoint, **kw: DreamVecEnv(N, checkpoint=checkpoint, **kw), {"max_episode_steps": LIMITS}),
}


@pytest.mark.parametrize("kind", sorted(MAKERS))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_dream_is_made_or_refused_from_any_keyword_arguments(reacher_dream, kind, data):
    make, extra = MAKERS[kind]
    kwargs, valid = data.draw(keyword_arguments(extra))
    env = answer(lambda: make(reacher_dream, **kwargs))
    assert (env is not None) == valid, kwargs
    if env is None:
        return
    if kind == "single":
        env.reset(seed=0)
        check_single_step(env, env.step(np.zeros(2, np.float32)))
    elif kind == "vector":
        env.reset(seed=0)
        check_vector_step(env, env.step(np.zeros((N, 2), np.float32)))
    else:
        env.reset()
        observations, rewards, dones, infos = env.step(np.zeros((N, 2), np.float32))
        assert observations.shape == (N, 64, 64, 3) and rewards.shape == dones.shape == (N,)
    env.close()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"model": "student"}, r"expected model to be None \(the bundle's choice\) or one of \['teacher'\]"),
        ({"sampler": "rk4"}, r"expected sampler to be one of \['dpm', 'euler', 'heun'\], got 'rk4'"),
        ({"scene": "duo"}, r"a checkpoint of scene 'reacher', but scene='duo' was asked for; expected scene=None or 'reacher'"),
        ({"start_contexts": 1, "start_within": -1}, r"expected start_within to be a number of steps >= 0, got -1"),
        ({"start_policy": "gentle"}, r"expected start_contexts=N with start_within=0 and start_policy='gentle'"),
    ],
)
def test_what_the_property_tests_found_in_keyword_arguments(reacher_dream, kwargs, message):
    """Each was a CheckpointError (a RuntimeError) naming the bundle, a refusal only at the first
    step, or a message naming another argument."""
    with pytest.raises(ValueError, match=message):
        make_dream(checkpoint=reacher_dream, **kwargs)


def test_numpy_integers_are_seeds_and_limits(reacher_dream):
    """Gymnasium refuses a numpy integer seed with its own error type; the dreams take it as an int."""
    env = make_dream(checkpoint=reacher_dream, episode_steps=np.int64(2))
    assert np.array_equal(env.reset(seed=np.int64(3))[0], env.reset(seed=3)[0])
    vector = DiffusionWorldVectorEnv(N, checkpoint=reacher_dream)
    assert np.array_equal(vector.reset(seed=np.int64(3))[0], vector.reset(seed=3)[0])
    with pytest.raises(ValueError, match=r"expected seed to be None or a non-negative integer, got -1"):
        vector.reset(seed=[1, -1, 2])
