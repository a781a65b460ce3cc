"""The TaylorGLO search (``kind = "taylorglo"``): CMA-ES over a TaylorGLO loss's parameters, a
candidate's fitness its partial training's validation accuracy. One experiment kind among its
siblings (:mod:`taylorglo.epbt`, :mod:`taylorglo.oneshot`), found by the host by name
(:mod:`taylorglo.experiment.kinds`): :mod:`.config` is its ``[search]`` table, :mod:`.kind` its
part of the host's one generation loop."""
