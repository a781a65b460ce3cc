"""The experiment kinds the host runs, each its part of the one generation loop
(:mod:`taylorglo.experiment.generations`), found by name (:mod:`taylorglo.experiment.kinds`)."""
