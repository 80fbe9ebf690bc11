"""``interfuse demo``: a multi-view study of the fusions, on bundled or your data.

Run it as ``interfuse demo`` (or ``python -m interfuse.demo``); :func:`main` takes the command's
arguments. The parts are importable: :mod:`~interfuse.demo.data` (UCI Multiple Features,
digits and CSV loading, the three-way split), :mod:`~interfuse.demo.model` (view heads, the
network and the strategies, drawn from the fusion and matrix registries),
:mod:`~interfuse.demo.train` (training, validation-chosen epochs, missing-view masks) and
:mod:`~interfuse.demo.report` (advice, tables and plots).
"""

from interfuse.demo.run import load_model, main

__all__ = ["load_model", "main"]
