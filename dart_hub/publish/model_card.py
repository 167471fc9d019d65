"""The model card of a trained student, and its push to the Hub (one commit).

The card's metadata is a huggingface_hub `ModelCardData`: `base_model`, `datasets` (the adapted
dataset and the expert source, when they are Hub ids), `license`, `tags`, and `eval_results`
(`EvalResult`s, one per benchmark of the model's `dart-hub eval` results.json), which the Hub reads
as `model-index`. The body shows a results table against the baselines given (No-Tuning, Static,
... each an eval folder), the training hyperparameters, the per-epoch checkpoint selection and
how to reproduce the run.

The push is one `HfApi.upload_folder` commit of the model folder (weights, config, tokenizer),
README.md and training_summary.json (copied into the folder first); `ModelCard.push_to_hub` is
not used (it validates the YAML against huggingface.co whatever the endpoint). Tokens are never
printed nor written.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from dart_hub import __version__
from dart_hub.errors import DartHubError

TEMPLATE = "model_card.md.j2"  # in the top-level cards/ folder
TAGS = ["dart-hub", "dart", "trl", "sft", "math", "reasoning"]
README = "README.md"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[A-Za-z0-9][\w.\-]*$")
# Model files that must be there to publish a folder as a model.
WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.safetensors.index.json")


# -- inputs -----------------------------------------------------------------------------------


def parse_compare(values: Iterable[str]) -> list[tuple[str, Path]]:
    """`--compare-eval` values -> [(label, dir)]: "LABEL=DIR", or "DIR" (label: the folder name)."""
    out = []
    for value in values:
        label, sep, path = str(value).partition("=")
        if not sep:
            label, path = "", label
        path_obj = Path(path)
        out.append((label.strip() or path_obj.name or str(path_obj), path_obj))
    return out


def _is_hub_id(value: Any) -> bool:
    return isinstance(value, str) and bool(_HUB_ID.match(value)) and not Path(value).exists()


def _read_eval(directory: str | Path) -> dict[str, Any]:
    from dart_hub.evaluation.report import read_results

    return read_results(directory)


def merge_evals(directories: Sequence[str | Path]) -> dict[str, Any]:
    """Benchmarks of one model from one or more eval folders (a later folder wins a benchmark)."""
    merged: dict[str, Any] = {"benchmarks": {}, "settings": {}}
    for directory in directories:
        data = _read_eval(directory)
        merged["benchmarks"].update(data.get("benchmarks") or {})
        merged["settings"] = data.get("settings") or merged["settings"]
        merged["engine"] = data.get("engine") or merged.get("engine")
        merged["model"] = data.get("model")
    return merged


def eval_results(evaluation: dict[str, Any]) -> list:
    """One `EvalResult` (accuracy in %) per benchmark: the card's `model-index`."""
    from huggingface_hub import EvalResult

    from dart_hub.evaluation.benchmarks import BENCHMARKS

    results = []
    for name, entry in (evaluation.get("benchmarks") or {}).items():
        source = entry.get("source") or {}
        registry = BENCHMARKS.get(name)
        dataset_type = source.get("repo_id") if source.get("kind") == "hub" else None
        dataset_type = dataset_type or (registry.repo_id if registry else name)
        args = {"max_tokens": (evaluation.get("settings") or {}).get("max_tokens")}
        if entry.get("limit"):
            args["limit"] = entry["limit"]
        results.append(
            EvalResult(
                task_type="text-generation",
                task_name="Mathematical reasoning",
                dataset_type=dataset_type,
                dataset_name=str(entry.get("title") or name),
                dataset_config=source.get("config"),
                dataset_split=source.get("split"),
                dataset_revision=source.get("revision"),
                dataset_args={k: v for k, v in args.items() if v is not None} or None,
                metric_type="accuracy" if not entry.get("pass_at_k") else "pass@1",
                metric_name="accuracy (greedy, %)" if not entry.get("pass_at_k") else f"pass@1 ({entry.get('samples')} samples, %)",
                metric_value=round(100 * float(entry["accuracy"]), 2),
            )
        )
    return results


