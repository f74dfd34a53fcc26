"""``chatops eval`` (retrieval quality on a BEIR folder, answer quality on a question set) and
``chatops models`` (the offline embedding model)."""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
from pathlib import Path

import click

from chatops.access import Audience
from chatops.errors import ConfigError
from chatops_app.cli.root import main, opened
from connectors.identity.directory import DirectoryProvider
from connectors.index.models import install as install_models
from connectors.index.retriever import STRATEGIES, Retriever, check_strategy
from connectors.llm.settings import LLMSettings
from connectors.sources.filesystem.acl import AclRules
from connectors.sources.filesystem.connector import FilesystemSource
from usecases.answer_eval import AnswerSet, Judge, SetError, calibration, evaluate_answers, rates_of
from usecases.ask import Pipeline
from usecases.evaluate import evaluate
from usecases.evidence import EvidenceRule, calibration_path, rule_for
from usecases.ingest import ingest


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


@eval_group.command("answers")
@click.option("--set", "set_paths", required=True, multiple=True, type=click.Path(path_type=Path),
              help="An answer set (YAML; repeatable). See docs/retrieval.md.")
@click.option("--corpus", type=click.Path(path_type=Path),
              help="The corpus folder of a set that names none (e.g. ../shared/data/handbook-37signals).")
@click.option("--k", default=5, show_default=True, type=int, help="Retrieval depth for hit@k and MRR@k.")
@click.option("--judge", is_flag=True, help="Have the configured language model score faithfulness and "
              "answerability (needs OPENAI_API_KEY or OPENAI_BASE_URL).")
@click.option("--rule", type=click.Choice(["calibrated", "floor"]),
              help="The no-evidence rule: the embedder's calibrated one, or the similarity floor alone "
                   "(CHATOPS_MIN_SIMILARITY; the rule before calibration), to compare. "
                   "Default: CHATOPS_NO_EVIDENCE_RULE.")
@click.option("--calibrate", is_flag=True, help="Find the no-evidence rule with the fewest errors on these "
              "sets and save it for this embedder (in CHATOPS_DATA_DIR/calibration/).")
@click.option("--cases", "show_cases", is_flag=True, help="Also print each case's outcome.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def eval_answers(ctx, set_paths: tuple[Path, ...], corpus: Path | None, k: int, judge: bool, rule: str | None,
                 calibrate: bool, show_cases: bool, as_json: bool):
    """Answer quality on question sets: retrieval hit@k and MRR, citation precision, no-evidence
    rates, leaks, latency per stage and tokens. Exit 0: done, no leak; 1: a leak (a document the
    asker may not see was retrieved or cited); 2: a usage or set error."""
    try:
        sets = [AnswerSet.load(p, corpus=corpus) for p in set_paths]
    except SetError as exc:
        raise ConfigError(str(exc)) from None
    with opened(ctx) as container:
        s = container.settings
        if judge and container.llm is None:
            raise ConfigError("--judge needs a language model: set OPENAI_API_KEY or OPENAI_BASE_URL")
        embedder = container.embedder
        name = getattr(embedder, "name", None)
        reranker = getattr(container, "reranker", None)
        reranker_name = getattr(reranker, "name", None)
        chosen = (rule_for(name, s.data_dir, min_similarity=s.min_similarity, reranker=reranker_name)
                  if (rule or s.no_evidence_rule) == "calibrated"
                  else EvidenceRule(min_similarity=s.min_similarity, min_overlap=0.0, embedder=name))
        reports, everything = {}, []
        for answer_set in sets:
            click.echo(f"{answer_set.path}: {len(answer_set.cases)} cases"
                       + (f", corpus {answer_set.corpus}" if answer_set.corpus else ", the configured index"),
                       err=True)
            with _answer_setup(container, answer_set, chosen) as (pipeline, visible, passages):
                summary, results = evaluate_answers(
                    answer_set, pipeline, visible, k=k, judge=Judge(container.llm) if judge else None,
                    passages=passages, progress=lambda line: click.echo(line, err=True))
            summary["rule_errors"] = rates_of(chosen, results)
            _record(container, answer_set.path, k, summary, {
                "embedder": name, "reranker": reranker_name, "rule": rule or s.no_evidence_rule,
                "model": s.of(LLMSettings).llm_model if container.llm is not None else None,
                "retrieval": s.retrieval})
            if show_cases or as_json:
                summary["results"] = [r.as_json() for r in results]
            reports[str(answer_set.path)] = summary
            everything.extend(results)
        if calibrate:
            found = calibration(everything, floor=s.min_similarity, embedder=name)
            found["before"] = rates_of(chosen, everything)   # with the rule this run used
            found["before_rule"] = rule or s.no_evidence_rule
            found["sets"] = [str(p) for p in set_paths]
            found["reranker"] = reranker_name
            path = calibration_path(s.data_dir, name, reranker_name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(found, indent=2) + "\n")
            reports["calibration"] = {**found, "saved": str(path)}
    if as_json:
        click.echo(json.dumps(reports if len(reports) > 1 else next(iter(reports.values())), ensure_ascii=False))
    else:
        for where, m in reports.items():
            click.echo(_answers_text(where, m, k))
    if sum(m.get("leaks", 0) for m in reports.values()):
        sys.exit(1)


