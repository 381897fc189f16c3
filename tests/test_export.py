"""Exports of a real result directory: standalone torch optimizer, LaTeX, Markdown, JSON, CLI."""

import ast
import importlib.util
import json

import pytest
import torch
from sklearn.datasets import load_digits

from dsr_l2o.cli import main
from dsr_l2o.export import export_text, read_result
from dsr_l2o.export.torch_source import torch_source
from dsr_l2o.formula import parse_formula
from dsr_l2o.grammar import data_path, load_grammar
from dsr_l2o.optimizer import SymbolicOptimizer
from result_dir_factory import ADAM, LION, make_result_dir


@pytest.fixture(scope="module")
def adam_dir(tmp_path_factory):
    return make_result_dir(tmp_path_factory.mktemp("results") / "adam_like", *ADAM)


def import_source(source: str, path):
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def digits(dtype):
    data = load_digits()
    x = torch.tensor(data.data[:256] / 16.0, dtype=dtype)
    y = torch.tensor(data.target[:256])
    return x, y


def train(make_optimizer, dtype, steps=12):
    torch.manual_seed(3)
    model = torch.nn.Sequential(torch.nn.Linear(64, 16), torch.nn.Tanh(), torch.nn.Linear(16, 10)).to(dtype)
    opt = make_optimizer(model.parameters())
    x, y = digits(dtype)
    trajectory = []
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        trajectory.append([p.detach().clone() for p in model.parameters()])
    return trajectory, loss.item()


@pytest.mark.parametrize("formula, grammar_file", [
    ADAM, LION,
    ("exp(sign(g)*sign(m))*g", "default.yaml"),
    ("g / (abs(m) + sqrt(v)) + 0.01 * log(v) * sign(g)", "default.yaml"),
])
def test_torch_export_steps_like_symbolic_optimizer(tmp_path, formula, grammar_file):
    grammar = load_grammar(data_path("grammars", grammar_file))
    parsed = parse_formula(formula, grammar)
    result = make_result_dir(tmp_path / "result", formula, grammar_file, evaluate=False)
    source = export_text(read_result(result), "torch")
    module = import_source(source, tmp_path / "discovered_opt.py")
    for dtype in (torch.float64, torch.float32):
        ours, loss_a = train(lambda ps: module.DiscoveredOptimizer(ps, lr=0.01, weight_decay=0.05), dtype)
        ref, loss_b = train(lambda ps: SymbolicOptimizer(ps, parsed, lr=0.01, weight_decay=0.05), dtype)
        rtol, atol = (1e-6, 1e-9) if dtype == torch.float64 else (1e-4, 2e-5)
        for step, (a, b) in enumerate(zip(ours, ref)):
            for pa, pb in zip(a, b):
                torch.testing.assert_close(pa, pb, rtol=rtol, atol=atol, msg=f"step {step}")
    assert loss_a < 2.31  # it trained: below chance-level cross entropy log(10)


def test_torch_export_imports_only_torch_and_documents_itself(adam_dir):
    source = export_text(read_result(adam_dir), "torch")
    tree = ast.parse(source)
    imports = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imports |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert {name.split(".")[0] for name in imports} - {"warnings"} == {"torch"}  # torch and the standard library only
    doc = ast.get_docstring(tree)
    assert r"\frac{\hat{m}}{\sqrt{\hat{v}}" in doc and r"\hat{m}_t = \frac" in doc
    assert "default" in doc and "meta_steps=3" in doc and "2026-11-26" in doc
    assert 'state["m_hat"]' in source and 'state["m"]' not in source  # state only for needed operands


def test_torch_export_foreach_path_steps_alike_and_excludes_fused(tmp_path):
    f = parse_formula("m_hat / (sqrt(v_hat) + 1e-8) + 0.1 * sign(g) * abs(m)", load_grammar(None))
    module = import_source(torch_source(f, lr=0.01), tmp_path / "paths_export.py")
    reference, _ = train(lambda ps: SymbolicOptimizer(ps, f, lr=0.01, weight_decay=0.1), torch.float32, steps=4)
    got, _ = train(lambda ps: module.DiscoveredOptimizer(ps, weight_decay=0.1, foreach=True), torch.float32, steps=4)
    for step_ref, step_got in zip(reference, got):
        for a, b in zip(step_ref, step_got):
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="exclude each other"):
        module.DiscoveredOptimizer([torch.zeros(2, requires_grad=True)], foreach=True, fused=True)


def test_torch_export_falls_back_when_compile_is_unavailable(tmp_path, monkeypatch):
    f = parse_formula("m / (abs(g) + 1)", load_grammar(None))
    module = import_source(torch_source(f, lr=0.01), tmp_path / "fallback_export.py")

    def unavailable(*args, **kwargs):
        raise RuntimeError("torch.compile is not supported on this Python")

    monkeypatch.setattr(torch, "compile", unavailable)
    reference, _ = train(lambda ps: module.DiscoveredOptimizer(ps), torch.float64, steps=3)
    with pytest.warns(RuntimeWarning, match="torch.compile failed"):
        got, _ = train(lambda ps: module.DiscoveredOptimizer(ps, fused=True), torch.float64, steps=3)
    for a, b in zip(reference[-1], got[-1]):
        torch.testing.assert_close(b, a, rtol=0, atol=0)


