"""The package's shape: imports point one way (README, Architecture), modules stay short."""
import ast
import os

import pytest

from conftest import ROOT

PACKAGE = os.path.join(ROOT, "afb_urr")
# Lower ranks never import higher ones; equal ranks only within one area.
RANKS = {"config": 0, "io": 0, "bank": 1, "readout": 2, "ops": 2, "data": 2, "evaluation": 2,
         "model": 3, "checkpoint": 4, "inference": 5, "training": 6, "cli": 7}


def _modules():
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                yield os.path.relpath(path, PACKAGE), path


def _area(rel: str) -> str:
    return rel.split(os.sep)[0].removesuffix(".py")


def _imported_areas(rel: str, tree: ast.AST):
    depth = rel.count(os.sep)  # how many packages below afb_urr
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0:
                parts = (node.module or "").split(".")
                if parts[0] == "afb_urr" and len(parts) > 1:
                    yield parts[1]
                continue
            up = node.level - 1  # packages above this module's own
            if up > depth:
                continue
            if up == depth:  # relative to afb_urr itself
                if node.module:
                    yield node.module.split(".")[0]
                else:
                    yield from (alias.name for alias in node.names)
            else:
                yield _area(rel)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "afb_urr" and len(parts) > 1:
                    yield parts[1]


def test_imports_point_down():
    bad = []
    for rel, path in _modules():
        area = _area(rel)
        if area not in RANKS:
            continue
        tree = ast.parse(open(path).read())
        for other in set(_imported_areas(rel, tree)):
            if other in RANKS and other != area and RANKS[other] >= RANKS[area]:
                bad.append(f"{rel} imports afb_urr.{other}")
    assert not bad, bad


@pytest.mark.parametrize("area", ["inference", "io", "evaluation", "cli", "model"])
def test_modules_and_functions_are_short(area):
    for rel, path in _modules():
        if _area(rel) != area:
            continue
        source = open(path).read()
        assert source.count("\n") <= 400, rel
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef) and node.name != "build_parser":
                assert node.end_lineno - node.lineno < 60, f"{rel}: {node.name}"
