"""The package's shape: data flows one way, so its imports form no circle, each layer is a folder that
imports only its own and the folders below it, and no library module imports the Hydra entry modules
(hdc.cli, behind train.py, eval.py, predict.py, serve.py and export.py)."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
# Bottom up, one folder of src/hdc per layer ("" is the package's own files: errors, paths, precisions, the
# Prediction type). models/ is plain torch (no data, files, Lightning); classifier/ trains a model on batches
# and holds the checkpoint format, which training and inference both reach from above; viz/ draws
# Predictions; the entry modules (cli/), the package's `hdc.load` and the Hydra plugin sit on top.
FOLDERS = ["", "models", "data", "classifier", "inference", "viz", "training", "cli"]
TOP = {"hdc", "hydra_plugins.hdc_optuna_sweeper", "hydra_plugins.hdc_optuna_sweeper.optuna_sweeper"}


def layers(modules, src: Path = SRC) -> list[set[str]]:
    """`modules` grouped by FOLDERS, bottom up (TOP last)."""
    grouped = [set() for _ in FOLDERS] + [set()]
    for name in modules:
        parts = name.split(".")
        folder = parts[1] if len(parts) > 1 and (src / "hdc" / parts[1]).is_dir() else ""
        grouped[len(FOLDERS) if name in TOP else FOLDERS.index(folder)].add(name)
    return grouped


def module_name(path: Path, src: Path) -> str:
    parts = path.relative_to(src).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(src: Path = SRC) -> dict[str, set[str]]:
    """{module under src: the modules under src it imports, at the top or inside a function}."""
    modules = {module_name(path, src): path for path in src.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                candidates = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            else:
                continue
            found |= {c for c in candidates if c in modules and c != name}
        graph[name] = found
    return graph


def circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of `graph` (a -> b -> a), or None."""
    done, path = set(), []

    def visit(module: str) -> list[str] | None:
        if module in path:
            return path[path.index(module) :] + [module]
        if module in done:
            return None
        path.append(module)
        for imported in sorted(graph[module] - {"hdc"}):  # `import hdc` alone: the package's lazy __init__
            if found := visit(imported):
                return found
        path.pop()
        done.add(module)
        return None

    return next((found for module in sorted(graph) if (found := visit(module))), None)


def test_no_import_circles():
    graph = imports()
    assert {"hdc.inference.predictor", "hdc.classifier.checkpoint", "hdc.classifier.module"} <= set(
        graph
    )  # the walk saw the package
    assert circle(graph) is None


def upward(graph: dict[str, set[str]], layers: list[set[str]]) -> list[str]:
    """The imports of `graph` from a module to one in a higher layer."""
    layer = {module: i for i, modules in enumerate(layers) for module in modules}
    return sorted(f"{a} -> {b}" for a, found in graph.items() for b in found if layer[b] > layer[a])


def test_each_layer_imports_only_its_own_and_those_below():
    graph = imports()
    folders = sorted(path.name for path in (SRC / "hdc").iterdir() if (path / "__init__.py").exists())
    assert folders == sorted(FOLDERS[1:])  # a new folder is given its layer here
    assert upward(graph, layers(graph)) == []


def test_the_models_are_plain_torch():
    """Nothing of Hydra, Lightning, files or data: a model reads tensors (hdc.models' docstring)."""
    for name in layers(imports())[FOLDERS.index("models")]:
        path = SRC / (name.replace(".", "/") + ("/__init__.py" if name == "hdc.models" else ".py"))
        found = {alias.name.split(".")[0] for node in ast.walk(ast.parse(path.read_text()))
                 if isinstance(node, ast.Import) for alias in node.names}  # fmt: skip
        found |= {node.module.split(".")[0] for node in ast.walk(ast.parse(path.read_text()))
                  if isinstance(node, ast.ImportFrom) and node.module}  # fmt: skip
        assert found <= {"torch", "numpy", "hdc", "collections", "dataclasses", "functools", "importlib", "inspect",
                         "math", "typing", "warnings"}, (name, found)  # fmt: skip


def test_the_library_never_imports_an_entry_point_module():
    graph = imports()
    entry = {name for name in graph if name.startswith("hdc.cli.")}
    assert {"hdc.cli.train", "hdc.cli.evaluate", "hdc.cli.predict", "hdc.cli.serve", "hdc.cli.export"} <= entry
    importers = {name: sorted(entry & found) for name, found in graph.items() if entry & found}
    assert importers == {}


def test_a_circle_is_found(tmp_path):
    """The checks above can fail: two modules that import each other (one inside a function) are a circle."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("from pkg.b import x\n")
    (tmp_path / "pkg" / "b.py").write_text("def f():\n    from pkg import a\n")
    (tmp_path / "pkg" / "c.py").write_text("import pkg.a\n")
    graph = imports(tmp_path)
    assert graph == {"pkg.a": {"pkg.b"}, "pkg.b": {"pkg.a"}, "pkg.c": {"pkg.a"}}
    assert circle(graph) == ["pkg.a", "pkg.b", "pkg.a"]
    assert upward(graph, [{"pkg.b"}, {"pkg.a", "pkg.c"}]) == ["pkg.b -> pkg.a"]
