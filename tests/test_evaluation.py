"""dart_hub.evaluation: benchmark registry and loading (emulated Hub and local files), gold
answers, grading, evaluate() with a scripted engine (accuracies, resume), comparisons."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dart_hub.answers import AnswerChecker
from dart_hub.errors import DartHubError
from dart_hub.evaluation import (
    BENCHMARK_NAMES,
    BENCHMARKS,
    EVAL_SYSTEM_PROMPT,
    EvalItem,
    build_messages,
    compare_runs,
    evaluate,
    evaluate_items,
    extract_choice,
    grade_outputs,
    load_benchmark,
    load_benchmark_data,
    load_runs,
    render_comparison,
)
from dart_hub.evaluation.benchmarks import (
    BenchmarkSource,
    choice_gold,
    gsm8k_gold,
    olympiad_gold,
    parse_benchmark_list,
    parse_source_overrides,
    plain_gold,
)
from tests.scripted_engine import ScriptedEngine, user_text

# ---------------------------------------------------------------------------------------------
# Tiny benchmark files in each benchmark's real column layout (our own wording)
# ---------------------------------------------------------------------------------------------

ROWS: dict[str, list[dict[str, Any]]] = {
    "gsm8k": [
        {"question": "A farm sells 1,000 eggs a day and 250 more on Sundays. How many eggs on a Sunday?",
         "answer": "1000 + 250 = <<1000+250=1250>>1250 eggs.\n#### 1,250"},
        {"question": "Tom has 3 boxes of 4 pens. How many pens?", "answer": "3 * 4 = 12\n#### 12"},
        {"question": "A bus carries 7 people and 2 leave. How many remain?", "answer": "7 - 2 = 5\n#### 5"},
    ],
    "gaokao2023en": [
        {"question": "Let f(x) = x^2. Find f(1/2).", "answer": "$\\frac{1}{4}$", "source": "gaokao",
         "lang": "en", "sourcename": "own", "id": 0},
        {"question": "Solve 2x = 6 for x.", "answer": "3", "source": "gaokao", "lang": "en",
         "sourcename": "own", "id": 1},
    ],
    "olympiadbench": [
        {"id": 2001, "question": "Compute the sum of the first 4 positive odd numbers.",
         "solution": ["They add to 16."], "final_answer": ["$16$"], "context": None,
         "is_multiple_answer": False, "unit": None, "answer_type": "Numerical",
         "subfield": "Algebra", "subject": "Math", "language": "English"},
        {"id": 2002, "question": "Find the positive root of x^2 = 2.",
         "solution": ["It is the square root of two."], "final_answer": ["$\\sqrt{2}$"], "context": None,
         "is_multiple_answer": False, "unit": None, "answer_type": "Numerical",
         "subfield": "Algebra", "subject": "Math", "language": "English"},
    ],
    "college_math": [
        {"data_source": "college_math.algebra", "question_number": "1",
         "question": "Evaluate the limit of (3n+1)/n as n grows without bound.", "answer": "$3$",
         "license": "own", "data_topic": "college_math.calculus"},
        {"data_source": "college_math.algebra", "question_number": "2",
         "question": "Find the determinant of the 2 by 2 identity matrix scaled by 2.", "answer": "$4$",
         "license": "own", "data_topic": "college_math.linear_algebra"},
    ],
    "mmlu_stem": [
        {"question": "Which number is prime?", "choices": ["4", "6", "7", "9"],
         "subject": "high_school_mathematics", "answer": 2},
        {"question": "How many bones does this made-up skeleton have?", "choices": ["1", "2", "3", "4"],
         "subject": "anatomy", "answer": 0},  # excluded like the suite's 3018-row set
        {"question": "What is the derivative of x^2?", "choices": ["x", "2x", "x^2", "2"],
         "subject": "college_mathematics", "answer": 1},
    ],
}

GOLDS = {
    "gsm8k": ["1250", "12", "5"],
    "gaokao2023en": ["\\frac{1}{4}", "3"],
    "olympiadbench": ["16", "\\sqrt{2}"],
    "college_math": ["3", "4"],
    "mmlu_stem": ["C", "B"],
}


def jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def parquet_bytes(rows: list[dict[str, Any]]) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buffer)
    return buffer.getvalue()


GSM8K_README = """---
configs:
- config_name: main
  data_files:
  - split: train
    path: main/train-*
  - split: test
    path: main/test-*
