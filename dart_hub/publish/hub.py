"""Publish an adapt output folder on the Hugging Face Hub: create the repo, then ONE commit.

Everything goes through huggingface_hub's ``HfApi`` (built at call time, so HF_ENDPOINT and
test emulators are honoured): ``create_repo(exist_ok=True)``, ``create_branch`` when a branch is
named, and a single ``create_commit`` that adds every file of the folder (card included: the
card is never pushed with ``DatasetCard.push_to_hub``, which validates its YAML against
huggingface.co whatever the endpoint) and deletes the dataset files (data/, steps/, figures/,
report/) that the folder no longer has, so the Hub mirrors the folder. The HTML report (report/)
is committed only when asked (`push --with-report`), and then linked from the card.

The generated card's usage snippets name the repo: when README.md is still the card dart-hub
generated (not edited by hand), the push records the repo id in dart_config.json ("hub") and
re-renders the card before committing, so the folder and the Hub hold the same files. A
hand-edited README.md is published as it is.

Errors become DartHubError messages that say what to do; tokens never appear in them.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dart_hub import __version__
from dart_hub.errors import DartHubError

# Tokens in any message we produce are replaced by hf_*** (the known token verbatim, and
# anything shaped like one).
_TOKEN_SHAPE = re.compile(r"hf_[A-Za-z0-9_\-]{8,}")
MIRRORED_DIRS = ("data/", "steps/", "figures/", "report/")
REPORT_PREFIX = "report/"  # the HTML report (dart-hub report): committed only with with_report
LOGIN_HINT = "run `hf auth login` or set HF_TOKEN to a token with write access"


@dataclass(frozen=True)
class PushResult:
    repo_id: str
    repo_url: str
    commit_url: str
    commit_oid: str
    branch: str
    private: bool | None
    pr_url: str | None = None
    files: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["files"] = list(self.files)
        data["deleted"] = list(self.deleted)
        return data


def redact(text: str, token: str | None = None) -> str:
    if token:
        text = text.replace(token, "hf_***")
    return _TOKEN_SHAPE.sub("hf_***", text)


def check_repo_id(repo_id: str) -> str:
    """NAMESPACE/NAME, valid for the Hub; DartHubError otherwise."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    message = f"invalid dataset repo id {repo_id!r}: use NAMESPACE/NAME (your user name or an organization, then the dataset name), e.g. me/limo-dart"
    if not isinstance(repo_id, str) or repo_id.count("/") != 1:
        raise DartHubError(message)
    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        raise DartHubError(message) from None
    return repo_id


def resolve_token(token: str | None = None) -> str:
    """The token to push with: the one given, else HF_TOKEN / the stored login."""
    from huggingface_hub import get_token

    token = token or get_token()
    if not token:
        raise DartHubError(f"no Hugging Face token found: {LOGIN_HINT}")
    return token


