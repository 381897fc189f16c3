"""Distillation: fit a formula of a grammar to a teacher optimizer's updates (the seed paper's route).

``record`` runs the teacher on sampled tasks and keeps, per coordinate and step, the grammar's
operands and the teacher's update direction; ``exact.search`` enumerates small formulas and
composites of them, refits their constants and verifies them on held-out episodes (``fit`` is
the older route: regress a soft relaxation and read formulas off); ``missing.suggest`` names an
operand the grammar may lack; ``distil`` does it all and writes a result directory that
``load_result`` and every command read.
"""

from .exact import Candidate, search
from .fit import FitCandidate, fit
from .record import Trace, record
from .run import distil
from .teacher import teacher_spec

__all__ = ["Trace", "record", "Candidate", "search", "FitCandidate", "fit", "distil", "teacher_spec"]
