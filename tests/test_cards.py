"""The dataset card: metadata, content, determinism, escaping of hostile strings, token guard."""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner
from huggingface_hub import DatasetCard
from markdown_it import MarkdownIt

from dart_hub.cli import cli
from dart_hub.errors import DartHubError
from dart_hub.publish import cards
from dart_hub.publish.cards import PARAMETERS, code, fence, fmt, md, render_card
from dart_hub.publish.figures import FIGURE_FILE
from dart_hub.publish.folder import DATA_FILE, STEPS_FILE, read_examples, render_folder_card
from tests.test_publish_folder import adapted_examples, load, run_config, write

HOSTILE = (
    "---\nlicense: mit\nkey: value\n| col | umn |\n<script>alert('x')</script> ```python\nimport os\n``` "
    "`tick` *bold* _it_ [link](http://evil) $x_1$ \\boxed{42} & done"
)


@pytest.fixture(scope="module")
def adapted():
    return adapted_examples()


def front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("\n---\n", 1)[0][4:])


def markdown_tokens(card: str):
    body = card.split("\n---\n", 1)[1]
    return MarkdownIt("commonmark").enable("table").parse(body)


def assert_tables_are_rectangular(card: str) -> int:
    """Every table row has as many cells as its header; returns the number of tables."""
    tokens = markdown_tokens(card)
    tables, cells, expected, row_cells = 0, 0, None, 0
    for token in tokens:
        if token.type == "table_open":
            tables, expected = tables + 1, None
        elif token.type == "tr_open":
            row_cells = 0
        elif token.type in ("th_open", "td_open"):
            row_cells += 1
        elif token.type == "tr_close":
            expected = expected or row_cells
            assert row_cells == expected
            cells += row_cells
    return tables


def test_metadata_parses_and_describes_the_dataset(adapted, tmp_path):
    examples, config = adapted
    out = write(tmp_path / "out", examples, config)
    card = DatasetCard.load(out / "README.md")
    data = card.data.to_dict()
    assert data["license"] == "apache-2.0"
    assert data["source_datasets"] == ["GAIR/LIMO"]
    assert data["task_categories"] == ["text-generation"]
    assert data["language"] == ["en"]
    assert data["size_categories"] == ["n<1K"]
    assert {"dart", "reasoning", "math", "distillation", "synthetic"} <= set(data["tags"])
    assert data["pretty_name"] == "GAIR/LIMO adapted to Qwen/Qwen2.5-1.5B-Instruct with DART"
    assert data["configs"] == [
        {"config_name": "default", "default": True, "data_files": [{"split": "train", "path": DATA_FILE}]},
        {"config_name": "steps", "data_files": [{"split": "train", "path": STEPS_FILE}]},
    ]
    infos = {info["config_name"]: info for info in data["dataset_info"]}
    assert infos["default"]["splits"][0]["num_examples"] == 4
    assert infos["steps"]["splits"][0]["num_examples"] == 5


def test_local_source_without_license(adapted, tmp_path):
    examples, config = adapted
    source = {"dataset": "./data/my set.jsonl", "preset": None, "kind": "local", "repo_id": None, "revision": None, "license": None}
    out = write(tmp_path / "out", examples, config, source=source)
    text = (out / "README.md").read_text()
    data = front_matter(text)
    assert data["license"] == "unknown" and "source_datasets" not in data
    assert data["pretty_name"] == "my set.jsonl adapted to Qwen/Qwen2.5-1.5B-Instruct with DART"
    assert "unknown: check the source" in text
    assert "ye2025limo" not in text  # LIMO is cited only for LIMO


def test_size_categories():
    assert [cards.size_category(n) for n in (0, 999, 1000, 9_999, 10_000, 2_000_000)] == [
        "n<1K", "n<1K", "1K<n<10K", "1K<n<10K", "10K<n<100K", "1M<n<10M",
    ]  # fmt: skip


