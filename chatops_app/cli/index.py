"""``chatops index``: the index's generations (one per embedder), re-embedding into a new one, switching.

``status`` shows the active generation and the others; ``rebuild`` re-embeds the stored chunks
with another embedder into a new generation beside the active one, checks it and switches
(usecases/rebuild.py); ``switch`` makes another generation active (a rollback); ``remove``
deletes a generation that is not active. See docs/retrieval.md "Changing the embedding model".
"""

from __future__ import annotations

import json

import click

from chatops.errors import ConfigError
from chatops_app.cli.root import build_container, main, settings_of


@main.group()
def index():
    """The index's generations: status, rebuild with another embedder, switch, remove."""


@index.command()
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@click.pass_context
def status(ctx, as_json: bool):
    """The active generation (embedder, points, documents, when built), the others and their state,
    and whether the configured embedder matches the active one."""
    from chatops_app.index_rebuild import status_of   # the index's connectors: not for --help

    out = status_of(settings_of(ctx))
    if as_json:
        click.echo(json.dumps(out))
        return
    c = out["configured"]
    click.echo(f"engine {out['engine']}; configured embedder {c['provider']}:{c['model']}"
               + (f" ({c['dim']} dims)" if c["dim"] else "")
               + ("" if out["configured_matches_active"] else " — does NOT match the active generation"))
    for row in out["generations"]:
        emb = row["embedder"]
        what = f"{emb['provider']}:{emb['model']} ({emb['dim']} dims)" if emb else "embedder not recorded"
        state = row["state"]
        if state == "building":
            state = f"building {row.get('done', 0)}/{row.get('total', 0)}"
        size = ("held by a running worker" if row["held_by_another_process"] else
                f"{row['points']} points, {row['documents']} documents")
        when = row.get("checked_at") or row.get("built_at")
        click.echo(f"{'*' if row['active'] else ' '} {row['generation']}  {what}  {state}  {size}"
                   + (f"  built {when}" if when else "") + (f"  ({row['detail']})" if row.get("detail") else ""))


@index.command()
@click.option("--embedder", "embedder_spec", metavar="PROVIDER[:MODEL]",
              help="The embedder of the new generation (default: the configured one, CHATOPS_EMBEDDING_*); "
                   "its other settings (URL, key, batches) as configured.")
@click.option("--switch/--no-switch", default=True, show_default=True,
              help="Make the new generation active once it is checked.")
@click.option("--prune", is_flag=True, help="Remove the generation that was active, once switched.")
@click.option("--timeout", type=click.FloatRange(min=0), default=60, show_default=True,
              help="When a worker holds the embedded index: seconds to wait for it to take the rebuild.")
@click.pass_context
def rebuild(ctx, embedder_spec: str | None, switch: bool, prune: bool, timeout: float):
    """Re-embed the stored chunks with an embedder into a new generation beside the active one,
    check it (same documents, chunks and ACLs), switch to it. Resumable: run it again after a crash."""
    from chatops_app.index_rebuild import (IndexBusy, parse_embedder, previous, rebuild_here, rebuild_via_worker,
                                           remove_when_free)

    settings = settings_of(ctx)
    provider, model = parse_embedder(embedder_spec, settings)
    echo = lambda line: click.echo(line, err=True)  # noqa: E731
    try:
        report = rebuild_here(settings, provider, model, switch=switch, progress=echo)
    except IndexBusy:
        echo("a worker holds the embedded index: the rebuild runs there; following it")
        container = build_container(settings)
        try:
            report = rebuild_via_worker(settings, provider, model, switch=switch, progress=echo, timeout=timeout,
                                        dispatch=container.dispatch)
        finally:
            container.close()
    if report is None:
        return
    click.echo(report if isinstance(report, str) else report.summary())
    if prune and switch:
        remove_when_free(settings, previous(report), echo)


@index.command(name="switch")
@click.argument("generation")
@click.pass_context
def switch_cmd(ctx, generation: str):
    """Make GENERATION the active one (e.g. back to the one kept after a rebuild). Running workers
    follow within CHATOPS_INDEX_SWITCH_POLL seconds; set CHATOPS_EMBEDDING_* to its embedder
    before they restart."""
    from chatops_app.index_rebuild import describe, generations_for

    settings = settings_of(ctx)
    gens = generations_for(settings)
    state = gens.state(generation)
    if state is not None and state.state != "checked":
        raise ConfigError(f"generation {generation} is {state.state}, not checked: finish it with "
                          "`chatops index rebuild --embedder ...` first")
    before = gens.active()
    gens.switch(generation)
    emb = describe(gens.built(generation))
    click.echo(f"switched from {before} to {generation}"
               + (f" ({emb['provider']}:{emb['model']}, {emb['dim']} dims)" if emb else ""))


@index.command()
@click.argument("generation")
@click.pass_context
def remove(ctx, generation: str):
    """Delete a generation that is not the active one (its files, or its collection)."""
    from chatops_app.index_rebuild import generations_for, remove_when_free

    settings = settings_of(ctx)
    gens = generations_for(settings)
    if generation == gens.active():
        raise ConfigError(f"{generation} is the active generation: `chatops index switch` to another first")
    remove_when_free(settings, generation, lambda line: click.echo(line), wait=0)
