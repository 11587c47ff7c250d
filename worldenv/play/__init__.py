"""``worldenv play``: a local web page where a person drives a dream beside MuJoCo.

One module per concept: ``protocol`` (the messages both ways), ``controls`` (each scene's
keys, gamepad axes and mouse), ``pair`` (the dream and MuJoCo from the same real start),
``session`` (one player's connection: pacing, limits, saving), ``server`` (the aiohttp
application, its player slots and ``serve``), and ``static/`` (the page: plain HTML and JS,
nothing built, nothing fetched from elsewhere).
"""

from worldenv.play.server import PlayConfig, make_app, serve

__all__ = ["PlayConfig", "make_app", "serve"]
