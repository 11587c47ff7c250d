"""worldenv: Gymnasium environments that dream.

Importing the package registers the MuJoCo ground-truth scenes under the
``worldenv/`` namespace (``worldenv/Reacher-v0``, ...). Entry points are strings,
so the import stays light: MuJoCo and torch load only when an env is made.
"""

import os

# MuJoCo picks its OpenGL backend when it is first imported; offscreen EGL works
# headless (software llvmpipe on CPU machines, the driver on GPU machines).
os.environ.setdefault("MUJOCO_GL", "egl")

from worldenv.registration import register_envs  # noqa: E402

__version__ = "0.1.0"

register_envs()