def _record(container, path: Path, k: int, summary: dict, config: dict) -> None:
    """The run's summary in the audit trail (kind ``evaluation``): the console's Evaluations page shows
    the last one per set and configuration. Not recorded: a warning, the evaluation still counts."""
    try:
        container.store.audit("evaluation", detail={"set": str(path), "k": k, "config": config,
                                                    "summary": dict(summary)})
    except Exception as exc:  # noqa: BLE001 - the measurement stands without its record
        click.echo(f"warning: the evaluation was not recorded in the audit trail ({type(exc).__name__}: {exc})",
                   err=True)


def _pct(value) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _answers_text(where: str, m: dict, k: int) -> str:
    if where == "calibration":
        r, before, after = m["rule"], m["before"], m["errors"]
        return (f"calibration for {m['embedder']}: min_similarity {r['min_similarity']:.3f}  strong_similarity "
                f"{r['strong_similarity']:.3f}  min_overlap {r['min_overlap']:.3f}  min_rerank {r['min_rerank']}\n"
                f"  before ({m['before_rule']} rule): no-evidence on unanswerable {_pct(before['no_evidence_rate'])}, false no-evidence "
                f"{_pct(before['false_no_evidence_rate'])}\n"
                f"  after (calibrated): no-evidence on unanswerable {_pct(after['no_evidence_rate'])}, false no-evidence "
                f"{_pct(after['false_no_evidence_rate'])}  ({m['samples']} questions; saved to {m['saved']})")
    lines = [f"{where}: {m['cases']} cases ({m['answerable']} answerable, {m['unanswerable']} not, "
             f"{m['refused']} refused)",
             f"  retrieval   hit@{k} {_pct(m[f'hit@{k}'])}  MRR@{k} {_pct(m[f'mrr@{k}'])}",
             f"  citations   precision {_pct(m['citation_precision'])}",
             f"  no-evidence on unanswerable {_pct(m['no_evidence_rate'])}  false no-evidence on answerable "
             f"{_pct(m['false_no_evidence_rate'])}",
             f"  leaks       {m['leaks']}",
             "  latency ms  " + "  ".join(f"{stage} p50 {v['p50']:.1f} p95 {v['p95']:.1f}"
                                        for stage, v in m["latency_ms"].items() if v["p95"] > 0),
             f"  tokens      in {m['tokens']['input']}  out {m['tokens']['output']}"]
    if "judge" in m:
        j = m["judge"]
        lines.append(f"  judge       faithfulness {_pct(j['faithfulness'])}  agrees with the set "
                     f"{_pct(j['agreement'])}  ({j['judged']} judged, {j['errors']} errors)")
    for r in m.get("results", []):
        mark = "LEAK " if r["leaks"] else ""
        lines.append(f"    {mark}{r['mode']:11s} {r['as']:28s} {r['question'][:70]}  cited {r['cited']}")
    return "\n".join(lines)


@contextlib.contextmanager
def _answer_setup(container, answer_set, rule):
    """The pipeline a set is asked through, who may see what, and the passages a person is given:
    its corpus ingested into a scratch index (its own directory, if it names one), or the
    configured index and identity provider."""
    s = container.settings
    embedder = container.embedder
    groups = None if answer_set.directory is not None else s.group_names
    if isinstance(answer_set.directory, list):
        identity = DirectoryProvider(answer_set.directory, groups)
    elif answer_set.directory is not None:
        identity = DirectoryProvider.from_file(answer_set.directory, groups)
    else:
        identity = container.identity
    with contextlib.ExitStack() as stack:
        if answer_set.corpus is not None:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="chatops-eval-answers-")))
            index = container.engine.open(path=tmp, dim=embedder.dim, collection="eval")
            stack.callback(index.close)
            source = FilesystemSource(answer_set.corpus, groups=groups)
            if answer_set.acl is not None:
                source.rules = AclRules.parse(answer_set.acl, where=f"{answer_set.path}: acl", groups=groups)
            report = ingest(source, index, embedder, progress=sys.stderr.isatty())
            click.echo(report.summary(), err=True)

            def visible(principal, src, doc_id):
                return Audience.of(principal).may_use(source.rules.acl_for(doc_id), source.source_id)
        else:
            index = container.index

            def visible(principal, src, doc_id):
                state = index.documents(src, [doc_id]).get(doc_id) if src else None
                return state is not None and Audience.of(principal).may_use(state.acl, src)
        pipeline = Pipeline(identity=identity, index=index, embedder=embedder, llm=container.llm,
                            top_k=s.top_k, candidates=s.candidates, min_similarity=s.min_similarity,
                            evidence=rule, strategy=check_strategy(s.retrieval), dense_weight=s.dense_weight,
                            reranker=getattr(container, "reranker", None))
        retriever = Retriever(index, embedder, strategy=pipeline.strategy, dense_weight=s.dense_weight,
                              candidates=s.candidates)

        def passages(question, principal):
            hits = retriever.search(retriever.embed(question), Audience.of(principal), limit=s.top_k)
            return [(h.chunk.doc_id, f"({h.chunk.heading})\n{h.chunk.text}" if h.chunk.heading else h.chunk.text)
                    for h in hits]

        yield pipeline, visible, passages