def results_table(
    evaluation: dict[str, Any] | None, compare: Sequence[tuple[str, Path]], label: str
) -> tuple[str, str | None, list[str]]:
    """(markdown table, baseline label, notes). Rows: the baselines in the order given, then
    this model; deltas against the first baseline."""
    from dart_hub.evaluation.report import Run, compare_runs, render_comparison

    runs = []
    notes = []
    for name, directory in compare:
        data = _read_eval(directory)
        runs.append(_run(Run, directory, name, data))
    if evaluation and evaluation.get("benchmarks"):
        runs.append(_run(Run, Path("."), label, evaluation))
        partial = [
            str(e.get("title") or n)
            for n, e in evaluation["benchmarks"].items()
            if e.get("complete") is False
        ]
        if partial:
            notes.append(
                "Evaluated on part of the benchmark only (a --limit or a source with fewer rows "
                "than the full benchmark): " + ", ".join(partial) + "."
            )
    if not runs:
        return "", None, []
    table = compare_runs(runs, baseline=0)
    baseline = runs[0].label if len(runs) > 1 else None
    return render_comparison(table, "markdown"), baseline, notes


def _run(run_cls, directory: Path, label: str, data: dict[str, Any]):
    from dart_hub.evaluation.report import run_extras

    entries = data.get("benchmarks") or {}
    return run_cls(
        directory=Path(directory),
        label=label,
        model=str(data.get("model") or ""),
        accuracies={name: float(e["accuracy"]) for name, e in entries.items()},
        titles={name: str(e.get("title") or name) for name, e in entries.items()},
        **run_extras(entries),
    )


# -- the card ---------------------------------------------------------------------------------


LICENSE_KEYS = ("license", "license_name", "license_link")


def _base_license(base_model: str | None, student: str | None) -> dict[str, str]:
    """The student's licence metadata (`license`, and for `other` licences such as Qwen's
    `license_name` and `license_link`): its local README.md front matter, else its Hub card
    (best effort). {} when unknown."""
    from huggingface_hub import ModelCard

    def pick(card_data: Any) -> dict[str, str]:
        data = card_data.to_dict() if hasattr(card_data, "to_dict") else dict(card_data or {})
        if not data.get("license"):
            return {}
        return {k: str(data[k]) for k in LICENSE_KEYS if data.get(k)}

    if student and Path(student).is_dir() and (Path(student) / README).is_file():
        try:
            found = pick(ModelCard.load(Path(student) / README).data)
            if found:
                return found
        except Exception:  # noqa: BLE001 - a card we cannot read just gives no license
            pass
    if base_model and _is_hub_id(base_model):
        try:
            from huggingface_hub import HfApi

            info = HfApi().model_info(base_model)
            return pick(info.card_data) if info.card_data else {}
        except Exception:  # noqa: BLE001 - offline, gated, missing: the card just has no license
            return {}
    return {}


def _datasets(summary: dict[str, Any], dataset_id: str | None) -> list[str]:
    data = summary.get("data") or {}
    # the adapted dataset (or, for Static, the expert source), then the expert source of adapt
    found = [dataset_id, data.get("repo_id"), (data.get("adapt") or {}).get("expert_dataset")]
    out = []
    for value in found:
        if _is_hub_id(value) and value not in out:
            out.append(value)
    return out


def _hyperparameters(summary: dict[str, Any]) -> list[tuple[str, str]]:
    from dart_hub.publish.cards import fmt

    values = summary.get("hyperparameters") or {}
    return [(name, fmt(value)) for name, value in values.items() if value is not None]


