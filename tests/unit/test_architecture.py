"""The layers point one way (pyproject.toml, [tool.importlinter]): the core imports no other
package of ours, connectors only the core, use cases the core and connectors, bot/, workers/ and
console/ one another never and no connector (only use cases and the core), and nothing imports
the application layer. import-linter reads every import,
function-level ones included."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_import_contract_holds():
    lint = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run([str(lint), "--config", str(ROOT / "pyproject.toml"), "--no-cache"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "4 kept, 0 broken" in done.stdout


# Function-level imports are allowed only where they measurably cut a process's start-up or
# size (ARCHITECTURE.md says which and why): everything else imports at the top of its module.
LATE_IMPORTS = {
    ("connectors/embeddings/local.py", "fastembed"),               # ONNX Runtime: not in the web process
    ("connectors/embeddings/sparse.py", "fastembed"),
    ("connectors/embeddings/onnx_dir.py", "onnxruntime"),
    ("connectors/embeddings/onnx_dir.py", "tokenizers"),
    ("connectors/sources/parsing.py", "pypdf"),                      # 0.10 s, only for PDFs
    ("connectors/sources/parsing.py", "docx"),                       # 0.06 s, only for Word files
    ("connectors/sources/parsing.py", "pptx"),                       # 0.12 s, only for slides
    ("connectors/sources/parsing.py", "openpyxl"),                   # 0.17 s, only for spreadsheets
    ("chatops_app/cli/root.py", "chatops_app.container"),          # --help: 0.7 s instead of 2.5 s
    ("chatops_app/cli/serve.py", "chatops_app.worker"),            # worker, beat
    ("chatops_app/cli/demo.py", "chatops_app.demo.run"),
    ("chatops_app/cli/doctor.py", "chatops_app.doctor"),           # every connector's client, as the container
    ("chatops_app/container/identity.py", "connectors.identity.registry"),  # the web process: 1.1 s / 112 MB
    ("chatops_app/container/index.py", "connectors.index.embeddings"),      # instead of 2.5 s / 203 MB
    ("chatops_app/container/index.py", "connectors.embeddings.registry"),   # the providers, the openai SDK
    ("chatops_app/container/index.py", "connectors.index.registry"),
    ("chatops_app/container/index.py", "connectors.llm.registry"),
    ("chatops_app/container/index.py", "connectors.rerank.registry"),   # built with the model, where it answers
    ("chatops_app/container/tools.py", "connectors.tools.registry"),        # the MCP SDK: 0.5 s, workers only
    ("chatops_app/cli/index.py", "chatops_app.index_rebuild"),   # the index and the providers: not for --help
    ("chatops_app/container/workers.py", "chatops_app.index_rebuild"),   # ditto, built for its task only
    # the OTLP exporter and the SDK (90 ms, protobuf) only in processes that export traces
    ("chatops/tracing.py", "opentelemetry.exporter.otlp.proto.http.trace_exporter"),
    ("chatops/tracing.py", "opentelemetry.sdk.resources"),
    ("chatops/tracing.py", "opentelemetry.sdk.trace"),
    ("chatops/tracing.py", "opentelemetry.sdk.trace.export"),
}


def function_level_imports() -> set[tuple[str, str]]:
    import ast

    found = set()
    for root in ("chatops", "connectors", "usecases", "bot", "workers", "console", "chatops_app"):
        for path in sorted((ROOT / root).rglob("*.py")):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    for sub in ast.walk(node):
                        if isinstance(sub, ast.ImportFrom):
                            found.add((path.relative_to(ROOT).as_posix(), sub.module))
                        elif isinstance(sub, ast.Import):
                            found.update((path.relative_to(ROOT).as_posix(), a.name) for a in sub.names)
    return found


def test_no_function_level_imports_but_the_measured_ones():
    assert function_level_imports() - LATE_IMPORTS == set()


def test_the_web_process_does_not_load_the_index_or_the_model():
    """The composition root and everything the web process imports leave qdrant-client, fastembed
    and onnxruntime to the processes that open the index (123 MB instead of 214 MB per web worker)."""
    probe = ("import sys, chatops_app.cli, chatops_app.container; "
             "print(sorted(m for m in ('qdrant_client', 'qdrant_edge', 'fastembed', 'onnxruntime', 'torch') "
             "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_nothing_shipped_imports_the_tests_or_a_test_tool():
    """`make demo` runs on a virtualenv without the test tools, first, from a clean clone: the
    packages, the stand-ins and the demo import nothing under tests/ and no test-only package."""
    import ast

    test_only = {"tests", "pytest", "trustme", "hypothesis", "playwright", "importlinter",
                 "kubernetes_validate"}
    found = []
    for root in ("chatops", "connectors", "usecases", "bot", "workers", "console", "chatops_app", "standins", "demo"):
        for path in sorted((ROOT / root).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                    [a.name for a in node.names] if isinstance(node, ast.Import) else []
                found += [f"{path.relative_to(ROOT)}: {name}" for name in names if name.split(".")[0] in test_only]
    assert found == []
