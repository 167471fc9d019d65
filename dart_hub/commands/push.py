"""`dart-hub push`: publish an adapt output folder on the Hub in one commit.

Also the push options of `dart-hub adapt` (`--push-to-hub` & co), defined here so that adapt
only has to apply the decorator (its stage calls `preflight` / `push_after_adapt` from
dart_hub.publish.hub).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from pathlib import Path

import click

from dart_hub.errors import DartHubError

HELP = """Publish a finished adapt output folder to the Hugging Face Hub, in one commit.

\b
FOLDER is what `dart-hub adapt --output` (or `dart-hub merge`) wrote: README.md (the dataset
card), data/ (one row per adapted trajectory), steps/ (every problem with its scores),
figures/ and dart_config.json. REPO_ID is NAMESPACE/NAME; the dataset repo is created when
missing, then one commit adds the whole folder (and removes data/, steps/ and figures/ files
the folder no longer has). The HTML report (FOLDER/report, written by `adapt`) is published
only with --with-report: rewritten from the folder, committed under report/ and linked from
the card. A card still as dart-hub generated it gets the repo id filled into
its usage snippets; a hand-edited README.md is published as it is.

\b
The token comes from --token-env NAME, else HF_TOKEN, else `hf auth login`; it needs write
access to NAMESPACE, which is checked first (a read-only token or a namespace you cannot write
fails in seconds, before anything is uploaded). HF_ENDPOINT is honoured.

\b
A folder whose parts come from different runs (an interrupted write, files copied in) is
refused: every part carries the folder's content id (dart_config.json, the parquet metadata, a
comment at the end of README.md) and they must agree.

\b
Examples:
  dart-hub push out/limo-1.5b me/limo-dart-qwen1.5b
  dart-hub push out/limo-1.5b my-org/limo-dart --private
  dart-hub push out/limo-1.5b me/limo-dart --create-pr --commit-message "Rerun with epsilon 0.25"
"""


_HUB_OPTIONS = [
    click.option("--private", is_flag=True, help="Create the dataset repo private (an existing repo keeps its visibility)."),
    click.option("--hub-branch", default=None, metavar="BRANCH", help="Commit to this branch of the dataset repo (created from main when missing) instead of main."),
    click.option("--create-pr", is_flag=True, help="Open a pull request with the commit instead of committing to the branch."),
    click.option("--commit-message", default=None, help="Commit title [default: 'DART-adapt SOURCE for STUDENT (dart-hub VERSION)']."),
]


def hub_options(command: Callable) -> Callable:
    """Decorator: where and how to commit (shared by `push` and `adapt --push-to-hub`)."""
    for option in reversed(_HUB_OPTIONS):
        command = option(command)
    return command


def push_options(function: Callable) -> Callable:
    """Decorator: the `adapt` options that publish the output right after it is written.
    On the command line, the other hub options without --push-to-hub are an error (checked
    here, not in `preflight`: `dart-hub run` calls adapt's `run` with its push settings and
    pushes in a stage of its own)."""

    @functools.wraps(function)
    def checked(**options):
        if not options.get("push_to_hub") and any(options.get(k) for k in ("private", "hub_branch", "create_pr", "commit_message")):
            raise DartHubError("--private, --hub-branch, --create-pr and --commit-message only apply with --push-to-hub REPO_ID")
        return function(**options)

    return click.option(
        "--push-to-hub",
        default=None,
        metavar="REPO_ID",
        help="After writing the output, publish it as the Hub dataset REPO_ID (NAMESPACE/NAME) in one commit, "
        "like `dart-hub push`. Before any generation the Hub is asked whether the token is valid and may write REPO_ID (or create it in its namespace). Without --output the "
        "folder is written to WORK_DIR/hub-folder (kept, so a failed push can be retried with `dart-hub push`). "
        "Not with --shard: merge the shards, then push.",
    )(hub_options(checked))


@click.command(name="push", help=HELP, context_settings={"max_content_width": 100})
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.argument("repo_id")
@hub_options
@click.option("--token-env", default=None, metavar="NAME", help="Read the token from environment variable NAME instead of HF_TOKEN / the stored login.")
@click.option("--allow-empty", is_flag=True, help="Publish even when no trajectory was kept (only the `steps` diagnostics; refused by default).")
@click.option("--with-report", is_flag=True, help="Also publish the HTML report (rewritten from the folder into FOLDER/report, see `dart-hub report`) under report/ in the dataset repo, linked from the card. Without it report/ is not published, and one published before is removed.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def command(folder: Path, repo_id: str, private: bool, hub_branch: str | None, create_pr: bool, commit_message: str | None, token_env: str | None, allow_empty: bool, with_report: bool, as_json: bool) -> None:
    from dart_hub.api import push

    token = None
    if token_env:
        token = os.environ.get(token_env)
        if not token:
            raise DartHubError(f"environment variable {token_env} is not set or empty (--token-env names the variable that holds the token)")
    result = push(
        folder,
        repo_id,
        private=private,
        hub_branch=hub_branch,
        create_pr=create_pr,
        commit_message=commit_message,
        token=token,
        allow_empty=allow_empty,
        with_report=with_report,
    )
    if as_json:
        click.echo(json.dumps(result.to_dict(), sort_keys=True))
        return
    if result.pr_url:
        click.echo(f"opened a pull request on {result.repo_id}: {result.pr_url}")
    else:
        click.echo(f"pushed {folder} to {result.repo_id} ({result.branch}, {len(result.files)} files, {'private' if result.private else 'public'})")
    click.echo(f"  commit: {result.commit_url}")
    if not result.pr_url and result.branch == "main":
        click.echo(f'  load:   load_dataset("{result.repo_id}", split="train")')
    if with_report:
        click.echo(f"  report: report/index.html in the repo (linked from the card); local copy {folder / 'report' / 'index.html'}")
