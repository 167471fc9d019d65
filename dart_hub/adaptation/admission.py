"""Admission checks before any generation: problems that cannot be adapted are skipped once, with
a reason, instead of failing (or stalling) the run.

- `too_long`: the longest request the run makes for a problem (the simulation prompt with the
  whole expert solution, or the exploration prompt with it, in the student's chat template) plus
  its generation budget (sim/explore max tokens) does not fit the student's context window.
  Without this check transformers warns and then allocates for a sequence the model cannot
  handle (a 5 MB solution took 10-15 GB), and an OpenAI-compatible server rejects the request.
  The window is the smallest of the model config's position limit (max_position_embeddings and
  its synonyms), the tokenizer's model_max_length (when set) and --max-model-len (vLLM), or for
  an OpenAI-compatible server the server's max_model_len (its /v1/models), with the tokenizer
  of --tokenizer (default: the student id).
  Texts are never tokenized whole: a text with more characters than the window times the
  longest token's length cannot fit, and is counted too long without tokenizing it, so memory
  stays bounded whatever the input.
- `unverifiable_gold`: the gold answer makes the equivalence checker hit its timeout (nested
  powers, huge towers); every rollout of that problem would then wait for the timeout. The gold
  is checked once per problem (against itself and against a plain number) in the checker's
  workers, and the problem is skipped when either check times out.

The length check applies to `--method dart` (DART's requests); the gold check to every method.
Both produce `SkippedRow`s, added to the source's skipped rows: the summary and the card count
them with the rows skipped while reading.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dart_hub.errors import DartHubError
from dart_hub.records import Problem, SkippedRow

TOO_LONG = "too_long"
UNVERIFIABLE_GOLD = "unverifiable_gold"

# Config attributes that hold a model's position limit, by architecture family.
_POSITION_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx")
_UNSET = 10**8  # tokenizers without a limit report model_max_length as a huge sentinel


@dataclass
class Admission:
    problems: list[Problem]
    skipped: list[SkippedRow] = field(default_factory=list)
    context_window: int | None = None

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.skipped:
            counts[row.reason] = counts.get(row.reason, 0) + 1
        return counts


# -- context window -------------------------------------------------------------------------------


def context_window(config: Any, tokenizer: Any = None, max_model_len: int | None = None) -> int | None:
    """Tokens the student can attend to (prompt + generation), None when nothing says."""
    limits = []
    for key in _POSITION_KEYS:
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            limits.append(value)
            break
    model_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(model_max, int) and 0 < model_max < _UNSET:
        limits.append(model_max)
    if max_model_len:
        limits.append(int(max_model_len))
    return min(limits) if limits else None


def load_student_tokenizer(student: str, revision: str | None, trust_remote_code: bool = False) -> tuple[Any, Any]:
    """(tokenizer, model config) of a local or Hub student, without loading weights."""
    from transformers import AutoConfig, AutoTokenizer

    from dart_hub.engines.factory import check_hub_model

    online = check_hub_model(student, revision)  # first contact: seconds, one line
    kwargs: dict[str, Any] = {"revision": revision, "trust_remote_code": trust_remote_code}
    if not online:
        kwargs["local_files_only"] = True
    try:
        tokenizer = AutoTokenizer.from_pretrained(student, **kwargs)
        model_config = AutoConfig.from_pretrained(student, **kwargs)
    except (OSError, ValueError, KeyError) as error:
        cause = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        raise DartHubError(f"could not read the tokenizer and config of student model '{student}': {cause}") from None
    return tokenizer, model_config


def _longest_token_chars(tokenizer: Any) -> int:
    try:
        longest = max((len(piece) for piece in tokenizer.get_vocab()), default=0)
    except Exception:  # noqa: BLE001 - a tokenizer without a readable vocabulary
        longest = 0
    return max(longest, 16)


def _prompt_tokens(tokenizer: Any, messages: list[dict[str, str]], cap: int) -> int:
    """Prompt length in tokens, counted up to `cap` (truncated there: no over-length warning
    from transformers, and the answer past the cap does not matter)."""
    if getattr(tokenizer, "chat_template", None):
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, truncation=True, max_length=cap)
        if isinstance(ids, dict) or hasattr(ids, "keys"):  # a BatchEncoding in recent transformers
            ids = ids["input_ids"]
        return len(ids)
    text = "\n\n".join(m["content"] for m in messages)
    return len(tokenizer(text, add_special_tokens=True, truncation=True, max_length=cap)["input_ids"])


def check_lengths(problems: Sequence[Problem], adapt_config: Any, prompts: Any, tokenizer: Any, window: int) -> tuple[list[Problem], list[SkippedRow]]:
    """Split problems into those whose longest request fits `window` and the too_long rest."""
    from dart_hub.adaptation.pipeline import problem_steps
    from dart_hub.steps import join_steps

    budgets = {"simulation": adapt_config.sim_max_tokens}
    if adapt_config.strategy == "full":
        budgets["exploration"] = adapt_config.explore_max_tokens
    if max(budgets.values()) >= window:
        name, budget = max(budgets.items(), key=lambda item: item[1])
        flag = "--sim-max-tokens" if name == "simulation" else "--explore-max-tokens"
        raise DartHubError(
            f"{flag} {budget} does not fit the student's context window of {window} tokens (prompt included): "
            f"lower it, e.g. {flag} {max(1, window // 2)}"
        )
    max_chars = window * _longest_token_chars(tokenizer)
    kept: list[Problem] = []
    skipped: list[SkippedRow] = []
    for problem in problems:
        reasoning = join_steps(problem_steps(problem, adapt_config))
        worst = 0
        for name, budget in budgets.items():
            messages = prompts.messages(name, problem.question, reasoning)
            if sum(len(m["content"]) for m in messages) > max_chars:
                worst = window + 1  # cannot fit, whatever the tokenizer makes of it: not tokenized
                break
            room = window - budget  # prompt tokens that still fit
            tokens = _prompt_tokens(tokenizer, messages, room + 1)
            worst = max(worst, tokens + budget if tokens <= room else window + 1)
        if worst > window:
            detail = f"the prompt (question + expert solution) plus the generation budget exceed the student's {window}-token context"
            skipped.append(SkippedRow(problem.provenance.row_index, TOO_LONG, f"problem {problem.id}: {detail}"))
        else:
            kept.append(problem)
    return kept, skipped


# -- gold answers ---------------------------------------------------------------------------------


def check_golds(problems: Sequence[Problem], checker: Any) -> tuple[list[Problem], list[SkippedRow]]:
    """Split problems into those whose gold the checker can verify in time and the rest."""
    verifiable = checker.golds_verifiable(sorted({p.answer for p in problems}))
    kept = [p for p in problems if verifiable.get(p.answer, True)]
    skipped = [
        SkippedRow(
            p.provenance.row_index,
            UNVERIFIABLE_GOLD,
            f"problem {p.id}: checking gold answer {p.answer[:60]!r} exceeds the {checker.timeout:g} s answer timeout",
        )
        for p in problems
        if not verifiable.get(p.answer, True)
    ]
    return kept, skipped


# -- OpenAI-compatible servers -------------------------------------------------------------------


def _openai_window(options: dict[str, Any], server_window: Callable[[], int | None] | None) -> tuple[Any, int | None]:
    """(tokenizer, context window) for a run against an OpenAI-compatible server: the tokenizer
    of --tokenizer (default: the student id), the window of --max-model-len, else what the
    server reports, capped by the tokenizer's and model config's own limits. A student id that
    is only the server's name for the model (no tokenizer to load) is a warning, not an error:
    the server's refusals still cost only their problem (dart_hub.adaptation.stream)."""
    explicit = options.get("tokenizer")
    try:
        tokenizer, model_config = load_student_tokenizer(explicit or options["student"], None if explicit else options.get("student_revision"))
    except DartHubError as error:
        if explicit:
            raise
        sys.stderr.write(
            f"prompt lengths not checked: {error}; pass --tokenizer (a Hub id or folder with the served model's tokenizer) "
            f"to skip too-long problems before sending them\n"
        )
        return None, None
    limit = options.get("max_model_len") or (server_window() if server_window else None)
    return tokenizer, context_window(model_config, tokenizer, limit)


