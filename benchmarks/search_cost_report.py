"""Tables and conclusions of ``benchmarks/search_cost.py`` (its ``.md``, written from its ``.json``)."""

from __future__ import annotations

FIXED_DIM = 10_000
FIXED_UNROLL = 10
"""The unroll sweep's optimizee size and the size sweep's unroll."""

BASE_SWEEPS = ("unroll", "params", "dense", "relaxation")
"""The sweeps the growth fits read (the memory sweeps are summarised on their own)."""


def mib(n) -> str:
    return "n/a" if n is None else f"{n / 2**20:,.1f}"


def table(rows) -> list[str]:
    lines = ["| task | params | K | relaxation | estimator | recompute | meta-step s (median) | min s | ms / inner step | "
             "Adam ms / step | ratio to Adam | saved MiB | saved B / param / step | peak RSS growth MiB | all K steps ran |",
             "|---|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        per = "n/a" if r["saved_bytes_per_param_step"] is None else f"{r['saved_bytes_per_param_step']:.0f}"
        ran = {True: "yes", False: "no", None: "n/a"}[r["all_complete"]]
        estimator = "population" if r.get("estimator") == "population" else "truncated BPTT"
        lines.append(f"| {r['task']} | {r['params']:,} | {r['unroll']} | {r['relaxation']} | {estimator} | "
                     f"{r.get('recompute', 0) or '-'} | "
                     f"{r['meta_step_s']:.3f} | {r['meta_step_min_s']:.3f} | {r['inner_step_ms']:.2f} | {r['adam_step_ms']:.3f} | "
                     f"{r['ratio_to_adam']:.0f} | {mib(r['saved_bytes'])} | {per} | "
                     f"{mib(r['rss_growth_bytes'])} | {ran} |")
    return lines


def to_markdown(result: dict) -> str:
    fits, every = result["fits"], result["rows"]
    rows = [r for r in every if r["sweep"] in BASE_SWEEPS]
    unroll_rows = sorted([r for r in rows if r["task"] == "diag" and r["dim"] == FIXED_DIM
                          and r["relaxation"] == "sampled"], key=lambda r: r["unroll"])
    fk, fn, fa = fits["time_vs_unroll"], fits["time_vs_params"], fits["adam_units_vs_unroll"]
    mk, mn = fits["saved_vs_unroll"], fits["saved_vs_params"]
    soft = [r for r in rows if r["sweep"] == "relaxation"]
    sampled_ref = [r for r in unroll_rows if r["unroll"] == FIXED_UNROLL]
    skips = sorted({f"{r['task']} {r['params']:,} K={r['unroll']} {r['relaxation']}: {', '.join(r['skip_reasons'])}"
                    for r in rows if r["skip_reasons"]})
    lines = [
        "# Cost of one search meta-step vs unroll length and optimizee size",
        "",
        "Written by `python benchmarks/search_cost.py`; do not edit by hand.",
        "",
        f"Date: {result['date']}. Machine: {result['machine']}. Wall time {result['wall_seconds']:.0f} s.",
        f"Load average (1/5/15 min) before: {result['load_before']}, after: {result['load_after']} "
        "(shared, loaded machine: absolute times are inflated and noisy; the ratios are measured in "
        "the same process, back to back).",
        "",
        "One meta-step = `MetaTrainer.step()`: K inner steps of a `RelaxedRule` over the default "
        f"grammar ({result['rows'][0]['relaxation_shape']}) and one backward pass through them. "
        f"Median of {result['repeats']} timed meta-steps after a warm-up, each point in a fresh process "
        "with `torch.set_num_threads(1)`. *Ratio to Adam* = (meta-step time / K) / (time of one plain "
        "`torch.optim.Adam` step, i.e. loss + backward + step, on the same task, timed right after each "
        "meta-step). *Saved* = bytes of the unique storages of every tensor saved for backward during one "
        "meta-step (`saved_tensors_hooks`), including the task's constant tensors. *Peak RSS growth* = "
        "`ru_maxrss` after one meta-step minus the current RSS before it (n/a when the peak was not raised).",
        "",
        "`diag` = diagonal quadratic `0.5 sum h_i (w_i - c_i)^2` (O(n) loss, defined in the script); "
        "`dense` = `dsr_l2o.tasks.quadratic.QuadraticTask` (dense n x n Hessian: 100,000 parameters would "
        "need a 40 GB Hessian and O(n^2) work per loss, so the parameter sweep uses `diag`).",
        "",
        *table(every),
        "",
        *memory_section(every),
        "",
        "## Growth",
        "",
        "Time fits use the fastest of the repeats (the least disturbed by other load on the machine); "
        "memory fits use the saved bytes, which do not depend on load.",
        "",
        f"* **Time vs K** (diag, {FIXED_DIM:,} params): meta-step = {fk['intercept']:.3f} s + "
        f"{1e3 * fk['slope']:.1f} ms x K (R^2 = {fk['r2']:.3f}, log-log exponent {fk['loglog_exponent']:.2f}); "
        f"in units of the Adam step timed beside it (cancels the machine's load swings): "
        f"{fa['intercept']:.0f} + {fa['slope']:.1f} x K Adam steps (R^2 = {fa['r2']:.3f}, exponent "
        f"{fa['loglog_exponent']:.2f}).",
        f"* **Saved bytes vs K**: {mib(mk['intercept'])} MiB + {mib(mk['slope'])} MiB x K (R^2 = {mk['r2']:.4f}), "
        f"i.e. {mk['slope'] / FIXED_DIM:.0f} bytes per parameter per unrolled step "
        f"({mk['slope'] / FIXED_DIM / 4:.0f} float32 values).",
        f"* **Time vs params** (diag, K = {FIXED_UNROLL}): meta-step = {fn['intercept']:.3f} s + "
        f"{1e6 * fn['slope']:.2f} us x params (R^2 = {fn['r2']:.3f}), i.e. a fixed "
        f"{1e3 * fn['intercept'] / FIXED_UNROLL:.1f} ms per inner step plus "
        f"{1e9 * fn['slope'] / FIXED_UNROLL:.0f} ns per parameter per inner step; log-log exponent over all sizes {fn['loglog_exponent']:.2f}, over the two largest "
        f"{fits['time_vs_params_top_exponent']:.2f}.",
        f"* **Saved bytes vs params**: slope {mn['slope']:.0f} bytes per parameter per meta-step (R^2 = {mn['r2']:.4f}), "
        f"i.e. {mn['slope'] / FIXED_UNROLL:.0f} bytes per parameter per unrolled step; log-log exponent "
        f"{mn['loglog_exponent']:.2f}.",
    ]
    if soft and sampled_ref:
        s, ref = soft[0], sampled_ref[0]
        lines.append(f"* **soft vs sampled** ({FIXED_DIM:,} params, K = {FIXED_UNROLL}): time x"
                     f"{s['meta_step_min_s'] / ref['meta_step_min_s']:.2f}, saved bytes x{s['saved_bytes'] / ref['saved_bytes']:.2f}.")
    lines += ["", "## Conclusions", "", *result["conclusions"]]
    if skips:
        lines += ["", "Meta-steps whose relaxation update was skipped (the full forward and backward still ran, "
                  "so the cost is unaffected): " + "; ".join(skips) + "."]
    return "\n".join(lines) + "\n"


def memory_section(every) -> list[str]:
    """The recomputed unroll against the plain one, the 1M-parameter target, the population's peak."""
    def find(sweep, dim, recompute=0):
        return next((r for r in every if r["sweep"] == sweep and r["params"] == dim and r.get("recompute", 0) == recompute), None)

    lines = ["## Memory of meta-training (issue 14)", "",
             "*recompute* = `recompute_segment`: the unroll runs in `torch.utils.checkpoint` segments of that many "
             "steps; the backward pass keeps each segment's starting state (parameters and operand buffers) and "
             "recomputes the segment's graph. Peak RSS growth is the honest measure here (the saved-tensor hook "
             "does not see what a checkpointed segment saves while it is recomputed).", ""]
    for dim in sorted({r["params"] for r in every if r["sweep"] == "recompute"}):
        plain, segments = find("recompute", dim), [r for r in every if r["sweep"] == "recompute" and r["params"] == dim
                                                   and r.get("recompute")]
        for seg in segments:
            if plain and plain["rss_growth_bytes"] and seg["rss_growth_bytes"]:
                lines.append(f"* {dim:,} parameters, K = 20, segments of {seg['recompute']}: peak RSS growth "
                             f"{mib(seg['rss_growth_bytes'])} MiB vs {mib(plain['rss_growth_bytes'])} MiB plain "
                             f"(x{seg['rss_growth_bytes'] / plain['rss_growth_bytes']:.2f}), meta-step time "
                             f"x{seg['meta_step_min_s'] / plain['meta_step_min_s']:.2f}.")
            elif plain:
                lines.append(f"* {dim:,} parameters, K = 20, segments of {seg['recompute']}: meta-step time "
                             f"x{seg['meta_step_min_s'] / plain['meta_step_min_s']:.2f} (peak RSS not raised: too small to read).")
    target = next((r for r in every if r["sweep"] == "target"), None)
    plain_big = find("recompute", 100_000)
    if target:
        projected = ""
        if plain_big and plain_big["rss_growth_bytes"]:
            scale = target["params"] / plain_big["params"]
            projected = (f"; the plain unroll, linear in the parameter count (see Growth), would need about "
                         f"{plain_big['rss_growth_bytes'] * scale / 2**30:.1f} GiB ({scale:.0f} x its "
                         f"{plain_big['params']:,}-parameter peak, not run: it does not fit beside the other jobs)")
        total = target.get("peak_rss_bytes")
        lines.append(f"* **Target** {target['params']:,} parameters, K = 20, segments of {target['recompute']}: peak RSS "
                     f"growth {target['rss_growth_bytes'] / 2**30 if target['rss_growth_bytes'] else float('nan'):.2f} GiB, "
                     f"whole process peak {total / 2**30:.2f} GiB, one meta-step {target['meta_step_s']:.0f} s"
                     f"{projected}. Aim (4 GiB): {'met' if total and total < 4 * 2**30 else 'not met'}.")
    population = [r for r in every if r["sweep"] == "population"]
    for r in population:
        lines.append(f"* **Population estimator**, {r['params']:,} parameters (16 formulas x 8 learning rates, "
                     f"the task's {100} steps, no graph): peak RSS growth {mib(r['rss_growth_bytes'])} MiB "
                     f"({(r['rss_growth_bytes'] or 0) / r['params']:.0f} bytes per parameter), one meta-step "
                     f"{r['meta_step_s']:.1f} s.")
    if population and population[-1]["rss_growth_bytes"]:
        per = population[-1]["rss_growth_bytes"] / population[-1]["params"]
        lines += ["", f"The population estimator holds no graph, but its one batched run keeps 16 x 8 = 128 copies of "
                  f"the parameters with their gradients and operand buffers: about {per:,.0f} bytes per parameter, "
                  f"so ~{per * 1e6 / 2**30:.0f} GiB at 1M parameters, more than the recomputed unroll. Scoring the "
                  "formulas in chunks (fewer copies at a time) would cut it in proportion; not done here."]
    return lines


def conclusions(rows, fits) -> list[str]:
    fk, fa, fn, mk, mn = (fits[k] for k in ("time_vs_unroll", "adam_units_vs_unroll", "time_vs_params",
                                            "saved_vs_unroll", "saved_vs_params"))
    top = fits["time_vs_params_top_exponent"]
    big = max((r for r in rows if r["task"] == "diag" and r["unroll"] == FIXED_UNROLL
               and r["relaxation"] == "sampled"), key=lambda r: r["params"])
    ratios = sorted(r["ratio_to_adam"] for r in rows if r["task"] == "diag" and r["relaxation"] == "sampled")
    per_step = mk["slope"] / FIXED_DIM
    rss = [r["rss_growth_bytes"] / r["saved_bytes"] for r in rows
           if r["rss_growth_bytes"] and r["saved_bytes"] > 5 * 2**20]
    rss_note = (f"Peak RSS growth is {min(rss):.2f}x to {max(rss):.2f}x the saved bytes (the backward pass's "
                "buffers come on top)." if rss else "Peak RSS growth could not be read reliably.")
    linear_k = max(fk["r2"], fa["r2"]) >= 0.98
    verdict = "confirmed" if linear_k else "not confirmed (noisy: see R^2)"
    return [
        f"* Time linear in K: {verdict}. Raw seconds R^2 {fk['r2']:.3f} (exponent {fk['loglog_exponent']:.2f}); "
        f"load-normalised R^2 {fa['r2']:.3f} (exponent {fa['loglog_exponent']:.2f}); "
        f"~{1e3 * fk['slope']:.0f} ms per unrolled step at {FIXED_DIM:,} parameters on this machine.",
        f"* Saved memory linear in K: {'confirmed' if mk['r2'] > 0.999 else 'not confirmed'} (R^2 {mk['r2']:.4f}); "
        f"linear in the parameter count: {'confirmed' if mn['r2'] > 0.999 else 'not confirmed'} (R^2 {mn['r2']:.4f}, "
        f"exponent {mn['loglog_exponent']:.2f}). About {per_step:.0f} bytes per parameter per unrolled step "
        f"({per_step / 4:.0f} float32 values), against Adam's 8 bytes per parameter of state: a K = "
        f"{FIXED_UNROLL} truncation keeps ~{per_step * FIXED_UNROLL * 1e6 / 2**30:.1f} GiB of graph per million "
        "parameters. " + rss_note,
        f"* Time vs parameter count is affine, not proportional: a fixed ~{1e3 * fn['intercept'] / FIXED_UNROLL:.0f} ms "
        "per inner step of per-op dispatch overhead (the depth-2 relaxation runs a few hundred small ops "
        "forward and backward) dominates below ~10,000 parameters (exponent over all sizes "
        f"{fn['loglog_exponent']:.2f}); between the two largest sizes the exponent is {top:.2f}"
        f" ({'linear' if 0.8 <= top <= 1.2 else 'not yet linear'}).",
        f"* One inner step of the relaxed rule costs {ratios[0]:.0f}x to {ratios[-1]:.0f}x a plain Adam step on "
        f"the diagonal quadratic ({big['ratio_to_adam']:.0f}x at {big['params']:,} parameters): every candidate of "
        "every mixture is evaluated per coordinate and kept for backward. On the dense-Hessian QuadraticTask the task's own O(n^2) loss shrinks the ratio.",
    ]
