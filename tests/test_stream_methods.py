"""DAIL (tau 1) and the mapper through the streaming scheduler (dart_hub.adaptation.stream): the chunked
runner's chunk files byte for byte, with a batching engine and with one that answers out of
order through futures; resume after lost chunks; a refused request costs its problem only; the
progress counts; DAIL with tau < 1 stays chunked."""

from __future__ import annotations

import pytest

from dart_hub.adaptation.pipeline import run_chunks
from dart_hub.adaptation.stream import stream
from dart_hub.answers import AnswerChecker
from dart_hub.methods.dail import Dail, DailConfig, load_dail_prompts
from dart_hub.methods.mapper import Mapper, MapperConfig, RewardConfig, load_mapper_prompts
from dart_hub.methods.mapper.scorer import TransformersScorer
from dart_hub.prompts import default_prompts
from dart_hub.records import Problem, Provenance
from dart_hub.store import WorkDir
from dart_hub.toy import toy_student_path
from tests.scripted_engine import ScriptedEngine, user_text
from tests.test_mapper_rewards import CHEATS, IN_STYLE, ORIGINAL, QUESTION
from tests.test_method_dail import SOLUTION, Equal
from tests.test_stream import FutureEngine

OTHER_STYLE = "Adding four to eighteen we obtain twenty-two.\n\nQuadrupling gives 88, and removing six leaves 82.\n\nHence \\boxed{82}."


class Counting:
    """A reporter that adds up what it is told."""

    def __init__(self):
        self.sequences = 0
        self.fresh = 0
        self.resumed = 0

    def sequences_done(self, count):
        self.sequences += count

    def problems_done(self, count, resumed):
        if resumed:
            self.resumed += count
        else:
            self.fresh += count


def dail_problems(count=7) -> list[Problem]:
    return [
        Problem(
            id=str(k), question=f"Problem {k}: what is (3/4 of 20) squared plus 17?", solution=SOLUTION, answer="242",
            provenance=Provenance(source="t", repo_id=None, revision=None, config=None, split="train", row_index=k),
        )  # fmt: skip
        for k in range(count)
    ]


DAIL_TEXTS = [
    "Three quarters of 20 is 15. Squaring gives 225. Adding 17: \\boxed{242}",
    "I think it is \\boxed{241}",
    ("First 3/4 of 20 is 15, and 15 squared is 225, plus 17 gives \\boxed{242}. But wait", "length"),
    "\\boxed{242}",  # answer only: the guard drops it
]


def dail_respond(request, i):
    k = int(user_text(request).split("Problem ", 1)[1].split(":", 1)[0])
    return DAIL_TEXTS[(k * 3 + i) % len(DAIL_TEXTS)]


def dail(**kwargs) -> Dail:
    return Dail(DailConfig(samples=3, max_tokens=64, chunk_size=3, **kwargs), default_prompts(), load_dail_prompts())


def work(tmp_path, name) -> WorkDir:
    return WorkDir(tmp_path / name, "key", {"x": 1})


def chunked(method, engine, problems, checker, wd, reporter=None, skipped=None):
    return run_chunks(lambda chunk, rep: method.adapt_chunk(engine, chunk, checker, rep), problems, method.config.chunk_size, wd, reporter, skipped)


def streamed(method, engine, problems, checker, wd, reporter=None, skipped=None):
    return stream(engine, problems, method.flows(checker, None), checker, wd, reporter, skipped)


def same_chunk_files(tmp_path, a: str, b: str) -> None:
    files = sorted((tmp_path / a / "chunks").glob("*.jsonl"))
    assert files and [p.name for p in files] == sorted(p.name for p in (tmp_path / b / "chunks").glob("*.jsonl"))
    for path in files:
        assert path.read_bytes() == (tmp_path / b / "chunks" / path.name).read_bytes()