# -- entry point ----------------------------------------------------------------------------------


def admit(
    problems: Sequence[Problem],
    adapt_config: Any,
    prompts: Any,
    options: dict[str, Any],
    server_window: Callable[[], int | None] | None = None,
) -> Admission:
    """Run the admission checks of an `adapt` run (the command's options as click gives them).
    Nothing to check for the static strategy (nothing is generated or compared).
    `server_window`: the context length an OpenAI-compatible server reports (its /v1/models
    `max_model_len`), asked only when --max-model-len does not say."""
    problems = list(problems)
    if adapt_config.strategy == "static" or not problems:
        return Admission(problems)
    from dart_hub.answers import AnswerChecker
    from dart_hub.engines.factory import resolve_engine_kind

    skipped: list[SkippedRow] = []
    window = None
    # The length rule knows DART's requests (simulation / exploration prompts and budgets);
    # other methods (DAIL) build theirs differently and only get the gold check.
    dart = (options.get("method") or "dart") == "dart"
    kind = resolve_engine_kind(options.get("engine") or "auto")
    if dart and kind in ("transformers", "vllm"):
        tokenizer, model_config = load_student_tokenizer(options["student"], options.get("student_revision"))
        window = context_window(model_config, tokenizer, options.get("max_model_len"))
        if window is not None:
            problems, too_long = check_lengths(problems, adapt_config, prompts, tokenizer, window)
            skipped += too_long
    elif dart and kind == "openai":
        tokenizer, window = _openai_window(options, server_window)
        if tokenizer is not None and window is not None:
            problems, too_long = check_lengths(problems, adapt_config, prompts, tokenizer, window)
            skipped += too_long
    if problems:
        with AnswerChecker(timeout=options.get("answer_timeout") or 5.0) as checker:
            problems, bad_golds = check_golds(problems, checker)
        skipped += bad_golds
    return Admission(problems, skipped, window)