def test_body_explains_method_source_statistics_usage_and_citations(adapted, tmp_path):
    examples, config = adapted
    out = write(tmp_path / "out", examples, config)
    text = (out / "README.md").read_text()
    for needle in [
        "0123abcd0123abcd0123abcd0123abcd0123abcd",  # source revision
        "Qwen/Qwen2.5-1.5B-Instruct",
        "imitation gap",
        "Outcome consistency",
        "Repetition filter",
        "earliest",  # ties
        "f all zero",
        "No significant drop",
        "step is never cut",
        "no\\_consistent\\_continuation",  # discard reason, escaped in its table cell
        "| kept | 4 (80.0%) |",
        f"]({FIGURE_FILE})",
        'load_dataset("path/to/this/folder", split="train")',
        'load_dataset("path/to/this/folder", "steps", split="train")',
        "trl sft",
        "--model_name_or_path Qwen/Qwen2.5-1.5B-Instruct",
        "Beyond Templates: Dynamic Adaptation of Reasoning Demonstrations via Feasibility-Aware Exploration",
        "LIMO: Less is More for Reasoning",
        "datasets 5.2.0",
        "empty\\_solution",  # skipped source rows
    ]:
        assert needle in text, needle
    for noisy in ("12.5", "/tmp/somewhere"):  # run time and work dir: not in a deterministic card
        assert noisy not in text
    assert assert_tables_are_rectangular(text) >= 6


def test_card_mentions_every_adapt_parameter_value(tmp_path):
    overrides = dict(n_sim=3, sim_temperature=0.15, sim_max_tokens=77, epsilon=0.35, peak="first", n_explore=5,
                     explore_temperature=0.65, explore_max_tokens=99, max_repetition=0.25, repetition_ngram=7,
                     keep="all", chunk_size=5, seed=11)  # fmt: skip
    examples, config = adapted_examples(**overrides)
    out = write(tmp_path / "out", examples, config)
    text = (out / "README.md").read_text()
    parameters = text.split("### Parameters", 1)[1].split("\n\n", 2)[1]  # the table only (cut reasons share names)
    rows = {line.split("|")[1].strip().replace("\\_", "_"): line for line in parameters.splitlines() if line.startswith("| ")}
    adapt = config.to_dict()
    assert set(PARAMETERS) >= set(adapt), "a new adapt parameter needs a card description"
    for key, value in adapt.items():
        assert key in rows, key
        assert f"| {md(fmt(value))} |" in rows[key], (key, value, rows[key])
        flag = PARAMETERS[key][0]
        if flag:
            assert f"{flag} {fmt(value)}" in text  # in the reproduce command line
    assert "first local maximum" in text and "Every qualifying continuation becomes its own" in text


def test_rendering_is_deterministic_and_the_card_command_reproduces_it(adapted, tmp_path):
    examples, config = adapted
    rc = run_config(examples, config)
    assert render_card(rc, examples, FIGURE_FILE) == render_card(rc, examples, FIGURE_FILE)
    shuffled = json.loads(json.dumps(rc))
    shuffled["adapt"] = dict(reversed(list(shuffled["adapt"].items())))
    assert render_card(shuffled, examples, FIGURE_FILE) == render_card(rc, examples, FIGURE_FILE)

    out = write(tmp_path / "out", examples, config)
    readme, figure = (out / "README.md").read_bytes(), (out / FIGURE_FILE).read_bytes()
    # from the folder alone (dart_config.json as read back + the steps parquet)
    assert render_folder_card(out, write_figure=False).encode() == readme
    runner = CliRunner()
    assert runner.invoke(cli, ["card", str(out), "--check"]).exit_code == 0
    result = runner.invoke(cli, ["card", str(out)])
    assert result.exit_code == 0 and result.output.strip() == str(out / "README.md")
    assert (out / "README.md").read_bytes() == readme and (out / FIGURE_FILE).read_bytes() == figure


def test_card_check_fails_on_a_stale_card_or_figure(adapted, tmp_path):
    examples, config = adapted
    out = write(tmp_path / "out", examples, config)
    runner = CliRunner()
    (out / "README.md").write_text((out / "README.md").read_text() + "\nedited\n")
    result = runner.invoke(cli, ["card", str(out), "--check"])
    assert result.exit_code == 1 and "README.md" in result.stderr
    assert runner.invoke(cli, ["card", str(out)]).exit_code == 0
    (out / FIGURE_FILE).write_bytes(b"not a png")
    result = runner.invoke(cli, ["card", str(out), "--check"])
    assert result.exit_code == 1 and FIGURE_FILE in result.stderr
    assert "edited" not in (out / "README.md").read_text()