---
# A GSM8K-shaped sample
"""


def hub_files(name: str) -> dict[str, bytes | str]:
    """Each registry repo's file layout, holding our rows."""
    rows = ROWS[name]
    if name == "gsm8k":
        train = [{"question": "Unused training question?", "answer": "x\n#### 1"}]
        return {
            "README.md": GSM8K_README,
            "main/test-00000-of-00001.parquet": parquet_bytes(rows),
            "main/train-00000-of-00001.parquet": parquet_bytes(train),
        }
    if name == "gaokao2023en":
        return {"Gaokao2023-Math-En.jsonl": jsonl(rows)}
    if name == "olympiadbench":
        return {"test.jsonl": jsonl(rows)}
    if name == "college_math":
        return {"college-math-test.jsonl": jsonl(rows)}
    return {"data/test-00000-of-00001.parquet": parquet_bytes(rows)}


def seed_hub(hub: Any) -> dict[str, str]:
    """Seed every benchmark under its registry id; return name -> commit sha."""
    return {name: hub.create_dataset(BENCHMARKS[name].repo_id, hub_files(name)) for name in BENCHMARK_NAMES}


def hub_sources(shas: dict[str, str]) -> dict[str, BenchmarkSource]:
    """The registry sources at the emulator's commits (the real pinned shas do not exist there)."""
    return {
        name: BenchmarkSource.parse(f"{BENCHMARKS[name].repo_id}@{sha}", BENCHMARKS[name])
        for name, sha in shas.items()
    }


def write_local(tmp_path: Path) -> dict[str, str]:
    """Every benchmark as a local file: jsonl, except gsm8k and mmlu_stem as parquet."""
    paths = {}
    for name, rows in ROWS.items():
        if name in ("gsm8k", "mmlu_stem"):
            path = tmp_path / f"{name}.parquet"
            path.write_bytes(parquet_bytes(rows))
        else:
            path = tmp_path / f"{name}.jsonl"
            path.write_text(jsonl(rows))
        paths[name] = str(path)
    return paths


@pytest.fixture(scope="module")
def checker():
    with AnswerChecker(timeout=10) as instance:
        yield instance


# ---------------------------------------------------------------------------------------------
# Gold answers and the registry
# ---------------------------------------------------------------------------------------------


def test_gold_extraction_per_benchmark():
    assert gsm8k_gold("so 1,000 + 234\n#### 1,234") == "1234"
    assert gsm8k_gold("a #### 5 then\n####  -3 ") == "-3"  # the last marker
    assert gsm8k_gold("no marker") is None
    assert plain_gold("$\\frac{1}{4}$") == "\\frac{1}{4}" and plain_gold(7) == "7"
    assert plain_gold("  $ $ ") is None and plain_gold(None) is None
    assert olympiad_gold(["$\\sqrt{2}$", "$-\\sqrt{2}$"]) == "\\sqrt{2}"
    assert olympiad_gold("$16$") == "16" and olympiad_gold([]) is None
    assert [choice_gold(i) for i in range(4)] == ["A", "B", "C", "D"]
    assert choice_gold("c") == "C" and choice_gold("3") == "D"
    assert choice_gold(4) is None and choice_gold(True) is None and choice_gold("E") is None


def test_registry_holds_the_papers_five_benchmarks():
    assert BENCHMARK_NAMES == ("gsm8k", "gaokao2023en", "olympiadbench", "college_math", "mmlu_stem")
    assert [BENCHMARKS[n].rows for n in BENCHMARK_NAMES] == [1319, 385, 675, 2818, 3018]
    assert BENCHMARKS["gsm8k"].repo_id == "openai/gsm8k" and BENCHMARKS["gsm8k"].config == "main"
    assert BENCHMARKS["mmlu_stem"].multiple_choice and not BENCHMARKS["gsm8k"].multiple_choice


