"""One-shot experiments (``kind = "oneshot"``, the reference's ``kind: oneShot``): given losses
trained on the full schedule N times each with paired seeds, crash-safe, then compared. An
experiment kind beside :mod:`taylorglo.glo` and :mod:`taylorglo.epbt`: :mod:`.config` is its
``[oneshot]`` table, :mod:`.kind` what ``start`` and ``status`` do (the one final loop of
:mod:`taylorglo.experiment.final`), :mod:`.report` its page."""
