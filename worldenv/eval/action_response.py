"""Does a dream answer an action as MuJoCo does? From the same real starts, both worlds
get the same constant push; the bundle's state probe reads every frame of both, and a
quantity's gain is the least-squares factor from MuJoCo's displacement to the dream's
(1: as MuJoCo; 0: the action ignored). ``benchmarks/action_response.py`` prints and
draws it; the recipe table scores every variant with it."""

import numpy as np

from worldenv.eval.probe import QUANTITIES, probe_readings


def responses(
    dream, truth, probe, scene: str, action: float, starts: int, context: int, steps: int, hold: int | None = None
) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, np.ndarray]]:
    """{world: {quantity: (starts, steps + 1, k) readings}} and {world: (starts, steps + 1,
    H, W, 3) frames} for a dream env and its MuJoCo scene; step 0 is the last context frame
    (``context`` real frames under zero actions prime the dream). The push lasts ``hold``
    steps (all if None), then the action is zero: the arm coasts."""
    still = np.zeros(truth.action_space.shape, np.float32)
    pushes = [np.full(truth.action_space.shape, action, np.float32)] * (steps if hold is None else hold)
    plan = (pushes + [still] * steps)[:steps]
    episodes: dict[str, list[np.ndarray]] = {"mujoco": [], "dream": []}  # per world, each start's frames
    for start in range(starts):
        real = [truth.reset(seed=start)[0]]
        real += [truth.step(still)[0] for _ in range(context - 1)]
        dreamed = [
            dream.reset(seed=start, options={"context_frames": np.stack(real), "context_actions": np.stack([still] * context)})[0]
        ]
        real = real[-1:]
        for push in plan:
            real.append(truth.step(push)[0])
            dreamed.append(dream.step(push)[0])
        episodes["mujoco"].append(np.stack(real))
        episodes["dream"].append(np.stack(dreamed))
    frames = {world: np.stack(f) for world, f in episodes.items()}
    return {world: probe_readings(scene, probe.predict(f)) for world, f in frames.items()}, frames


def displacements(scene: str, readings: dict[str, np.ndarray], step: int) -> dict[str, np.ndarray]:
    """Each quantity's displacement from step 0 to ``step`` (starts, k); angles unwrapped
    along the steps, so a joint turned past half a turn reads as turned, not as reversed."""
    kinds = {q.name: q.kind for q in QUANTITIES[scene]}
    out = {}
    for name, values in readings.items():
        if kinds[name] == "angle":
            values = np.unwrap(values, axis=1)
        out[name] = values[:, step] - values[:, 0]
    return out


def response_gain(pairs: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Least-squares g in dream ~ g * mujoco over all (mujoco, dream) displacement pairs."""
    real = np.concatenate([np.ravel(p[0]) for p in pairs])
    dreamed = np.concatenate([np.ravel(p[1]) for p in pairs])
    return float(real @ dreamed / max(real @ real, 1e-12))


def push_gains(
    dream, truth, probe, scene: str, actions: tuple[float, ...], starts: int, context: int, gain_steps: tuple[int, ...]
) -> dict[int, dict[str, float]]:
    """{step: {quantity: gain}} under constant pushes of each value in ``actions``; a
    quantity of several entries also has each entry's gain (``joint_angles[1]``: the
    elbow alone), since one entry that ignores the push halves the joint gain."""
    pairs: dict[int, dict[str, list]] = {s: {} for s in gain_steps}
    for action in actions:
        worlds, _ = responses(dream, truth, probe, scene, action, starts, context, max(gain_steps))
        for step in gain_steps:
            moved = {world: displacements(scene, worlds[world], step) for world in worlds}
            for name in moved["mujoco"]:
                real, dreamed = moved["mujoco"][name], moved["dream"][name]
                pairs[step].setdefault(name, []).append((real, dreamed))
                if real.shape[-1] > 1:
                    for entry in range(real.shape[-1]):
                        pairs[step].setdefault(f"{name}[{entry}]", []).append((real[..., entry], dreamed[..., entry]))
    return {step: {name: response_gain(p) for name, p in by_name.items()} for step, by_name in pairs.items()}