# The paper's two other benchmarks, in their Hub layouts (checked on their public cards, see
# docs/evaluation.md): HuggingFaceH4/MATH-500 is one test.jsonl with problem / solution / answer /
# subject / level / unique_id; math-ai/minervamath has question / answer in a test split; the
# Qwen2.5-Math suite's own minerva_math file carries the answer only inside the solution's box.
MATH500_ROWS = [
    {"problem": "What is $\\frac{1}{2} + \\frac{1}{4}$?", "solution": "Add: $\\boxed{\\frac{3}{4}}$.",
     "answer": "\\frac{3}{4}", "subject": "Prealgebra", "level": 1, "unique_id": "test/prealgebra/1.json"},
    {"problem": "Find $x$ if $3x = 12$.", "solution": "Divide by 3: $x = \\boxed{4}$.", "answer": "4",
     "subject": "Algebra", "level": 1, "unique_id": "test/algebra/2.json"},
]
MINERVA_ROWS = [
    {"question": "A star has a parallax of 0.1 arcsec. What is its distance in parsecs?", "answer": "10"},
    {"question": "Compute the energy in eV of a 1 eV photon doubled.", "answer": "$2$"},
]
MINERVA_SUITE_ROWS = [  # the suite's file: the gold is the solution's last box
    {"problem": "Give the number of seconds in one minute.", "solution": "There are $\\boxed{60}$ seconds.",
     "type": "Physics"},
]


def test_math500_and_minerva_are_registered_and_read_their_real_layouts(tmp_path, hub, checker):
    assert (BENCHMARKS["math500"].repo_id, BENCHMARKS["math500"].split, BENCHMARKS["math500"].rows) == ("HuggingFaceH4/MATH-500", "test", 500)
    assert (BENCHMARKS["minerva_math"].repo_id, BENCHMARKS["minerva_math"].split, BENCHMARKS["minerva_math"].rows) == ("math-ai/minervamath", "test", 272)
    assert "math500" not in BENCHMARK_NAMES and "minerva_math" not in BENCHMARK_NAMES  # default stays Table 1's five

    sha = hub.create_dataset("HuggingFaceH4/MATH-500", {"test.jsonl": jsonl(MATH500_ROWS)})
    items = load_benchmark("math500", f"HuggingFaceH4/MATH-500@{sha}")
    assert [(i.question, i.gold) for i in items] == [(MATH500_ROWS[0]["problem"], "\\frac{3}{4}"), (MATH500_ROWS[1]["problem"], "4")]
    assert items[0].id == "math500-test/prealgebra/1.json" and items[0].choices is None

    minerva = tmp_path / "minerva.parquet"
    minerva.write_bytes(parquet_bytes(MINERVA_ROWS))
    assert [(i.question, i.gold) for i in load_benchmark("minerva_math", str(minerva))] == [
        (MINERVA_ROWS[0]["question"], "10"), (MINERVA_ROWS[1]["question"], "2")]
    suite = tmp_path / "minerva_math" / "test.jsonl"
    suite.parent.mkdir()
    suite.write_text(jsonl(MINERVA_SUITE_ROWS))
    [item] = load_benchmark("minerva_math", str(suite.parent))
    assert item.question == MINERVA_SUITE_ROWS[0]["problem"] and item.gold == "60"

    # selectable like the others: graded by equivalence (0.75 = 3/4), averaged over the two
    answers = {"What is": "\\boxed{0.75}", "Find $x$": "\\boxed{5}", "A star": "d = \\boxed{10}", "Compute the energy": "\\boxed{2}"}
    engine = ScriptedEngine(lambda r, i: next((a for k, a in answers.items() if user_text(r).startswith(k)), ""), "m/x")
    report = evaluate(engine, "math500,minerva_math", tmp_path / "out", max_tokens=32, checker=checker,
                      sources={"math500": f"HuggingFaceH4/MATH-500@{sha}", "minerva_math": str(minerva)})
    assert report.accuracy("math500") == 0.5 and report.accuracy("minerva_math") == 1.0
    assert report.data["benchmarks"]["math500"]["title"] == "MATH-500" and report.average == pytest.approx(0.75)