def check_push_access(repo_id: str, token: str | None = None) -> str:
    """Before any generation: the token is valid and may write `repo_id` (an existing repo) or
    create it (its namespace is the token's user or one of its organizations, and the token is
    not read-only). Returns the user name. One DartHubError line otherwise. The first call has a
    short timeout and no retry, so a Hub that does not answer is reported in seconds."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

    from dart_hub import hubnet

    hubnet.install()
    check_repo_id(repo_id)
    token = resolve_token(token)
    api = HfApi(token=token)
    namespace = repo_id.split("/")[0]
    try:
        # whoami is a plain GET without retries; the timeout below bounds it as a first contact
        with _first_contact():
            me = api.whoami()
    except Exception as error:  # noqa: BLE001
        if hubnet.is_network_error(error):
            raise DartHubError(hubnet.unreachable_message(f"could not check the token for {repo_id}", error)) from None
        raise _explain(error, repo_id, "main", token) from None
    user = me.get("name") or "?"
    role = ((me.get("auth") or {}).get("accessToken") or {}).get("role")
    if role == "read":
        raise DartHubError(
            f"your Hugging Face token is read-only, so it cannot publish {repo_id}: use a token with write access "
            f"(https://huggingface.co/settings/tokens), e.g. with --token-env or `hf auth login`"
        )
    try:
        api.auth_check(repo_id, repo_type="dataset", write=True)
        return user
    except (RepositoryNotFoundError, GatedRepoError) as error:
        if isinstance(error, GatedRepoError) or getattr(getattr(error, "response", None), "status_code", None) == 401:
            raise _explain(error, repo_id, "main", token) from None
    except HfHubHTTPError as error:
        raise _explain(error, repo_id, "main", token) from None
    except Exception as error:  # noqa: BLE001
        if hubnet.is_network_error(error):
            raise DartHubError(hubnet.unreachable_message(f"could not check write access to {repo_id}", error)) from None
        raise _explain(error, repo_id, "main", token) from None
    # The repo does not exist (for this token): it will be created, in a namespace we must own.
    orgs = {org.get("name") for org in me.get("orgs") or [] if org.get("roleInOrg") in (None, "admin", "write", "contributor")}
    if namespace != user and namespace not in orgs:
        raise DartHubError(
            f"{repo_id} does not exist and your token (user {user}) cannot create repos under {namespace}: "
            f"push to {user}/{repo_id.split('/')[1]}, or to an organization where you have write access"
        )
    return user


class _first_contact:
    """Bounds the requests inside it to the first-contact timeout (connect and read)."""

    def __enter__(self):
        from dart_hub import hubnet

        self._saved = os.environ.get("DART_HUB_HUB_TIMEOUT")
        os.environ["DART_HUB_HUB_TIMEOUT"] = str(hubnet.first_contact_timeout())
        return self

    def __exit__(self, *exc):
        if self._saved is None:
            os.environ.pop("DART_HUB_HUB_TIMEOUT", None)
        else:
            os.environ["DART_HUB_HUB_TIMEOUT"] = self._saved


def default_commit_message(config: dict[str, Any]) -> str:
    from dart_hub.publish.cards import model_label, source_name

    source = source_name(config.get("source") or {})
    student = model_label(config.get("student"))
    version = config.get("dart_hub_version") or __version__
    return f"DART-adapt {source} for {student} (dart-hub {version})"


def _commit_description(config: dict[str, Any], examples) -> str:
    kept = sum(1 for e in examples if e.outcome == "kept")
    rows = sum(len(e.trajectories) for e in examples)
    strategy = (config.get("adapt") or {}).get("strategy", "?")
    return (
        f"Strategy {strategy}: {rows} trajectories from {kept} of {len(examples)} problems. "
        f"Run fingerprint {config.get('fingerprint') or '?'}. Written by dart-hub {__version__}."
    )


def folder_files(folder: Path, with_report: bool = False) -> list[str]:
    """Files to commit, relative POSIX paths, sorted. Skipped: hidden files and folders
    (temporary files of an interrupted write, caches), nested adapt outputs (subfolders with
    their own dart_config.json, e.g. the shards of `adapt --shard` kept beside a merge) and,
    unless with_report, the HTML report in report/."""
    from dart_hub.publish.folder import CONFIG_FILE

    files = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if not path.is_file() or any(part.startswith(".") for part in relative.parts):
            continue
        parents = [folder.joinpath(*relative.parts[:i]) for i in range(1, len(relative.parts))]
        if any((parent / CONFIG_FILE).is_file() for parent in parents):
            continue
        if not with_report and relative.as_posix().startswith(REPORT_PREFIX):
            continue
        files.append(relative.as_posix())
    return files


def prepare_card(folder: Path, repo_id: str, config: dict[str, Any], examples: list, with_report: bool = False) -> dict[str, Any]:
    """Fill the repo id into a generated card (see module docstring), and its link to the HTML
    report when the report is committed too; return the run config."""
    from dart_hub.publish.cards import check_no_token
    from dart_hub.publish.folder import CONFIG_FILE, render_folder_card
    from dart_hub.store import write_atomic

    readme = folder / "README.md"
    if not readme.is_file():
        raise DartHubError(f"{folder} has no README.md: run `dart-hub card {folder}` to write the dataset card")
    current = readme.read_text(encoding="utf-8")
    generated = render_folder_card(folder, examples=examples, config=config, write_figure=False)
    wanted = {**config, "hub": {"repo_id": repo_id}}
    wanted.pop("report", None)
    if with_report:
        from dart_hub.report.render import INDEX, REPORT_DIR

        wanted["report"] = {"path": f"{REPORT_DIR}/{INDEX}"}
    if current == generated and wanted != config:
        config = wanted
        write_atomic(folder / CONFIG_FILE, json.dumps(config, indent=2, sort_keys=True, default=str) + "\n")
        write_atomic(readme, render_folder_card(folder, examples=examples, config=config))
    check_no_token(readme.read_text(encoding="utf-8"))
    check_no_token((folder / CONFIG_FILE).read_text(encoding="utf-8"), "dart_config.json")
    return config


def push_folder(
    folder: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    branch: str | None = None,
    create_pr: bool = False,
    commit_message: str | None = None,
    token: str | None = None,
    allow_empty: bool = False,
    with_report: bool = False,
) -> PushResult:
    """Publish `folder` (an adapt / merge output) to the dataset repo `repo_id` in one commit.

    private: create the repo private (an existing repo keeps its visibility).
    branch: commit to this branch (created from main when missing) instead of main.
    create_pr: open a pull request (refs/pr/N) against the branch instead of committing to it.
    allow_empty: publish even when no trajectory was kept (the card then says so and only the
        `steps` configuration is declared); refused by default.
    with_report: (re)write the folder's HTML report (report/, `dart-hub report`) and commit it,
        linked from the card; without it report/ is neither committed nor kept on the Hub.
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

    from dart_hub.publish.folder import check_same_run, read_config, read_examples

    folder = Path(folder)
    if not folder.is_dir():
        raise DartHubError(f"{folder} is not a folder: pass the folder written by `dart-hub adapt --output`")
    check_repo_id(repo_id)
    token = resolve_token(token)
    config = read_config(folder)
    check_same_run(folder)  # never publish parts of two runs
    check_push_access(repo_id, token)  # token, write access, a silent Hub: in seconds, one line
    examples = read_examples(folder)
    if not any(e.trajectories for e in examples) and not allow_empty:
        raise DartHubError(
            f"no trajectory was kept in {folder} ({len(examples)} problems, all discarded): there is nothing to train on. "
            "See why in the steps config (discard_reason), or pass --allow-empty to publish the diagnostics anyway"
        )
    config = prepare_card(folder, repo_id, config, examples, with_report)
    if with_report:
        from dart_hub.report.render import write_dataset_report

        write_dataset_report(folder)  # from the folder as committed, never a stale one
    files = folder_files(folder, with_report)
    target = branch or "main"
    message = commit_message or default_commit_message(config)

    api = HfApi(token=token)  # built here: the endpoint is read at call time
    try:
        repo_url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        if branch:
            api.create_branch(repo_id, branch=branch, repo_type="dataset", exist_ok=True)
        info = api.dataset_info(repo_id, revision=target)
        remote = {s.rfilename for s in info.siblings or []}
        stale = sorted(p for p in remote - set(files) if p.startswith(MIRRORED_DIRS))
        operations = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=str(folder / p)) for p in files]
        operations += [CommitOperationDelete(path_in_repo=p) for p in stale]
        commit = api.create_commit(
            repo_id,
            operations,
            commit_message=message,
            commit_description=_commit_description(config, examples),
            repo_type="dataset",
            revision=target,
            create_pr=create_pr,
            parent_commit=None if create_pr else info.sha,
        )
    except DartHubError:
        raise
    except Exception as error:  # noqa: BLE001 - every failure becomes one actionable line
        raise _explain(error, repo_id, target, token) from None
    return PushResult(
        repo_id=repo_id,
        repo_url=str(repo_url),
        commit_url=commit.commit_url,
        commit_oid=commit.oid,
        branch=target,
        private=getattr(info, "private", None),
        pr_url=commit.pr_url,
        files=tuple(files),
        deleted=tuple(stale),
    )


