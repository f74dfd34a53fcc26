"""``chatops eval`` (retrieval quality on a BEIR folder) and ``chatops models`` (the offline
embedding model)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from chatops_app.cli.root import main, opened
from connectors.index.models import install as install_models
from connectors.index.retriever import STRATEGIES
from usecases.evaluate import evaluate


@main.group(name="eval")
def eval_group():
    """Measure retrieval quality."""


@eval_group.command("retrieval")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--k", default=10, show_default=True, type=int)
@click.option("--stage", "stages", multiple=True, type=click.Choice([*STRATEGIES, "all"]),
              help="Strategies to score (repeatable); default: the configured one (CHATOPS_RETRIEVAL).")
@click.option("--dense-weight", type=float, help="Weight of the dense list in 'weighted' fusion.")
@click.option("--index-dir", type=click.Path(path_type=Path),
              help="Keep the index here and reuse it next time (unchanged documents are skipped).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def eval_retrieval(ctx, folder: Path, k: int, stages: tuple[str, ...], dense_weight: float | None,
                   index_dir: Path | None, as_json: bool):
    """nDCG@k, recall@k, MRR@k and latency on a BEIR folder (ingested into a throwaway index)."""
    with opened(ctx) as container:
        settings = container.settings
        chosen = list(STRATEGIES) if "all" in stages else list(stages) or [settings.retrieval]
        engine = container.engine
        results = evaluate(folder, embedder=container.embedder,
                           index_factory=lambda path, dim: engine.open(path=path, dim=dim, collection="eval"),
                           strategies=chosen, k=k,
                           dense_weight=settings.dense_weight if dense_weight is None else dense_weight,
                           candidates=settings.candidates, progress=sys.stderr.isatty(), index_dir=index_dir)
    if as_json:
        click.echo(json.dumps(results[chosen[0]] if len(chosen) == 1 else results))
        return
    for strategy, m in results.items():
        click.echo(f"{strategy:9s} nDCG@{k} {m[f'ndcg@{k}']:.4f}  recall@{k} {m[f'recall@{k}']:.4f}  "
                   f"MRR@{k} {m[f'mrr@{k}']:.4f}  queries {m['queries']}  "
                   f"latency p50 {m['latency_ms']['p50']:.1f} ms p99 {m['latency_ms']['p99']:.1f} ms")


@main.group()
def models():
    """Offline embedding models."""


@models.command("install")
def models_install():
    """Prepare the default embedding model folder (no torch, no model hub)."""
    install_models(progress=lambda m: click.echo(m, err=True))