def _step_many(make, n, steps=3):
    gen = torch.Generator().manual_seed(4)
    params = [torch.randn(2 + i % 3, generator=gen, dtype=torch.float64).requires_grad_() for i in range(n)]
    opt = make(params)
    for step in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=torch.Generator().manual_seed(step), dtype=p.dtype)
        opt.step()
    return params


@pytest.mark.parametrize("fail_the_shorter_chunk", [False, True])
def test_torch_export_runs_many_tensors_in_chunks_and_a_failed_chunk_once(tmp_path, monkeypatch,
                                                                          fail_the_shorter_chunk):
    f = parse_formula("m_hat / (sqrt(v_hat) + 1e-8)", load_grammar(None))
    module = import_source(torch_source(f, lr=0.01), tmp_path / "chunks_export.py")
    n = 2 * module._CHUNK + 3
    reference = _step_many(lambda ps: module.DiscoveredOptimizer(ps, weight_decay=0.1), n)
    lengths = []

    def traced_as_python(fn, **kwargs):  # the compiled call runs the function itself and sees each chunk
        def call(params, *args):
            lengths.append(len(params))
            if fail_the_shorter_chunk and len(params) < module._CHUNK:
                raise RuntimeError("the C++ compiler ran out of memory")
            return fn(params, *args)
        return call

    monkeypatch.setattr(torch, "compile", traced_as_python)
    fused = lambda ps: module.DiscoveredOptimizer(ps, weight_decay=0.1, fused=True)  # noqa: E731
    if fail_the_shorter_chunk:
        with pytest.warns(RuntimeWarning, match="torch.compile failed"):
            got = _step_many(fused, n)
    else:
        got = _step_many(fused, n)
    assert lengths[:3] == [module._CHUNK, module._CHUNK, 3]
    for a, b in zip(reference, got):  # every tensor stepped once per step, whatever path it took
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-14)


def test_torch_export_keeps_lion_state_small(tmp_path):
    result = make_result_dir(tmp_path / "lion", *LION, evaluate=False)
    source = export_text(read_result(result), "torch")
    assert source.count("torch.zeros_like") == 1 and "safe_div" not in source


def test_latex_has_update_and_operand_definitions(adam_dir):
    text = export_text(read_result(adam_dir), "latex")
    assert r"w_t &= w_{t-1} - 0.01" in text
    assert r"\hat{v}^{\mathrm{raw}}_t &= 0.999" in text and r"1 - 0.999^{t}" in text
    assert r"\begin{align*}" in text and r"\end{align*}" in text


def test_markdown_report_has_table_plots_and_candidates(adam_dir, tmp_path):
    out = tmp_path / "report" / "page.md"
    main(["export", str(adam_dir), "--format", "markdown", "-o", str(out)])
    page = out.read_text()
    assert "| task | optimizer | score | best lr | score / adam | score / best baseline | rank |" in page
    assert "| quadratic_wellcond | **<code>found</code>** |" in page
    assert "| quadratic_wellcond | <code>sgd</code>" in page and "(best baseline) |" in page
    assert "![loss quadratic wellcond](plots/loss_quadratic_wellcond.png)" in page
    assert (out.parent / "plots" / "loss_quadratic_wellcond.png").stat().st_size > 1000
    assert "worse than sgd \\| tuned" in page and "$$" in page
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".")] == []


def test_json_export_adds_simplified_form(adam_dir, capsys):
    main(["export", str(adam_dir), "--format", "json"])
    data = json.loads(capsys.readouterr().out)
    assert data["formula"] == ADAM[0]
    assert data["simplified"]["formula"] == "m_hat / (sqrt(v_hat) + 1e-08)"
    assert data["simplified"]["complexity"] == 6
    assert r"\hat{m}" in data["simplified"]["latex"] and "v_hat" in data["operands_latex"]


def one_line_error(capsys, args):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.startswith("error: ") and err.count("\n") == 1
    return err


def test_export_errors_are_one_line(tmp_path, capsys):
    assert "not a directory" in one_line_error(capsys, ["export", str(tmp_path / "nope"), "--format", "json"])
    assert "result.json: missing" in one_line_error(capsys, ["export", str(tmp_path), "--format", "latex"])
    (tmp_path / "result.json").write_text("{not json")
    assert "not valid JSON" in one_line_error(capsys, ["export", str(tmp_path), "--format", "torch"])
    (tmp_path / "result.json").write_text(json.dumps({"lr": 0.1}))
    assert "'formula'" in one_line_error(capsys, ["export", str(tmp_path), "--format", "markdown"])
    (tmp_path / "result.json").write_text(json.dumps({"formula": "sign(m)", "grammar": "lion"}))
    assert "grammar.yaml: missing" in one_line_error(capsys, ["export", str(tmp_path), "--format", "json"])
    (tmp_path / "result.json").write_text(json.dumps({"formula": "sign(q)"}))
    assert "does not parse" in one_line_error(capsys, ["export", str(tmp_path), "--format", "json"])
    (tmp_path / "result.json").write_text(json.dumps({"formula": "sign(m)"}))
    assert "class name" in one_line_error(
        capsys, ["export", str(tmp_path), "--format", "torch", "--class-name", "not valid"])
