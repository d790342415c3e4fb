import importlib.util
import os

TOOLS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools")


def _load(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(TOOLS, name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_benchmark_runs_and_prints_its_table(capsys):
    bench = _load("benchmark")
    assert bench.main(["--frames", "4", "--size", "32x48", "--budget", "500"]) == 0
    out = capsys.readouterr().out
    assert "fps" in out and "bank entries" in out and "peak" in out
