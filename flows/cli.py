"""The `atlaswatch` command: each command a few lines over a plain function."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from flows.settings import ConfigError, Settings, load_settings

F = TypeVar("F", bound=Callable[..., Any])


def friendly_errors(function: F) -> F:
    """Turn the library's specific exceptions into one clear line, with what to do next."""

    @wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from alerts.send import DeliveryError
        from classifiers import ModelFileError
        from flows.feedlist import FeedURLError
        from flows.opml import OpmlError
        from storage import StorageError

        try:
            return function(*args, **kwargs)
        except ConfigError as error:
            raise click.ClickException(f"configuration: {error}") from error
        except StorageError as error:
            raise click.ClickException(f"database: {error}") from error
        except ModelFileError as error:
            raise click.ClickException(f"classifier model: {error}") from error
        except DeliveryError as error:
            hint = " The articles stay pending for the next digest." if error.retry else ""
            raise click.ClickException(f"digest not sent: {error}.{hint}") from error
        except OpmlError as error:
            raise click.ClickException(f"OPML: {error}") from error
        except FeedURLError as error:
            raise click.ClickException(f"feed: {error}") from error

    return wrapper  # type: ignore[return-value]


class Context:
    def __init__(self, config: str | None):
        self.config = config
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config)
        return self._settings

    def prefect(self) -> None:
        """Prefect reads its environment at import: configure it before the flows are imported."""
        from flows.prefect_env import configure_prefect

        configure_prefect(self.settings)

    def flow_runs(self) -> AbstractContextManager[None]:
        """Prefect configured, for flows called here (see flows.prefect_env.direct_flow_runs)."""
        self.prefect()
        from flows.prefect_env import direct_flow_runs

        return direct_flow_runs()

    def polls(self) -> AbstractContextManager[None]:
        """As flow_runs(), for a command that polls: the worker server starts first, so its
        imports overlap Prefect's start-up."""
        from flows.modelstore import current_model_path, start_worker_server_with

        start_worker_server_with(current_model_path(self.settings, self.db()))
        return self.flow_runs()

    def db(self) -> Any:
        from storage import open_database

        return open_database(self.settings.storage.path)


pass_context = click.make_pass_decorator(Context)


def model_option(help_text: str) -> Callable[[F], F]:
    """`--model FILE`, passed as `model_path`: the commands that classify take it."""
    return click.option(
        "--model", "model_path", type=click.Path(dir_okay=False, exists=True), help=help_text
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "-c",
    type=click.Path(dir_okay=False),
    envvar="ATLASWATCH_CONFIG",
    help="TOML configuration file (default: $ATLASWATCH_CONFIG, else the built-in defaults).",
)
@click.version_option(package_name="atlaswatch")
@click.pass_context
def main(ctx: click.Context, config: str | None) -> None:
    """atlaswatch: monitor news on Morocco's defence and security cooperation.

    Polls news feeds, extracts and classifies articles by partner and topic, stores them in SQLite
    and emails a daily digest. Every run is visible in the Prefect UI (`atlaswatch ui`).
    """
    ctx.obj = Context(config)


@main.command()
@pass_context
@friendly_errors
def run(ctx: Context) -> None:
    """Poll the configured feeds once, then send the digest of what is new."""
    with ctx.polls():
        from flows.pipeline import poll_feeds, send_digest

        _print_poll(poll_feeds(ctx.config))
        _print_digest(send_digest(ctx.config))


@main.command()
@click.option("--feed", "feeds", multiple=True, help="Poll only this feed URL (repeatable).")
@click.option(
    "--all", "force", is_flag=True, help="Poll every active feed now, even those backing off."
)
@pass_context
@friendly_errors
def poll(ctx: Context, feeds: tuple[str, ...], force: bool) -> None:
    """Poll the feeds that are due: fetch, extract, classify and store new articles."""
    with ctx.polls():
        from flows.pipeline import poll_feeds

        _print_poll(poll_feeds(ctx.config, list(feeds) or None, force))


@main.command()
@click.option(
    "--dry-run", is_flag=True, help="Render the digest and show it; send and mark nothing."
)
@pass_context
@friendly_errors
def digest(ctx: Context, dry_run: bool) -> None:
    """Send the digest of relevant articles not sent yet (to the outbox folder when no SMTP host is set)."""
    with ctx.flow_runs():
        from flows.pipeline import send_digest

        _print_digest(send_digest(ctx.config, dry_run), dry_run)


