"""``interfuse demo``: one wide RPN-style model per fusion strategy, on bundled or your data.

Run it as ``interfuse demo`` (or ``python -m interfuse.demo``); :func:`main` takes the command's
arguments. The parts are importable: :mod:`~interfuse.demo.data` (digits and CSV loading),
:mod:`~interfuse.demo.expansions` (identity, polynomial and Fourier expansions),
:mod:`~interfuse.demo.model` (heads, the wide network and the strategies) and
:mod:`~interfuse.demo.report` (tables and plot).
"""

from interfuse.demo.run import load_model, main

__all__ = ["load_model", "main"]
