"""``python -m dsr_l2o.cli`` runs the ``dsr-l2o`` command."""

from . import main

main()
