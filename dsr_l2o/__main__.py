"""``python -m dsr_l2o`` runs the ``dsr-l2o`` command (so ``torchrun -m dsr_l2o search ...`` works)."""

from .cli import main

main()
