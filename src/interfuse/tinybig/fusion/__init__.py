"""tinyBIG's ``tinybig.fusion``: every fusion class, in tinyBIG's files, and the base class
:class:`fusion` (from :mod:`interfuse.tinybig.module.base_fusion`)."""

import interfuse.tinybig.fusion.basic_fusion as _basic
import interfuse.tinybig.fusion.concatenation_fusion as _concatenation
import interfuse.tinybig.fusion.metric_fusion as _metric
import interfuse.tinybig.fusion.parameterized_concatenation_fusion as _parameterized
from interfuse.tinybig.fusion.basic_fusion import *  # noqa: F403
from interfuse.tinybig.fusion.concatenation_fusion import *  # noqa: F403
from interfuse.tinybig.fusion.metric_fusion import *  # noqa: F403
from interfuse.tinybig.fusion.parameterized_concatenation_fusion import *  # noqa: F403
from interfuse.tinybig.module.base_fusion import fusion

__all__ = ["fusion"]
__all__ += _basic.__all__
__all__ += _concatenation.__all__
__all__ += _metric.__all__
__all__ += _parameterized.__all__
__all__.sort(key=lambda name: (not name.isupper(), name[0].islower(), name))  # as ruff sorts