def test_benchmark_list_and_unknown_names():
    assert parse_benchmark_list(None) == list(BENCHMARK_NAMES)
    assert parse_benchmark_list("default") == list(BENCHMARK_NAMES)
    assert parse_benchmark_list("all") == [*BENCHMARK_NAMES, "math500", "minerva_math"]
    assert parse_benchmark_list(" mmlu_stem, gsm8k ,gsm8k") == ["mmlu_stem", "gsm8k"]
    assert parse_benchmark_list("minerva_math,math500") == ["minerva_math", "math500"]
    with pytest.raises(DartHubError) as caught:
        parse_benchmark_list("gsm8k,aime24")
    message = str(caught.value)
    assert "'aime24'" in message and "gsm8k, gaokao2023en, olympiadbench, college_math, mmlu_stem, math500, minerva_math" in message
    assert "\n" not in message
    with pytest.raises(DartHubError, match="unknown benchmark 'aime'.*known benchmarks"):
        load_benchmark("aime")


def test_source_override_parsing(tmp_path):
    gsm8k = BENCHMARKS["gsm8k"]
    same = BenchmarkSource.parse("openai/gsm8k@abc123", gsm8k)
    assert (same.repo_id, same.revision, same.config, same.split) == ("openai/gsm8k", "abc123", "main", "test")
    other = BenchmarkSource.parse("me/gsm8k-copy,split=eval", gsm8k)
    assert (other.repo_id, other.revision, other.config, other.split) == ("me/gsm8k-copy", None, None, "eval")
    local = tmp_path / "g.jsonl"
    local.write_text(jsonl(ROWS["gsm8k"]))
    assert parse_source_overrides([f"gsm8k={local}"])["gsm8k"].path == str(local)
    for bad, message in [
        ("gsm8k", "expected NAME=PATH_OR_REPO"),
        ("nope=./x.jsonl", "unknown benchmark 'nope'"),
        ("gsm8k=./missing.jsonl", "neither an existing local path nor a Hub dataset id"),
        ("gsm8k=a/b,colour=red", "unknown option 'colour=red'"),
    ]:
        with pytest.raises(DartHubError, match=message):
            parse_source_overrides([bad])


# ---------------------------------------------------------------------------------------------
# Loading: emulated Hub and local files
# ---------------------------------------------------------------------------------------------


def test_load_every_benchmark_from_the_emulated_hub(hub):
    shas = seed_hub(hub)
    sources = hub_sources(shas)
    for name in BENCHMARK_NAMES:
        data = load_benchmark_data(name, sources[name])
        assert [item.gold for item in data.items] == GOLDS[name], name
        assert data.source["kind"] == "hub" and data.source["revision"] == shas[name]
        assert data.source["repo_id"] == BENCHMARKS[name].repo_id
        if BENCHMARKS[name].revision is None:  # the registry default itself (latest commit)
            assert [i.gold for i in load_benchmark(name)] == GOLDS[name], name
    gsm8k = load_benchmark_data("gsm8k", sources["gsm8k"])
    assert gsm8k.source["config"] == "main" and gsm8k.source["split"] == "test"  # not train
    assert gsm8k.items[0].question.startswith("A farm sells 1,000 eggs")
    olympiad = load_benchmark("olympiadbench", sources["olympiadbench"])
    assert [item.id for item in olympiad] == ["olympiadbench-2001", "olympiadbench-2002"]
    mmlu = load_benchmark_data("mmlu_stem", sources["mmlu_stem"])
    assert mmlu.excluded == 1 and all("skeleton" not in item.question for item in mmlu.items)
    assert mmlu.items[0].choices == ["4", "6", "7", "9"]
    assert any("rows" in w for w in mmlu.warnings())  # 2 rows here, the benchmark has 3018


