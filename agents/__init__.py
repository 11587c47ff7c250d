"""The agent scripts, one package: each runs as ``python agents/<script>.py`` or
``python -m agents.<script>``, and they import each other as ``agents.<module>``;
``common.py`` holds what they share, the typed command line among it."""