def test_dail_streams_to_the_chunked_records_and_chunk_files(tmp_path):
    problems = dail_problems()
    expected = [e.to_dict() for e in chunked(dail(), ScriptedEngine(dail_respond), problems, Equal(), work(tmp_path, "c"))]
    assert {e["outcome"] for e in expected} == {"kept", "discarded"}
    batching = ScriptedEngine(dail_respond)
    counts = Counting()
    batched = streamed(dail(), batching, problems, Equal(), work(tmp_path, "b"), counts)
    futures = streamed(dail(), FutureEngine(dail_respond, concurrency=4), problems, Equal(), work(tmp_path, "f"))
    assert [e.to_dict() for e in batched] == [e.to_dict() for e in futures] == expected
    same_chunk_files(tmp_path, "b", "c")
    same_chunk_files(tmp_path, "f", "c")
    assert [len(call) for call in batching.calls] == [3, 3, 1]  # a batching engine: one call per chunk, as chunked
    assert (counts.sequences, counts.fresh, counts.resumed) == (7 * 3, 7, 0)


def test_dail_streaming_resumes_after_lost_chunks_and_counts_resumed_problems(tmp_path):
    problems = dail_problems()
    done = streamed(dail(), FutureEngine(dail_respond), problems, Equal(), work(tmp_path, "w"))
    for path in sorted((tmp_path / "w" / "chunks").glob("chunk-0000[02]-*.jsonl")):
        path.unlink()
    engine = FutureEngine(dail_respond)
    counts = Counting()
    redo = streamed(dail(), engine, problems, Equal(), work(tmp_path, "w"), counts)
    assert [e.to_dict() for e in redo] == [e.to_dict() for e in done]
    assert len(engine.submitted) == 3 + 1  # chunks 0 and 2 only
    assert (counts.sequences, counts.fresh, counts.resumed) == (4 * 3, 4, 3)


def test_dail_a_refused_request_costs_its_problem_only_and_is_not_retried(tmp_path):
    problems = dail_problems()
    refuse = lambda request: "Problem 4:" in user_text(request)  # noqa: E731
    skipped = []
    out = streamed(dail(), FutureEngine(dail_respond, reject=refuse), problems, Equal(), work(tmp_path, "w"), skipped=skipped)
    assert [e.id for e in out] == ["0", "1", "2", "3", "5", "6"]
    assert [(s.reason, s.row_index, "HTTP 400" in s.detail) for s in skipped] == [("request_rejected", 4, True)]
    reference = {e["id"]: e for e in (x.to_dict() for x in chunked(dail(), ScriptedEngine(dail_respond), problems, Equal(), work(tmp_path, "c")))}
    assert [e.to_dict() for e in out] == [reference[e.id] for e in out]
    quiet = FutureEngine(lambda r, i: pytest.fail("resume must not generate"))
    again_skipped = []
    again = streamed(dail(), quiet, problems, Equal(), work(tmp_path, "w"), skipped=again_skipped)
    assert [e.to_dict() for e in again] == [e.to_dict() for e in out]
    assert again_skipped == skipped and quiet.submitted == []


def test_dail_below_tau_1_has_no_streaming_form():
    assert dail(tau=0.5).flows(Equal(), None) is None
    assert dail().flows(Equal(), None) is not None


# ------------------------------------------------------------------------------ the mapper

MAPPER_TEXTS = [CHEATS["wrong_answer"], IN_STYLE, CHEATS["copy"], OTHER_STYLE, CHEATS["answer_first"], (IN_STYLE, "length")]


def mapper_problems(count=7) -> list[Problem]:
    return [
        Problem(
            id=f"m{k}", question=QUESTION, solution=ORIGINAL, answer="82",
            provenance=Provenance(source="t", repo_id=None, revision=None, config=None, split="train", row_index=k),
        )  # fmt: skip
        for k in range(count)
    ]


def mapper_respond(request, i):
    return MAPPER_TEXTS[(request.seed + i) % len(MAPPER_TEXTS)]