@main.command()
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("data/demo"),
    show_default=True,
    help="Where the demo keeps its database, outbox and Prefect runs.",
)
@friendly_errors
def demo(workdir: Path) -> None:
    """Run the whole pipeline offline on bundled sample feeds served from 127.0.0.1."""
    from flows.demo import run_demo

    run_demo(workdir, echo=click.echo)


@main.command()
@pass_context
@friendly_errors
def serve(ctx: Context) -> None:
    """Run the schedules: poll every N minutes, the digest on its cron, retrain on demand."""
    ctx.prefect()
    from flows.pipeline import serve_schedules

    s = ctx.settings.schedule
    if not os.environ.get("PREFECT_API_URL"):
        click.echo(
            "Note: no PREFECT_API_URL, so a temporary Prefect server lives as long as this command. "
            "For a lasting setup run `atlaswatch ui` in another terminal and start this with "
            "PREFECT_API_URL=http://127.0.0.1:4200/api.",
            err=True,
        )
    click.echo(
        f"Serving: poll every {s.poll_every_minutes} min, digest at '{s.digest_cron}' ({s.timezone}). "
        "Ctrl-C stops."
    )
    serve_schedules(ctx.config)


@main.command()
@click.argument("source", type=click.File("r", encoding="utf-8"), default="-")
@click.option(
    "--explain",
    is_flag=True,
    help="Add the supporting sentence and weightiest features of each tag.",
)
@model_option("Model file to use instead of the current one.")
@pass_context
@friendly_errors
def classify(ctx: Context, source: Any, explain: bool, model_path: str | None) -> None:
    """Classify JSON Lines from SOURCE (default stdin): each {"text", "id"?, "title"?, "lang"?}.

    Writes one JSON object per input line: id, relevant, score, partners, topics, lang.
    """
    from flows.classify import ClassifyInputError, classify_lines, read_requests

    try:
        requests = read_requests(source)
    except ClassifyInputError as error:
        raise click.ClickException(str(error)) from error
    model = _model(ctx, model_path)
    for line in classify_lines(model, requests, explain=explain):
        click.echo(line)


def _model(ctx: Context, model_path: str | None) -> Any:
    import classifiers
    from flows.modelstore import load_current_model

    if model_path:
        return classifiers.load_model(Path(model_path))
    db = ctx.db() if ctx.settings.storage.path.exists() else None
    return load_current_model(ctx.settings, db)


@main.command()
@click.option("--force", is_flag=True, help="Promote the new model even if it scores lower.")
@pass_context
@friendly_errors
def retrain(ctx: Context, force: bool) -> None:
    """Fit a new model on the starter corpus plus your labels; promote it if it is not worse."""
    with ctx.flow_runs():
        from flows.pipeline import retrain_classifier

        result = retrain_classifier(ctx.config, force)
    verdict = (
        "promoted: classify, poll and digest now use it" if result["promoted"] else "kept aside"
    )
    click.echo(
        f"Model {result['version']} ({result['labels']} labels of yours) {verdict}.\n"
        f"{result['reason']}.\nFile: {result['path']}"
    )


@main.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("data/evaluation"),
    show_default=True,
    help="Folder for evaluation.json and evaluation.md.",
)
@model_option("Model file to evaluate instead of the current one.")
@pass_context
@friendly_errors
def evaluate(ctx: Context, out_dir: Path, model_path: str | None) -> None:
    """Score the current model on the held-out split: per label, per language, threshold curve."""
    import classifiers

    model = _model(ctx, model_path)
    report = classifiers.evaluate(model, classifiers.load_corpus("heldout"))
    json_path, md_path = classifiers.write_report(report, out_dir)
    click.echo(classifiers.report_markdown(report))
    click.echo(f"Written: {json_path} and {md_path}")


@main.group(invoke_without_command=True)
@click.pass_context
@friendly_errors
def feeds(click_ctx: click.Context) -> None:
    """List the feeds with their health (subcommands: add, import-opml, export-opml)."""
    if click_ctx.invoked_subcommand is None:
        from flows.feedlist import feed_table, sync_configured

        ctx: Context = click_ctx.obj
        db = ctx.db()
        sync_configured(db, ctx.settings)
        click.echo(feed_table(db))