def _epochs(summary: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for epoch in summary.get("epochs") or []:
        v = epoch.get("validation")
        rows.append(
            {
                "epoch": epoch.get("step") if _is_grpo(summary) else epoch.get("epoch"),
                "chosen": epoch.get("checkpoint") == summary.get("chosen_checkpoint"),
                "accuracy": f"{100 * v['accuracy']:.1f}% ({v['correct']}/{v['total']})" if v else "-",
                "train_loss": f"{epoch['train_loss']:.4f}" if "train_loss" in epoch else "-",
                "eval_loss": f"{epoch['eval_loss']:.4f}" if "eval_loss" in epoch else "-",
            }
        )
    return rows


def _validation_sentence(summary: dict[str, Any]) -> str:
    """Which problems chose the checkpoint, and with what token budget (older summaries: the
    held-out slice and `selection.max_tokens`)."""
    from dart_hub.training.validation import HELDOUT, describe_validation

    selection = summary.get("selection") or {}
    record = selection.get("source") or {
        "source": HELDOUT,
        "problems": (summary.get("rows") or {}).get("validation"),
        "size": (summary.get("request") or {}).get("validation_size"),
        "max_tokens": selection.get("max_tokens"),
    }
    return describe_validation(record)


def _is_grpo(summary: dict[str, Any]) -> bool:
    return (summary.get("objective") or {}).get("name") == "grpo"


def _compute_text(summary: dict[str, Any]) -> str | None:
    """Training compute (wall time x devices, resumed sessions summed), when recorded."""
    sessions = summary.get("sessions")
    if not sessions:
        return None
    seconds = sum(s.get("seconds", 0) for s in sessions)
    if summary.get("device") == "cuda":
        devices = max(s.get("devices", 1) for s in sessions)
        return f"{summary.get('gpu_hours', 0):.3f} GPU-hours of training (wall time x GPUs; {seconds / 3600:.2f} h on up to {devices} GPU(s))"
    return f"{seconds:.0f} s of training on CPU (0 GPU-hours)"


def _loss_text(summary: dict[str, Any]) -> str:
    objective = summary.get("objective") or {}
    if objective.get("name") == "grpo":
        return (
            f"GRPO (TRL `GRPOTrainer`), reward {objective.get('reward')}; {objective.get('num_generations')} "
            f"completions per prompt at temperature {objective.get('temperature')}, KL coefficient beta "
            f"{objective.get('beta')}, loss type {objective.get('loss_type')}"
        )
    if objective.get("name") == "dail":
        return (
            f"DAIL contrastive distillation: {objective.get('formula')}, lambda = {objective.get('lambda')}, "
            f"{objective.get('kl')} KL; p_t: this model on the plain prompt, P_t / N_t: {objective.get('reference')} "
            f"on the privileged / negative prompt (no cross-entropy term)"
        )
    mode = (summary.get("loss") or {}).get("mode")
    return {
        "assistant_only": "cross-entropy on the assistant turn only (TRL `assistant_only_loss`)",
        "completion_only": "cross-entropy on the assistant turn only (TRL `completion_only_loss` on prompt / completion pairs)",
        "full": "cross-entropy on every token",
    }.get(mode, "cross-entropy")


def _engine_text(evaluation: dict[str, Any] | None) -> str | None:
    """Which engine and dtype generated the evaluated answers, e.g. "vllm, bfloat16 (dtype auto:
    the checkpoint's own)"; the paper's recipes pin float16."""
    engine = (evaluation or {}).get("engine") or {}
    if not engine.get("engine") or not engine.get("dtype"):
        return None
    requested = engine.get("dtype_requested")
    how = " (dtype auto: the checkpoint's own)" if requested == "auto" else ""
    return f"{engine['engine']}, {engine['dtype']}{how}"


def _sampling_sentence(evaluation: dict[str, Any] | None) -> str | None:
    """None for greedy single-sample results, else how the samples were drawn."""
    settings = (evaluation or {}).get("settings") or {}
    n = settings.get("n") or 1
    if n <= 1:
        return None
    return (
        f"{n} samples per question (temperature {settings.get('temperature')}, top-p {settings.get('top_p')}); "
        f"accuracy is the share of correct samples (pass@1), pass@k uses the unbiased estimator"
    )


def _data_sentence(summary: dict[str, Any], datasets: list[str], method: str) -> str:
    from dart_hub.publish.cards import code

    data = summary.get("data") or {}
    if method == "static":
        name = data.get("repo_id") or data.get("dataset")
        what = "the expert solutions of "
    else:
        name = next((d for d in datasets if d != (data.get("adapt") or {}).get("expert_dataset")), None)
        name = name or data.get("repo_id") or data.get("dataset")
        what = "the DART-adapted dataset "
    if _is_hub_id(name):
        return f"{what}[{name}](https://huggingface.co/datasets/{name})"
    return what + (code(Path(str(name)).name) if name else "(unknown)")


def _reproduce(summary: dict[str, Any], base_model: str | None, datasets: list[str]) -> str:
    request = summary.get("request") or {}
    data = summary.get("data") or {}
    student = base_model or request.get("student")
    source = data.get("repo_id") if _is_hub_id(data.get("repo_id")) else None
    if not source and data.get("kind") != "static":
        source = next(iter(datasets), None)
    if not source:
        source = request.get("data")
    if not student or not source:
        return ""
    from dart_hub.publish.cards import model_argument

    parts = ["dart-hub", "train", "--student", model_argument(student), "--data", model_argument(source)]
    if request.get("static"):
        parts.append("--static")
    objective = summary.get("objective") or {}
    if objective.get("name") == "grpo":
        parts += [
            "--objective", "grpo", "--grpo-num-generations", str(objective.get("num_generations")),
            "--grpo-max-completion-tokens", str(objective.get("max_completion_length")),
            "--grpo-temperature", str(objective.get("temperature")), "--grpo-beta", str(objective.get("beta")),
        ]  # fmt: skip
        if (objective.get("max_steps") or 0) > 0:
            parts += ["--grpo-max-steps", str(objective["max_steps"])]
    if objective.get("name") == "dail":
        parts += ["--objective", "dail", "--dail-lambda", str(objective.get("lambda")), "--dail-kl", str(objective.get("kl"))]
    if request.get("lora"):
        parts += ["--lora", "--lora-rank", str(request.get("lora_rank"))]
    hp = summary.get("hyperparameters") or {}
    for flag, key in (("--epochs", "num_train_epochs"), ("--learning-rate", "learning_rate"), ("--max-length", "max_length"), ("--seed", "seed")):
        if key == "num_train_epochs" and (objective.get("max_steps") or 0) > 0:
            continue  # GRPO ran a number of steps
        if hp.get(key) is not None:
            parts += [flag, str(hp[key])]
    if request.get("validation_source") not in (None, "heldout"):
        parts += ["--validation-source", str(request["validation_source"])]
    if request.get("validation_size") is not None:
        parts += ["--validation-size", str(request["validation_size"])]
    if request.get("validation_max_tokens") is not None:
        parts += ["--validation-max-tokens", str(request["validation_max_tokens"])]
    parts += ["--output", "runs/model"]
    return " ".join(shlex.quote(str(p)) for p in parts)


def _versions() -> list[tuple[str, str]]:
    out = [("dart-hub", __version__)]
    for name in ("trl", "transformers", "torch", "datasets", "accelerate"):
        try:
            out.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            continue
    return out


def render_model_card(
    summary: dict[str, Any] | None,
    repo_id: str,
    *,
    eval_dirs: Sequence[str | Path] = (),
    compare: Sequence[tuple[str, Path]] = (),
    base_model: str | None = None,
    dataset_id: str | None = None,
    license: str | None = None,
    system_prompt: str | None = None,
):
    """The `huggingface_hub.ModelCard` of a trained model (metadata + body)."""
    import jinja2
    from huggingface_hub import ModelCard, ModelCardData

    from dart_hub.prompts import default_prompts
    from dart_hub.publish.cards import check_no_token, code, fence, fmt, md

    summary = summary or {}
    student = summary.get("student")
    base_model = base_model or (student if _is_hub_id(student) else None)
    # --license replaces the base model's licence (and its name/link); else all of it is copied
    licence = {"license": license} if license else _base_license(base_model, student)
    datasets = _datasets(summary, dataset_id)
    method = "static" if (summary.get("request") or {}).get("static") else ("adapted" if summary else "")
    evaluation = merge_evals(eval_dirs) if eval_dirs else None
    results = eval_results(evaluation) if evaluation else []
    model_name = repo_id.split("/")[-1]
    data = ModelCardData(
        model_name=model_name,
        base_model=base_model,
        datasets=datasets or None,
        license=licence.get("license"),
        license_name=licence.get("license_name"),
        license_link=licence.get("license_link"),
        library_name="transformers",
        pipeline_tag="text-generation",
        language=["en"],
        tags=list(TAGS) + (["static-baseline"] if method == "static" else []),
        eval_results=results or None,
    )
    table, baseline, result_notes = results_table(evaluation, compare, model_name)
    selection = summary.get("selection") or {}
    notes = [n for n in summary.get("notes") or [] if "bf16" in n]
    first_system = (summary.get("data") or {}).get("system_prompt")
    context = {
        "card_data": data.to_yaml(),
        "title": model_name,
        "repo_id": repo_id,
        "method": method,
        "base_model_link": (
            f"[{base_model}](https://huggingface.co/{base_model})" if base_model else code(Path(str(student or "?")).name) + " (local)"
        ),
        "data_sentence": _data_sentence(summary, datasets, method) if summary else "its training data",
        "results_table": table,
        "result_notes": result_notes,
        "baseline": baseline,
        "max_tokens": ((evaluation or {}).get("settings") or {}).get("max_tokens"),
        "engine_text": _engine_text(evaluation),
        "sampling": _sampling_sentence(evaluation),
        "rows": summary.get("rows"),
        "loss_text": _loss_text(summary),
        "objective": (summary.get("objective") or {}).get("name", "sft"),
        "compute": _compute_text(summary),
        "precision_note": notes[0] if notes else None,
        "hyperparameters": _hyperparameters(summary),
        "epochs": _epochs(summary),
        "selection_enabled": selection.get("enabled", False),
        "validation_sentence": _validation_sentence(summary),
        "chosen_epoch": summary.get("chosen_epoch"),
        "system_prompt": system_prompt or first_system or default_prompts().sft_system,
        "reproduce": _reproduce(summary, base_model, datasets) if summary else "",
        "versions": _versions(),
    }
    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # Markdown: user strings are escaped with md / code
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(md=md, code=code, fence=fence, fmt=fmt, pystr=lambda v: json.dumps(str(v), ensure_ascii=False))
    from dart_hub.publish.templates import read_template

    template = read_template(TEMPLATE)
    text = env.from_string(template).render(**context)
    check_no_token(text, "the model card")
    return ModelCard(text)


# -- push -------------------------------------------------------------------------------------


def resolve_model_folder(folder: str | Path) -> tuple[Path, dict[str, Any] | None, Path | None]:
    """(model folder, training summary or None, summary file or None) for a train output folder
    or a model folder (e.g. OUTPUT/best)."""
    from dart_hub.training.run import SUMMARY_FILE

    folder = Path(folder)
    if not folder.is_dir():
        raise DartHubError(f"{folder} is not a folder: pass the --output folder of `dart-hub train` or a model folder")
    for root in (folder, folder.parent):
        path = root / SUMMARY_FILE
        if path.is_file():
            summary = json.loads(path.read_text(encoding="utf-8"))
            # a model folder (it may hold a copy of the summary, written by an earlier push) is
            # the model; a train --output folder holds it under best/ or final/
            is_model = (folder / "config.json").is_file()
            model = folder if root != folder or is_model else folder / str(summary.get("model_dir") or "best")
            return model, summary, path
    return folder, None, None


def _check_model_folder(model: Path) -> None:
    if not (model / "config.json").is_file() or not any(any(model.glob(p)) for p in WEIGHT_PATTERNS):
        raise DartHubError(
            f"{model} is not a model folder (config.json and weights needed); pass the --output "
            f"folder of a finished `dart-hub train` run"
        )


def push_model(
    folder: str | Path,
    repo_id: str,
    *,
    eval_dirs: Sequence[str | Path] = (),
    compare: Sequence[tuple[str, Path]] | Sequence[str] = (),
    private: bool = False,
    base_model: str | None = None,
    dataset_id: str | None = None,
    license: str | None = None,
    commit_message: str | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    """Publish a trained model (the train --output folder, or a model folder) with its card to
    the model repo `repo_id` in ONE commit. `eval_dirs`: this model's `dart-hub eval` folders
    (their results become the card's model-index); `compare`: [(label, eval dir)] or
    ["LABEL=DIR"] of baselines for the results table. Returns {repo_id, url, commit, files}."""
    from huggingface_hub import HfApi

    from dart_hub.publish.hub import redact, resolve_token
    from dart_hub.store import write_atomic

    _check_repo_id(repo_id)
    compare_pairs = parse_compare(compare) if compare and isinstance(next(iter(compare)), str) else list(compare)
    model, summary, summary_path = resolve_model_folder(folder)
    _check_model_folder(model)
    card = render_model_card(
        summary,
        repo_id,
        eval_dirs=eval_dirs,
        compare=compare_pairs,
        base_model=base_model,
        dataset_id=dataset_id,
        license=license,
    )
    write_atomic(model / README, str(card))
    if summary_path is not None and summary_path.parent != model:
        # The folder is pushed as it is: the summary goes into it (best/ is an export anyway).
        write_atomic(model / summary_path.name, summary_path.read_text(encoding="utf-8"))
    files = sorted(
        p.relative_to(model).as_posix()
        for p in model.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(model).parts)
    )
    student = (summary or {}).get("student") or base_model or "a model"
    message = commit_message or f"Upload {repo_id.split('/')[-1]}: {_short(student)} fine-tuned with dart-hub {__version__}"

    token = resolve_token(token)
    api = HfApi(token=token)  # built here: the endpoint is read at call time
    try:
        url = api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo_id,
            folder_path=str(model),
            repo_type="model",
            commit_message=message,
            ignore_patterns=HIDDEN_PATTERNS,
        )
    except Exception as error:  # noqa: BLE001 - every failure becomes one line without the token
        status = getattr(getattr(error, "response", None), "status_code", None)
        detail = redact(" ".join(str(error).split()), token)[:300]
        if status == 401:
            raise DartHubError("the Hugging Face token was rejected (401): run `hf auth login` or set HF_TOKEN") from None
        if status == 403:
            raise DartHubError(f"your token cannot write to {repo_id.split('/')[0]} (403): use a token with write access") from None
        raise DartHubError(f"pushing the model to {repo_id} failed ({type(error).__name__}: {detail})") from None
    return {
        "repo_id": repo_id,
        "url": str(url),
        "commit": commit.oid,
        "commit_url": commit.commit_url,
        "files": len(files),
    }


HIDDEN_PATTERNS = [".*", "**/.*", ".*/**", "**/.*/**"]  # dot files and folders (.cache, ...)


def _short(name: str) -> str:
    from dart_hub.publish.cards import model_label

    return model_label(name)


def _check_repo_id(repo_id: str) -> None:
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    message = f"invalid model repo id {repo_id!r}: use NAMESPACE/NAME, e.g. me/qwen2.5-1.5b-dart"
    if not isinstance(repo_id, str) or repo_id.count("/") != 1:
        raise DartHubError(message)
    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        raise DartHubError(message) from None
