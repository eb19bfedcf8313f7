"""trading.engine stays pure: no Django, database, Redis, Channels or Decimal
(docs/ARCHITECTURE.md §2)."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import trading.engine

ENGINE_DIR = Path(trading.engine.__file__).resolve().parent
REPO_ROOT = ENGINE_DIR.parents[1]
FORBIDDEN = ("django", "redis", "channels", "decimal", "psycopg", "celery", "rest_framework")
ALLOWED_IMPORTS = {"bisect", "collections", "heapq", "itertools", "typing"}


def test_importing_the_engine_loads_no_django_database_redis_or_decimal():
    code = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(REPO_ROOT)!r})\n"
        "before = set(sys.modules)\n"
        "import trading.engine\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True
    )
    loaded = json.loads(result.stdout)
    assert "trading.engine.book" in loaded
    offending = [m for m in loaded if m.split(".")[0] in FORBIDDEN]
    assert offending == []


def test_engine_sources_import_only_a_few_standard_modules():
    for path in sorted(ENGINE_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                roots = {node.module.split(".")[0]}
            else:
                continue
            assert roots <= ALLOWED_IMPORTS, f"{path.name}:{node.lineno} imports {roots}"