def test_card_command_refuses_a_folder_that_is_not_an_adapt_output(tmp_path):
    (tmp_path / "x").mkdir()
    result = CliRunner().invoke(cli, ["card", str(tmp_path / "x")])
    assert result.exit_code == 1 and "dart_config.json" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_hostile_strings_break_neither_yaml_nor_markdown(tmp_path):
    examples, config = adapted_examples("abc", questions={"a": "Problem a: " + HOSTILE})
    student = "evil/`model`|x"
    source = {"dataset": "./sets/---\nkey: value|<b>.jsonl", "kind": "local", "repo_id": None, "preset": None,
              "license": "mit\nevil: true", "columns": {"question": "q|uestion", "solution": "solution", "answer": "answer"}}  # fmt: skip
    prompts = {"sft_system": "Think ``` then `box` | <i>it</i>\n---\n"}
    rc = run_config(examples, config, student=student, source=source, prompts=prompts)
    columns = {"question": "q|uestion", "solution": "solution", "answer": "answer"}
    from dart_hub.publish.folder import write_folder

    out = write_folder(tmp_path / "out", examples, rc, columns, prompts["sft_system"])
    text = (out / "README.md").read_text()

    data = front_matter(text)
    assert set(data) >= {"license", "configs", "pretty_name", "tags"}
    assert "key" not in data and "evil" not in data
    assert data["pretty_name"] == "--- key: value|<b>.jsonl adapted to `model`|x (local) with DART"  # one line
    assert data["license"] == "unknown"  # not a license id: the body shows it, escaped
    assert "| license | mit evil: true |" in text
    # Markdown: no raw HTML from user strings, tables intact, code fences closed
    tokens = markdown_tokens(text)
    html = " ".join(t.content for t in tokens if t.type == "html_block") + " ".join(
        c.content for t in tokens if t.children for c in t.children if c.type == "html_inline"
    )
    assert "script" not in html and "<b>" not in html and "<i>" not in html
    assert "<script>" not in text
    assert assert_tables_are_rectangular(text) >= 6
    first_examples = [line for line in text.splitlines() if line.startswith("| a |")]
    assert len(first_examples) == 1 and "&lt;script&gt;" in first_examples[0]
    fences = [t for t in tokens if t.type == "fence"]
    system_block = next(t for t in fences if "Think" in t.content)
    assert system_block.content == prompts["sft_system"].rstrip("\n") + "\n"
    # the data itself is untouched
    train = load(out, split="train")
    assert train[0]["q|uestion"] == "Problem a: " + HOSTILE
    assert read_examples(out)[0].question == "Problem a: " + HOSTILE


def test_a_token_looking_string_is_refused(adapted, tmp_path):
    token = "hf_" + "aB3dE5gH7j" * 4
    examples, config = adapted_examples("ab", questions={"a": f"Problem a: my key is {token}"})
    with pytest.raises(DartHubError, match="looks like a Hugging Face token") as info:
        render_card(run_config(examples, config), examples)
    assert token not in str(info.value)
    with pytest.raises(DartHubError):
        write(tmp_path / "out", examples, config)
    assert not (tmp_path / "out" / "README.md").exists()
    # short hf_ words (hf_hub, hf_xet) are fine
    ok, config = adapted_examples("ab", questions={"a": "Problem a: uses hf_hub and hf_xet"})
    assert "hf\\_hub" in render_card(run_config(ok, config), ok)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a|b", "a\\|b"),
        ("<script>", "&lt;script&gt;"),
        ("x_1 * y", "x\\_1 \\* y"),
        ("line\nbreak", "line break"),
        ("`code`", "\\`code\\`"),
    ],
)
def test_md_escapes_inline_text(text, expected):
    assert md(text) == expected


def test_code_and_fence_survive_backticks():
    assert code("a `b` c") == "``a `b` c``"
    assert code("`x`") == "`` `x` ``"
    block = fence("before\n```\ninside\n````\nafter")
    assert block.startswith("`````\n") and block.endswith("\n`````")
    tokens = MarkdownIt("commonmark").parse(block)
    assert [t.type for t in tokens] == ["fence"]


def test_no_trajectory_card_says_so(tmp_path):
    examples, config = adapted_examples("ab", keep_nothing=True)
    out = write(tmp_path / "out", examples, config)
    text = (out / "README.md").read_text()
    data = front_matter(text)
    assert data["configs"] == [{"config_name": "steps", "data_files": [{"split": "train", "path": STEPS_FILE}], "default": True}]
    assert "No example was kept" in text and "trl sft" not in text
    assert "size_categories" in data and data["size_categories"] == ["n<1K"]