def test_hub_errors_are_one_line(hub):
    hub.create_dataset("MARIO-Math-Reasoning/Gaokao2023-Math-En", hub_files("gaokao2023en"))
    # The registry pins a real commit the emulator does not have.
    with pytest.raises(DartHubError) as caught:
        load_benchmark("gaokao2023en")
    message = str(caught.value)
    assert "revision '6c7bdecd205ed623b5e6c92335deb4f13a7cdd9b' not found" in message
    assert "\n" not in message
    with pytest.raises(DartHubError) as caught:
        load_benchmark("college_math")  # not seeded
    message = str(caught.value)
    assert "di-zhang-fdu/College_Math_Test not found" in message and "--benchmark-source college_math=PATH" in message
    assert "\n" not in message


def test_local_files_give_the_same_items_as_the_hub(hub, tmp_path):
    shas = seed_hub(hub)
    sources = hub_sources(shas)
    local = write_local(tmp_path)
    for name in BENCHMARK_NAMES:
        from_hub = load_benchmark(name, sources[name])
        from_file = load_benchmark(name, local[name])
        assert [(i.id, i.question, i.gold, i.choices) for i in from_file] == [
            (i.id, i.question, i.gold, i.choices) for i in from_hub
        ], name
    data = load_benchmark_data("gsm8k", local["gsm8k"])
    assert data.source["kind"] == "local" and len(data.source["files"][0]["sha256"]) == 64
    assert [i.gold for i in load_benchmark("gsm8k", local["gsm8k"], limit=2)] == ["1250", "12"]


def test_local_folder_picks_the_test_split_and_missing_columns_are_named(tmp_path):
    folder = tmp_path / "olympiad"
    folder.mkdir()
    (folder / "test.jsonl").write_text(jsonl(ROWS["olympiadbench"]))
    (folder / "train.jsonl").write_text(jsonl(ROWS["olympiadbench"][:1]))
    assert len(load_benchmark("olympiadbench", str(folder))) == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text(jsonl([{"problem_text": "x?", "solution": "y"}]))
    with pytest.raises(DartHubError) as caught:
        load_benchmark("gsm8k", str(bad))
    message = str(caught.value)
    assert "lacks a question column (question) and a gold column (answer)" in message
    assert "problem_text, solution" in message and "\n" not in message


def test_rows_without_gold_are_skipped_and_counted(tmp_path):
    rows = [*ROWS["gsm8k"], {"question": "Broken row?", "answer": "no final marker"}]
    path = tmp_path / "g.jsonl"
    path.write_text(jsonl(rows))
    data = load_benchmark_data("gsm8k", str(path))
    assert len(data.items) == 3 and data.skipped == {"no_gold_answer": 1}
    assert any("1 no_gold_answer" in w for w in data.warnings())


# ---------------------------------------------------------------------------------------------
# Prompts and grading
# ---------------------------------------------------------------------------------------------


def test_messages_ask_for_a_boxed_answer_and_letter_the_choices():
    math = build_messages(EvalItem("gsm8k", "g-1", "What is 2+2?", "4"))
    assert math == [{"role": "system", "content": EVAL_SYSTEM_PROMPT}, {"role": "user", "content": "What is 2+2?"}]
    assert "\\boxed{}" in EVAL_SYSTEM_PROMPT and "step by step" in EVAL_SYSTEM_PROMPT
    choice = build_messages(EvalItem("mmlu_stem", "m-1", "Pick the prime.", "C", ["4", "6", "7", "9"]))
    text = choice[-1]["content"]
    assert text.startswith("Pick the prime.") and "(A) 4\n(B) 6\n(C) 7\n(D) 9" in text
    assert "letter" in text and "\\boxed{}" in text


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("so the answer is \\boxed{C}", "C"),
        ("\\boxed{(B)}", "B"),
        ("\\boxed{\\text{D}}", "D"),
        ("\\boxed{A. 4}", "A"),
        ("The value is 7, i.e. \\boxed{7}", "C"),  # the option's text, not its letter
        ("Thinking... The answer is (B).", "B"),
        ("**Answer:** D", "D"),
        ("Reasoning done.\nC", "C"),
        ("the answer is a prime number", None),  # lowercase 'a' is a word, not a choice
        ("\\boxed{E}", None),
        ("", None),
    ],
)
def test_extract_choice(output, expected):
    assert extract_choice(output, ["4", "6", "7", "9"]) == expected


