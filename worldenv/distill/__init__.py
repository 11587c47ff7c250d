"""Step distillation: students that dream a frame in 1-4 network evaluations.

One file per method on the shared base (``base.py``): each student starts as a
copy of the bundle's teacher and is written back into the bundle as component
``student_<method>``, which ``WorldModel`` and ``DiffusionWorld-v0`` load with
``model="student_<method>"``.

- ``consistency.py``: consistency distillation (Song et al. 2023, arXiv 2303.01469),
  for rectified flow, with the target from the online student under stop-gradient
  (Song & Dhariwal 2023, "improved techniques", arXiv 2310.14189).
- ``dmd.py``: distribution matching distillation (DMD, arXiv 2311.18828; DMD2, arXiv
  2405.14867): a frozen teacher score against a fake score trained on the student's samples.
- ``self_forcing.py``: Self-Forcing (arXiv 2506.08009): DMD on the student's own
  autoregressive rollouts through the KV cache, as it dreams at inference.
"""
