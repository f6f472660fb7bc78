"""The package's layers import one way: each subpackage may import only the ones below it (README,
"Layers"). Function-level imports count too, so a lazy import cannot hide an upward dependency."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SIEVE = Path(__file__).resolve().parent.parent / "sieve"

LAYERS = ["_cli", "model", "config", "routing", "_core", "dram", "hw", "trace", "pim", "system", "sched", "results",
          "runtime", "run", "reproduce"]
"""Bottom to top (``_cli``: the command-line helpers every front end shares, standard library only); ``conf``
holds only YAML and ``sieve/__init__.py`` (``sieve.simulate``) sits on top of all."""


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "sieve" and len(parts) > 1 else None


def _imports(path: Path) -> list[tuple[int, str]]:
    rel = path.relative_to(SIEVE.parent).with_suffix("").parts
    package = rel if path.name == "__init__.py" else rel[:-1]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[:len(package) - node.level + 1]) if node.level else ""
            name = ".".join(p for p in (base, node.module) if p)
            out.append((node.lineno, name))
    return out


def _modules():
    for path in sorted(SIEVE.rglob("*.py")):
        own = path.relative_to(SIEVE).parts[0].removesuffix(".py")
        if own != "__init__":
            yield own, path


@pytest.mark.parametrize("own, path", list(_modules()), ids=lambda v: str(v) if isinstance(v, str) else v.name)
def test_imports_go_down_the_layers(own, path):
    assert own in LAYERS or own == "conf", f"{path}: subpackage {own!r} has no place in LAYERS"
    if own == "conf":
        return
    upward = [(line, mod) for line, mod in _imports(path)
              if _layer(mod) and _layer(mod) != own and LAYERS.index(_layer(mod)) > LAYERS.index(own)]
    assert not upward, f"{path.relative_to(SIEVE.parent)} imports upward: {upward}"


def test_results_load_without_the_runtime():
    code = ("import sys, sieve.results, sieve.results.plots, sieve.results.tables; "
            "bad = [m for m in sys.modules if m.startswith('sieve.runtime')]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_runtime_does_not_load_plots_until_it_draws():
    code = ("import sys, sieve.runtime; bad = [m for m in ('sieve.results.plots', 'matplotlib') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
