"""Fair evaluation: tune every optimizer (baseline or discovered formula) on the same lr grid and
seeds, score it by its final training loss, and report the comparison."""

from .baselines import (BASELINE_GROUPS, BASELINE_NAMES, CLASSIC_BASELINES, MODERN_BASELINES, OptimizerSpec,
                        eval_mode, formula_spec, get_baseline, get_baselines, parse_baseline_list, train_mode)
from .compare import Comparison, compare, loss_threshold
from .optimizer_spec import parse_baseline_kwargs
from .protocol import DEFAULT_LRS, EvalProtocol, Run, TuneResult, run_score, steps_to_threshold, train, tune
from .ratios import geometric_mean_ratio, score_ratio
from .report import comparison_json, format_table, save_plots
from .result_dir import read_result_formula

__all__ = [
    "BASELINE_GROUPS", "CLASSIC_BASELINES", "MODERN_BASELINES", "eval_mode", "geometric_mean_ratio",
    "parse_baseline_kwargs", "parse_baseline_list", "score_ratio", "train_mode", "BASELINE_NAMES", "DEFAULT_LRS", "Comparison", "EvalProtocol", "OptimizerSpec", "Run", "TuneResult",
    "compare", "comparison_json", "format_table", "formula_spec", "get_baseline", "get_baselines",
    "loss_threshold", "read_result_formula", "run_score", "save_plots", "steps_to_threshold", "train",
    "tune",
]
