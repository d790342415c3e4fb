"""tools/*.py are thin: each runs its afb_urr.cli module's main, which setup.py also installs
as a console script; every command shares the help formatter and the --debug option."""
import ast
import importlib
import os
import re

import pytest

from afb_urr.cli import HelpFormatter

from conftest import ROOT, load_tool

TOOLS = sorted(f[:-3] for f in os.listdir(os.path.join(ROOT, "tools")) if f.endswith(".py"))


def _console_scripts() -> dict[str, str]:
    text = open(os.path.join(ROOT, "setup.py")).read()
    return dict(re.findall(r'"(afb-urr-[\w-]+) = (afb_urr\.cli\.\w+:main)"', text))


def test_every_tool_is_a_thin_entry_point():
    assert {"infer", "train", "eval", "benchmark", "bench_eval", "bench_urr"} <= set(TOOLS)
    for name in TOOLS:
        tool = load_tool(name)
        assert tool.main is importlib.import_module(f"afb_urr.cli.{name}").main, name
        source = open(os.path.join(ROOT, "tools", f"{name}.py")).read()
        assert "sys.path" not in source, name
        functions = [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef)]
        assert not functions, f"tools/{name}.py defines {[f.name for f in functions]}: logic belongs in afb_urr.cli"


def test_every_tool_has_a_console_script():
    targets = set(_console_scripts().values())
    assert targets == {f"afb_urr.cli.{name}:main" for name in TOOLS}


@pytest.mark.parametrize("name", TOOLS)
def test_shared_formatter_and_debug_option(name):
    parser = importlib.import_module(f"afb_urr.cli.{name}").build_parser()
    assert parser.formatter_class is HelpFormatter
    assert "--debug" in parser.format_help()