@feeds.command("add")
@click.argument("url")
@click.option("--name", default="", help="Display name.")
@pass_context
@friendly_errors
def feeds_add(ctx: Context, url: str, name: str) -> None:
    """Add one feed to the polled list."""
    from flows.feedlist import add_feeds

    added = add_feeds(ctx.db(), [(url, name)])
    click.echo(f"Added {added} feed." if added else f"{url} is already polled.")


@feeds.command("import-opml")
@click.argument("path", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@pass_context
@friendly_errors
def feeds_import(ctx: Context, path: Path) -> None:
    """Add every feed of an OPML file (as exported by feed readers)."""
    from flows.feedlist import add_feeds
    from flows.opml import read_opml

    found = read_opml(path.read_bytes())
    added = add_feeds(ctx.db(), found)
    click.echo(f"{len(found)} feed(s) in {path}, {added} new.")


@feeds.command("export-opml")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path), required=False)
@pass_context
@friendly_errors
def feeds_export(ctx: Context, path: Path | None) -> None:
    """Write the polled feeds as OPML to PATH (default stdout)."""
    from flows.feedlist import sync_configured
    from flows.opml import write_opml
    from storage.feeds import list_feeds

    db = ctx.db()
    sync_configured(db, ctx.settings)
    text = write_opml((row["url"], row["name"]) for row in list_feeds(db))
    if path:
        path.write_text(text, encoding="utf-8")
        click.echo(f"Written {path}")
    else:
        click.echo(text, nl=False)


@main.command()
@click.argument("article_id")
@click.option(
    "--relevant/--not-relevant", required=True, help="Is the article about Morocco's cooperation?"
)
@click.option(
    "--partner", "partners", multiple=True, help="Partner code (US, FR, NATO, ...); repeatable."
)
@click.option(
    "--topic", "topics", multiple=True, help="Topic (exercise, procurement, ...); repeatable."
)
@pass_context
@friendly_errors
def label(
    ctx: Context,
    article_id: str,
    relevant: bool,
    partners: tuple[str, ...],
    topics: tuple[str, ...],
) -> None:
    """Correct the tags of a stored article; `atlaswatch retrain` learns from your labels."""
    from flows.labelling import LabelError, label_article

    try:
        count = label_article(ctx.db(), article_id, relevant, partners, topics, datetime.now(UTC))
    except LabelError as error:
        raise click.ClickException(str(error)) from error
    click.echo(
        f"Labelled {article_id}. You have {count} label(s); run `atlaswatch retrain` to learn from them."
    )


@main.command()
@pass_context
@friendly_errors
def status(ctx: Context) -> None:
    """Articles stored, pending digest items, the current model, the last runs and failing feeds."""
    from flows.feedlist import status_text

    click.echo(status_text(ctx.db(), ctx.settings))


@main.command()
@click.option(
    "--port", default=4200, show_default=True, help="Port of the Prefect UI on 127.0.0.1."
)
@pass_context
@friendly_errors
def ui(ctx: Context, port: int) -> None:
    """Start the Prefect server and UI over atlaswatch's run history (Ctrl-C stops)."""
    ctx.prefect()
    click.echo(f"Prefect UI on http://127.0.0.1:{port} (PREFECT_HOME={os.environ['PREFECT_HOME']})")
    command = [
        sys.executable,
        "-m",
        "prefect",
        "server",
        "start",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    raise SystemExit(subprocess.call(command))


def _print_poll(summary: dict) -> None:
    click.echo(
        f"Poll: {summary['feeds']} feed(s), {summary['stored']} new article(s), "
        f"{summary['relevant']} relevant, {summary['failed']} feed(s) failed."
    )
    if summary.get("model_problem"):
        click.echo(
            f"Classifier unavailable, articles stored unclassified: {summary['model_problem']}",
            err=True,
        )


def _print_digest(outcome: dict, dry_run: bool = False) -> None:
    if not outcome["stories"]:
        click.echo("Digest: nothing new to send.")
    elif dry_run:
        click.echo(
            f"Digest (dry run): {outcome['stories']} stor(ies) would be sent: {outcome['subject']}"
        )
    else:
        where = outcome.get("path") or "SMTP"
        click.echo(
            f"Digest: {outcome['stories']} stor(ies) sent via {outcome['transport']} ({where})."
        )
        if outcome.get("refused"):
            click.echo(f"Refused recipients: {json.dumps(outcome['refused'])}", err=True)


if __name__ == "__main__":
    main()