def test_grading_math_by_equivalence_and_choices_by_letter(checker):
    items = [
        EvalItem("gaokao2023en", "a", "q", "\\frac{1}{4}"),
        EvalItem("gaokao2023en", "b", "q", "\\frac{1}{4}"),
        EvalItem("gsm8k", "c", "q", "1250"),
        EvalItem("olympiadbench", "d", "q", "\\sqrt{2}"),
        EvalItem("college_math", "e", "q", "3"),
        EvalItem("mmlu_stem", "f", "q", "C", ["4", "6", "7", "9"]),
        EvalItem("mmlu_stem", "g", "q", "B", ["x", "2x", "x^2", "2"]),
    ]
    outputs = [
        "so \\boxed{0.25}",
        "so \\boxed{\\frac{1}{3}}",
        "They sell 1,250 eggs. \\boxed{1,250}",
        "x = \\boxed{2^{1/2}}",
        "I could not finish",
        "\\boxed{C}",
        "The answer is (A).",
    ]
    grades = grade_outputs(items, outputs, checker)
    assert [g.correct for g in grades] == [True, False, True, True, False, True, False]
    assert [g.extracted for g in grades] == ["0.25", "\\frac{1}{3}", "1,250", "2^{1/2}", None, "C", "A"]


# ---------------------------------------------------------------------------------------------
# evaluate_items / evaluate with a scripted engine
# ---------------------------------------------------------------------------------------------

# Per question: the scripted student's output. Right on 2/3 gsm8k, 1/2 gaokao, 2/2 olympiad,
# 0/2 college math, 1/2 MMLU-STEM.
ANSWERS = {
    "A farm sells": "1000 + 250 = 1250. \\boxed{1250}",
    "Tom has 3 boxes": "3 times 4 is \\boxed{12}",
    "A bus carries": "The answer is 6.",
    "Let f(x)": "f(1/2) = \\boxed{\\dfrac{1}{4}}",
    "Solve 2x": "x = \\boxed{2}",
    "Compute the sum": "1+3+5+7 = \\boxed{16}",
    "Find the positive root": "\\boxed{\\sqrt{2}}",
    "Evaluate the limit": "it diverges",
    "Find the determinant": "\\boxed{2}",
    "Which number is prime?": "7 is prime: \\boxed{C}",
    "What is the derivative": "The answer is (C).",
}
EXPECTED = {"gsm8k": (2, 3), "gaokao2023en": (1, 2), "olympiadbench": (2, 2), "college_math": (0, 2), "mmlu_stem": (1, 2)}


def respond(request, index):
    text = user_text(request)
    return next((answer for start, answer in ANSWERS.items() if text.startswith(start)), "no idea")


def test_evaluate_items_makes_one_greedy_call_and_grades(checker, tmp_path):
    items = load_benchmark("gsm8k", write_local(tmp_path)["gsm8k"])
    engine = ScriptedEngine(respond)
    seen = []
    results = evaluate_items(engine, items, checker, 321, progress=seen.append)
    assert len(engine.calls) == 1 and len(engine.calls[0]) == 3
    for request in engine.calls[0]:
        assert (request.temperature, request.n, request.max_tokens) == (0.0, 1, 321)
        assert request.messages[0] == ("system", EVAL_SYSTEM_PROMPT)
    assert [r.correct for r in results] == [True, True, False]
    assert [r.extracted for r in results] == ["1250", "12", "6"]
    assert results[0].prompt[-1]["content"] == items[0].question and results[0].gold == "1250"
    assert sum(seen) == 3
    assert evaluate_items(engine, [], checker, 10) == [] and len(engine.calls) == 1