def _explain(error: Exception, repo_id: str, target: str, token: str) -> DartHubError:
    from huggingface_hub import constants
    from huggingface_hub.errors import (
        HfHubHTTPError,
        HFValidationError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    namespace = repo_id.split("/")[0]
    status = getattr(getattr(error, "response", None), "status_code", None)
    detail = redact(" ".join(str(error).split()), token)[:300]
    if isinstance(error, HFValidationError):
        return DartHubError(f"invalid dataset repo id {repo_id!r}: {detail}")
    if status == 401:
        return DartHubError(f"the Hugging Face token was rejected (401 Unauthorized): {LOGIN_HINT}")
    if status == 403:
        return DartHubError(
            f"your token lacks write access to {namespace} (403 Forbidden): use a token with write permission "
            f"for {namespace} (https://huggingface.co/settings/tokens), or push to a namespace you own"
        )
    if isinstance(error, RevisionNotFoundError):
        return DartHubError(f"branch {target!r} not found in {repo_id}: check --hub-branch")
    if isinstance(error, RepositoryNotFoundError) or status == 404:
        return DartHubError(f"dataset repo {repo_id} not found or not accessible with this token: check the name and that the token can write to {namespace}")
    if status == 412:
        return DartHubError(f"{repo_id}@{target} changed while pushing; run the push again")
    if isinstance(error, HfHubHTTPError):
        return DartHubError(f"pushing to {repo_id} failed (HTTP {status}): {detail}")
    from dart_hub import hubnet

    if hubnet.is_network_error(error):
        return DartHubError(
            f"could not reach the Hub at {constants.ENDPOINT} ({type(error).__name__}: {detail}; {hubnet.retries()} retries); "
            f"check the network or HF_ENDPOINT, then run the push again"
        )
    if isinstance(error, OSError):
        return DartHubError(f"pushing to {repo_id} failed while reading the folder ({type(error).__name__}: {detail})")
    return DartHubError(f"pushing to {repo_id} failed ({type(error).__name__}: {detail})")


def preflight(options: dict[str, Any]) -> None:
    """Before an adapt run that will push: fail now, not hours later: repo id shape, no --shard,
    a token, and (asking the Hub, in seconds) that the token is valid and may write the repo or
    create it in its namespace."""
    repo_id = options.get("push_to_hub")
    if not repo_id:
        return
    if options.get("shard"):
        raise DartHubError("--push-to-hub cannot publish a single shard: run the shards, `dart-hub merge` them, then `dart-hub push` the merged folder")
    check_repo_id(repo_id)
    check_push_access(repo_id)


def push_after_adapt(output: Path, options: dict[str, Any]) -> dict[str, Any]:
    """Push the folder adapt just wrote; the summary fields to add to adapt's output."""
    repo_id = options["push_to_hub"]
    try:
        result = push_folder(
            output,
            repo_id,
            private=options.get("private", False),
            branch=options.get("hub_branch"),
            create_pr=options.get("create_pr", False),
            commit_message=options.get("commit_message"),
        )
    except DartHubError as error:
        retry = f"dart-hub push {output} {repo_id}"
        raise DartHubError(f"{error} -- the adapted dataset is written in {output}; publish it later with `{retry}`") from None
    summary = {"pushed": result.repo_id, "commit_url": result.commit_url}
    if result.pr_url:
        summary["pr_url"] = result.pr_url
    return summary
