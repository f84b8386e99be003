"""The faces (web UI, API, CLI, server) reach the core only through RagkbService: they import the
service, the settings, the error types and the answer events, nothing else of rag/ or ingest/, and never
reach into the service's parts. A face that grows logic of its own fails here."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FACES = [*sorted((ROOT / "app" / "api").glob("*.py")), *sorted((ROOT / "app" / "ui").glob("*.py")),
         ROOT / "app" / "cli.py", ROOT / "app" / "server.py"]
CONTRACT = {"rag.settings", "rag.errors", "rag.events"}  # configuration, and the types the service raises/yields


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_faces_import_only_the_service_from_the_core():
    assert len(FACES) >= 12, FACES  # the routers and handler modules are all checked
    offending = {f"{p.relative_to(ROOT)}: {m}" for p in FACES for m in _imports(p)
                 if m.split(".")[0] in ("rag", "ingest") and m not in CONTRACT}
    assert not offending, sorted(offending)


def test_faces_do_not_reach_into_the_service():
    inside = re.compile(r"\bservice\.(store|conversations|answers|llm|users)\b")
    offending = [f"{p.relative_to(ROOT)}:{i}" for p in FACES
                 for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1) if inside.search(line)]
    assert not offending, offending


def test_the_boundary_check_sees_a_violation(tmp_path):
    bad = tmp_path / "face.py"
    bad.write_text("def f():\n    from rag.retrieval import search\n    from app.services import RagkbService\n")
    assert {"rag.retrieval", "app.services"} <= _imports(bad)
