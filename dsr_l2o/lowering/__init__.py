"""Compile a formula once into a short program of tensor operations (used by the optimizer).

:mod:`.kernels` holds the tensor values and fused in-place ops, :mod:`.compiler` lowers a sympy
expression into them, :mod:`.program` builds a formula's whole step from its operand layout.
"""

from .compiler import Lowerer, expand_forms
from .kernels import TensorOps, Unsupported
from .program import Program, compile_formula

__all__ = ["Lowerer", "Program", "TensorOps", "Unsupported", "compile_formula", "expand_forms"]