def test_evaluate_writes_exact_accuracies_and_resumes(checker, tmp_path):
    sources = write_local(tmp_path)
    out = tmp_path / "run"
    engine = ScriptedEngine(respond, model_id="test/student")
    report = evaluate(engine, None, out, max_tokens=64, checker=checker, sources=sources, chunk_size=2)
    results = json.loads((out / "results.json").read_text())
    accuracies = {}
    for name, (correct, total) in EXPECTED.items():
        entry = results["benchmarks"][name]
        assert (entry["correct"], entry["total"]) == (correct, total), name
        assert entry["accuracy"] == pytest.approx(correct / total)
        accuracies[name] = correct / total
        lines = [json.loads(x) for x in (out / f"{name}.jsonl").read_text().splitlines()]
        assert len(lines) == total and sum(x["correct"] for x in lines) == correct
        assert set(lines[0]) >= {"prompt", "output", "extracted", "gold", "correct"}
    assert results["average"] == pytest.approx(sum(accuracies.values()) / 5)
    assert report.average == pytest.approx(results["average"])
    assert results["model"] == "test/student" and results["engine"]["engine"] == "scripted"
    assert results["settings"]["max_tokens"] == 64 and results["settings"]["temperature"] == 0.0
    assert results["benchmarks"]["mmlu_stem"]["excluded_rows"] == 1
    assert not results["benchmarks"]["gsm8k"]["complete"]  # 3 rows, not 1319
    assert list(results["benchmarks"]) == list(BENCHMARK_NAMES)
    # chunks of 2: gsm8k (3 items) took two calls; 5 benchmarks -> 6 calls in all
    assert [len(c) for c in engine.calls] == [2, 1, 2, 2, 2, 2]
    assert not (out / ".partial").exists()

    again = ScriptedEngine(lambda r, i: pytest.fail("a finished benchmark was recomputed"), model_id="test/student")
    second = evaluate(again, None, out, max_tokens=64, checker=checker, sources=sources, chunk_size=2)
    assert second.resumed == list(BENCHMARK_NAMES) and second.computed == []
    assert json.loads((out / "results.json").read_text())["benchmarks"] == results["benchmarks"]

    # A different item set (--limit) for one benchmark recomputes that one only.
    third_engine = ScriptedEngine(respond, model_id="test/student")
    third = evaluate(third_engine, "gsm8k", out, limit=1, max_tokens=64, checker=checker, sources=sources)
    assert third.computed == ["gsm8k"] and len(third_engine.calls) == 1
    after = json.loads((out / "results.json").read_text())
    assert after["benchmarks"]["gsm8k"]["total"] == 1 and after["benchmarks"]["mmlu_stem"]["total"] == 2


def test_an_interrupted_benchmark_resumes_from_its_finished_chunks(checker, tmp_path):
    sources = write_local(tmp_path)
    out = tmp_path / "run"

    class Crash(Exception):
        pass

    calls = []

    def crash_on_second_call(request, index):
        if len(calls) >= 2:
            raise Crash
        calls.append(user_text(request))
        return respond(request, index)

    with pytest.raises(Crash):
        evaluate(ScriptedEngine(crash_on_second_call, "m/x"), "gsm8k", out, max_tokens=8, checker=checker, sources=sources, chunk_size=2)
    assert not (out / "gsm8k.jsonl").exists() and len(list((out / ".partial" / "gsm8k").glob("*.jsonl"))) == 1
    engine = ScriptedEngine(respond, "m/x")
    report = evaluate(engine, "gsm8k", out, max_tokens=8, checker=checker, sources=sources, chunk_size=2)
    assert [len(c) for c in engine.calls] == [1]  # only the unfinished chunk
    assert report.data["benchmarks"]["gsm8k"]["correct"] == 2


def test_another_model_in_the_same_output_dir_is_refused(checker, tmp_path):
    sources = write_local(tmp_path)
    out = tmp_path / "run"
    evaluate(ScriptedEngine(respond, "m/one"), "gsm8k", out, max_tokens=8, checker=checker, sources=sources)
    with pytest.raises(DartHubError) as caught:
        evaluate(ScriptedEngine(respond, "m/two"), "gsm8k", out, max_tokens=8, checker=checker, sources=sources)
    message = str(caught.value)
    assert "holds results of another run" in message and "'m/one'" in message and "\n" not in message


