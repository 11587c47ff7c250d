import os

# Before anything imports mujoco or torch: headless rendering, and no thread
# oversubscription on the 2-core CI machines.
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _single_thread_torch():
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def reacher_dream(tmp_path_factory):
    """A tiny untrained reacher dream checkpoint (tests/dream_bundles.py)."""
    from dream_bundles import tiny_dream_bundle

    return tiny_dream_bundle(tmp_path_factory.mktemp("dreams") / "reacher", "reacher")


@pytest.fixture(scope="session")
def duo_dream(tmp_path_factory):
    from dream_bundles import tiny_dream_bundle

    return tiny_dream_bundle(tmp_path_factory.mktemp("dreams") / "duo", "duo")


@pytest.fixture(scope="session")
def panorama_dream(tmp_path_factory):
    """A tiny untrained panorama dream with long-term memory and a state probe."""
    from dream_bundles import tiny_dream_bundle

    return tiny_dream_bundle(tmp_path_factory.mktemp("dreams") / "panorama", "panorama", memory_frames=2, probe_outputs=16)


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU; skipped where torch sees none (select with -m gpu)")


def pytest_collection_modifyitems(config, items):
    """Skip the ``gpu`` tests where torch sees no CUDA device, naming why."""
    if not any("gpu" in item.keywords for item in items):
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (the gpu marker); torch sees none here")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
