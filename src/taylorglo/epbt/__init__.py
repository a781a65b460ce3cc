"""EPBT: population-based training that evolves TaylorGLO losses and hyperparameters *during*
training (SPEC §7). :mod:`.config` is the ``[epbt]`` table, :mod:`.population` the genes and their
mutation, :mod:`.selection` exploit and novelty pulsation, :mod:`.runner` the crash-safe loop that
``taylorglo start`` runs for ``kind = "epbt"``."""