@pytest.fixture(scope="module")
def checker():
    with AnswerChecker(timeout=5.0) as c:
        yield c


@pytest.fixture(scope="module")
def scorer():
    return TransformersScorer(str(toy_student_path()), device="cpu", dtype="float32", batch_size=4)


def mapper(scorer=None, **kwargs) -> Mapper:
    if scorer is None:  # the rewards that need no student
        kwargs["rewards"] = RewardConfig().with_weights("alignment=0,too_short=0")
    return Mapper(MapperConfig(samples=3, max_tokens=64, chunk_size=3, **kwargs), default_prompts(), load_mapper_prompts(), lambda: scorer)


def test_the_mapper_streams_to_the_chunked_records_and_chunk_files(tmp_path, scorer, checker):
    problems = mapper_problems()
    expected = [e.to_dict() for e in chunked(mapper(scorer), ScriptedEngine(mapper_respond), problems, checker, work(tmp_path, "c"))]
    assert {e["outcome"] for e in expected} == {"kept", "discarded"}
    assert all("alignment" in r for e in expected for r in e["method_data"]["rewards"])  # the scorer's batches ran
    counts = Counting()
    batched = streamed(mapper(scorer), ScriptedEngine(mapper_respond), problems, checker, work(tmp_path, "b"), counts)
    futures = streamed(mapper(scorer), FutureEngine(mapper_respond, concurrency=4), problems, checker, work(tmp_path, "f"))
    assert [e.to_dict() for e in batched] == [e.to_dict() for e in futures] == expected
    same_chunk_files(tmp_path, "b", "c")
    same_chunk_files(tmp_path, "f", "c")
    assert (counts.sequences, counts.fresh, counts.resumed) == (7 * 3, 7, 0)


def test_the_mapper_scores_each_chunk_in_one_batch(tmp_path, checker):
    batches = []

    class Recording(Mapper):
        def score(self, rows, checker):
            batches.append([p.id for p, _, _ in rows])
            return super().score(rows, checker)

    method = Recording(MapperConfig(samples=2, chunk_size=3, rewards=RewardConfig().with_weights("alignment=0,too_short=0")),
                       default_prompts(), load_mapper_prompts(), lambda: None)  # fmt: skip
    streamed(method, FutureEngine(mapper_respond, concurrency=64), mapper_problems(), checker, work(tmp_path, "w"))
    assert sorted(batches) == [["m0", "m1", "m2"], ["m3", "m4", "m5"], ["m6"]]


def test_the_mapper_resumes_and_a_refused_request_costs_its_problem_only(tmp_path, checker):
    problems = mapper_problems()
    refuse = lambda request: request.seed == mapper(None).request(problems[4]).seed  # noqa: E731
    skipped = []
    out = streamed(mapper(), FutureEngine(mapper_respond, reject=refuse), problems, checker, work(tmp_path, "w"), skipped=skipped)
    assert [e.id for e in out] == ["m0", "m1", "m2", "m3", "m5", "m6"]
    assert [(s.reason, s.row_index) for s in skipped] == [("request_rejected", 4)]
    reference = {e.id: e.to_dict() for e in chunked(mapper(), ScriptedEngine(mapper_respond), problems, checker, work(tmp_path, "c"))}
    assert [e.to_dict() for e in out] == [reference[e.id] for e in out]
    (next((tmp_path / "w" / "chunks").glob("chunk-00000-*.jsonl"))).unlink()
    engine = FutureEngine(mapper_respond, reject=lambda r: refuse(r) and pytest.fail("the refused problem was asked again"))
    again_skipped = []
    again = streamed(mapper(), engine, problems, checker, work(tmp_path, "w"), skipped=again_skipped)
    assert [e.to_dict() for e in again] == [e.to_dict() for e in out]
    assert again_skipped == skipped and len(engine.submitted) == 3  # chunk 0 only