# ---------------------------------------------------------------------------------------------
# Comparisons
# ---------------------------------------------------------------------------------------------


def write_results(directory: Path, model: str, accuracies: dict[str, float]) -> Path:
    directory.mkdir(parents=True)
    benchmarks = {
        name: {"title": BENCHMARKS[name].title, "accuracy": acc, "correct": 0, "total": 0}
        for name, acc in accuracies.items()
    }
    (directory / "results.json").write_text(json.dumps({"model": model, "benchmarks": benchmarks}))
    return directory


def test_compare_table_averages_and_deltas(tmp_path):
    base = write_results(tmp_path / "base", "Qwen/Qwen2.5-3B-Instruct",
                         {"gsm8k": 0.80, "gaokao2023en": 0.50, "olympiadbench": 0.20, "college_math": 0.40, "mmlu_stem": 0.60})
    full = write_results(tmp_path / "full", str(tmp_path / "ckpt"),
                         {"gsm8k": 0.85, "gaokao2023en": 0.55, "olympiadbench": 0.25, "college_math": 0.40, "mmlu_stem": 0.50})
    part = write_results(tmp_path / "part", "org/partial", {"gsm8k": 0.70})
    runs = load_runs([base, full, part])
    assert [r.label for r in runs] == ["Qwen/Qwen2.5-3B-Instruct", "full", "org/partial"]
    table = compare_runs(runs)
    base_row, full_row, part_row = table["rows"]
    assert base_row["average"] == pytest.approx(50.0)
    assert full_row["average"] == pytest.approx(51.0) and full_row["average_delta"] == pytest.approx(1.0)
    assert full_row["deltas"]["gsm8k"] == pytest.approx(5.0) and full_row["deltas"]["mmlu_stem"] == pytest.approx(-10.0)
    assert part_row["average_delta"] is None and not part_row["complete"]
    markdown = render_comparison(table, "markdown").splitlines()
    assert markdown[0] == "| Run | GSM8K | GaoKao 2023 En | OlympiadBench | College Math | MMLU-STEM | Avg. |"
    assert markdown[2] == "| Qwen/Qwen2.5-3B-Instruct (baseline) | 80.0 | 50.0 | 20.0 | 40.0 | 60.0 | 50.0 |"
    assert markdown[3] == "| full | 85.0 (+5.0) | 55.0 (+5.0) | 25.0 (+5.0) | 40.0 (+0.0) | 50.0 (-10.0) | 51.0 (+1.0) |"
    assert markdown[4] == "| org/partial | 70.0 (-10.0) | - | - | - | - | 70.0* |"
    assert markdown[-1].startswith("* average over")
    text = render_comparison(table, "text").splitlines()
    assert text[0].split() == ["Run", "GSM8K", "GaoKao", "2023", "En", "OlympiadBench", "College", "Math", "MMLU-STEM", "Avg."]
    assert "51.0 (+1.0)" in text[3]
    as_json = json.loads(render_comparison(table, "json"))
    assert as_json["baseline"] == "Qwen/Qwen2.5-3B-Instruct"

    relabeled = load_runs([base, full], {str(base): "No-Tuning", "full": "Adaptation-Full"})
    flipped = compare_runs(relabeled, baseline=1)
    assert flipped["baseline"] == "Adaptation-Full"
    assert flipped["rows"][0]["average_delta"] == pytest.approx(-1.0)


def test_compare_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DartHubError, match="has no results.json"):
        load_runs([tmp_path / "empty"])
    base = write_results(tmp_path / "base", "a/b", {"gsm8k": 0.5})
    with pytest.raises(DartHubError, match="--label 'nope' is none of the directories"):
        load_runs([base], {"nope": "X"})
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "results.json").write_text("{not json")
    with pytest.raises(DartHubError, match="not a readable results file"):
        load_runs([tmp_path / "broken"])
