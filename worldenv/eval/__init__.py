"""Evaluation, reporting and video: every way the project measures a dream against the
MuJoCo ground truth it imitates (``evaluate``, ``compare``, ``long_rollout``, ``revisit``,
``action_response``, ``memory_rules``, ``step_anatomy``, ``training_snapshots``,
``bench``), the state probe that reads task state off frames, the metrics, and what
they write (``plots``, ``card``, ``record``, ``video``, ``demo``)."""
