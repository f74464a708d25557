"""Media goes through the storage API only: no local paths outside the worker's temporary copy."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("accounts", "analytics", "config", "videos")
# Storage methods that hand out a local file path: S3 and other remote storages have none.
PATH_METHODS = {"path", "temporary_file_path"}
ALLOWED_FUNCTION = ("videos/processing.py", "local_copy")  # The worker's temporary copy for OpenCV.


def _sources() -> list[tuple[str, ast.Module]]:
    files = [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py") if "migrations" not in p.parts]
    return [(p.relative_to(ROOT).as_posix(), ast.parse(p.read_text(), filename=str(p))) for p in files]


def _path_calls(relative: str, tree: ast.Module) -> list[str]:
    found: list[str] = []

    def visit(node: ast.AST, function: str) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            function = node.name
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in PATH_METHODS
            and (relative, function) != ALLOWED_FUNCTION
        ):
            found.append(f"{relative}:{node.lineno} .{node.func.attr}() in {function or 'module'}")
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(tree, "")
    return found


def test_no_local_media_path_outside_the_worker_copy():
    sources = _sources()
    assert any(rel == "videos/processing.py" for rel, _ in sources)
    assert [hit for rel, tree in sources for hit in _path_calls(rel, tree)] == []


def test_the_scan_finds_a_path_call():
    tree = ast.parse("def serve(name):\n    return default_storage.path(name)\n")
    assert _path_calls("videos/media.py", tree) == ["videos/media.py:2 .path() in serve"]


def test_media_root_and_file_responses_stay_out_of_the_code():
    offenders = []
    for rel, tree in _sources():
        for node in ast.walk(tree):
            name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None
            if name == "FileResponse" or (name == "MEDIA_ROOT" and rel != "config/settings.py"):
                offenders.append(f"{rel}:{node.lineno} {name}")
    assert offenders == []