def test_card_counts_each_cut_case_and_states_the_real_trace_rules(adapted):
    import dataclasses

    examples, config = adapted
    weak = dataclasses.replace(examples[1], cut_reason="weak_follow", discard_reason="truncated")
    card = render_card(run_config([*examples, weak], config), [*examples, weak])
    body = card.split("\n---\n", 1)[1]
    assert f"| {md('weak_follow')} | 1 | {md(cards.CUT_REASONS['weak_follow'])} |" in body
    assert f"| {md('truncated')} | 1 | {md(cards.DISCARD_REASONS['truncated'])} |" in body
    # the rules themselves: answer-revealing prefixes, reliability bar, truncation
    assert "Answer-revealing prefixes are not probed" in body
    assert f"min_follow = {fmt(config.min_follow)}" in body
    assert "cut\n   off by the token budget is never kept" in body
    assert "the first local maximum of f that is followed by a significant drop" in body
    assert assert_tables_are_rectangular(card) >= 3


def test_card_describes_the_raw_variant():
    examples, config = adapted_examples("ac", cleaning="raw")
    body = render_card(run_config(examples, config), examples).split("\n---\n", 1)[1]
    assert "Raw variant (paper Table 5" in body and "Repetition filter." not in body
    assert "lowest sample index (raw" in body


def test_card_describes_adaptive_probing_only_when_used():
    examples, config = adapted_examples("ac", probe="adaptive")
    body = render_card(run_config(examples, config), examples).split("\n---\n", 1)[1]
    assert "Adaptive probing (`probe = adaptive`)" in body
    scan_examples, scan_config = adapted_examples("ac")
    assert "Adaptive probing" not in render_card(run_config(scan_examples, scan_config), scan_examples)


def _rules_section(text: str) -> str:
    return text.split("### Rules", 1)[1].split("### Parameters", 1)[0]


def test_card_lists_every_active_deviation_by_name_and_a_paper_run_none(tmp_path):
    from dart_hub.adaptation.rules import DEVIATIONS

    examples, config = adapted_examples(rules="robust", confirm=16, probe="adaptive")
    text = (write(tmp_path / "robust", examples, config) / "README.md").read_text()
    section = _rules_section(text)
    assert "Rules: **robust**." in section and "not the paper's" in section
    listed = [line.split("**")[1] for line in section.splitlines() if line.startswith("- **")]
    assert listed == list(DEVIATIONS)  # all seven, in order, each with its sentence
    for name, (option, _, sentence) in DEVIATIONS.items():
        assert f"- **{name}** (`{option}`): {sentence}" in section
    assert "Confirmation (`confirm = 16`)" in text and "answer-revealing" not in section

    examples, config = adapted_examples(rules="paper", confirm=None)  # None: the set's value
    text = (write(tmp_path / "paper", examples, config) / "README.md").read_text()
    section = _rules_section(text)
    assert "Rules: **paper**." in section and "no deviations" in section
    assert "- **" not in section
    assert "first index of the maximum of f (Algorithm 1)" in text
    assert "Every prefix is probed, including those that already state the gold answer" in text
    assert "Confirmation (" not in text and "min_follow =" not in text
    # where the cuts fall, next to Table 6
    assert "Table 6" in text and "| LIMO | 3B | 0.5718 | 0.5983 |" in text
    assert "kept share keep/T over 5 probed problems" in text

    # one switch changed: exactly that deviation, and the set is called modified
    examples, config = adapted_examples(rules="paper", confirm=None, unfinished="drop")
    section = _rules_section((write(tmp_path / "one", examples, config) / "README.md").read_text())
    assert "Rules: **paper (modified)**." in section
    assert [line.split("**")[1] for line in section.splitlines() if line.startswith("- **")] == ["unfinished-dropped"]


def test_a_card_written_before_rules_existed_says_what_ran_then(tmp_path):
    examples, config = adapted_examples()  # the helper's robust rules without confirmation
    rc = run_config(examples, config)
    for key in ("rules", "answer_steps", "all_zero", "unfinished", "confirm"):
        rc["adapt"].pop(key)
    text = render_card(rc, examples, None)
    assert "Rules: **robust without confirmation (written before --rules existed)**." in text
    assert "- **answer-steps-skipped** (`--answer-steps skip`)" in text and "- **confirmation**" not in text
    # the reproduce command runs the same rules today
    assert "--rules robust" in text and "--answer-steps skip" in text and "--confirm 0" in text
