"""Distillation: fit a formula of a grammar to a teacher optimizer's updates (the seed paper's route).

``record`` runs the teacher on sampled tasks and keeps, per coordinate and step, the grammar's
operands and the teacher's update direction; ``fit`` regresses a soft relaxation of the grammar
on those pairs, reads off candidate formulas and refits their constants by least squares;
``distil`` does both and writes a result directory that ``load_result`` and every command read.
"""

from .fit import FitCandidate, fit
from .record import Trace, record
from .run import distil

__all__ = ["Trace", "record", "FitCandidate", "fit", "distil"]
