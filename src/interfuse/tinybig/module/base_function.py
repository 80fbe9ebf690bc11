"""tinyBIG's ``tinybig.module.base_function``: ``function``, the base of every function here
(:class:`~interfuse.tinybig._base.TinybigFunction` under tinyBIG's name)."""

from interfuse.tinybig._base import TinybigFunction

function = TinybigFunction

__all__ = ["function"]
