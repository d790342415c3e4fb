from conftest import load_tool



def test_benchmark_runs_and_prints_its_table(capsys):
    bench = load_tool("benchmark")
    assert bench.main(["--frames", "4", "--size", "32x48", "--budget", "500"]) == 0
    out = capsys.readouterr().out
    assert "fps" in out and "bank entries" in out and "peak" in out
