"""PDF evaluations: text recovery and page attribution against ground truth, and FinanceBench page recall.

Both compare ragkb's ingest pipeline with the naive LangChain one (PyPDFLoader + RecursiveCharacterTextSplitter
1000/200 + Chroma), run in the same process on the same files.

- `pdf_ingest`: for each `<name>.truth.json` (pdf_ingest_dev layout), probe recall (share of probe sentences
  found in the extracted text after NFKC, removing non-word characters and lower-casing; also inside a
  single chunk) and outline page attribution (for each bookmark, a chunk containing its title carries the
  bookmark's 1-based physical page), and running header/footer lines (a page's first or last line with its
  printed page label) left in the chunks of that page.
- `financebench`: every PDF of the questions goes into one knowledge base (the realistic "shared store"
  setting); for each question, page recall@k = share of its gold evidence pages (file, 1-based page) among
  the pages of the top-k retrieved chunks; hit@k = at least one of them is.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
import unicodedata
from pathlib import Path

from app.evaluation.retrieval import paired_bootstrap
from rag.settings import Settings

KS = (1, 5, 10, 20)


def norm(text: str) -> str:
    return re.sub(r"[\W_]+", "", unicodedata.normalize("NFKC", text)).lower()


def _score_truth(truth: dict, full_text: str, chunks: list[tuple[int | None, str]]) -> dict:
    """chunks: (1-based page, normalized text)."""
    probes = truth.get("probes", [])
    full = norm(full_text)
    in_text = [p for p in probes if norm(p) in full]
    in_chunk = [p for p in probes if any(norm(p) in c for _, c in chunks)]
    outline = truth.get("outline", [])
    on_page, missed = 0, []
    for entry in outline:
        t = norm(entry["title"])
        pages = {p for p, c in chunks if t and t in c}
        if entry["page_number"] in pages:
            on_page += 1
        else:
            missed.append(f'{entry["title"]} (p.{entry["page_number"]}, found on {sorted(pages)[:5]})')
    out = {"outline_on_page": round(on_page / len(outline), 4) if outline else None,
           "outline_on_page_count": f"{on_page}/{len(outline)}", "outline_missed": missed[:10]}
    if probes:
        out.update({"probe_recall_text": round(len(in_text) / len(probes), 4),
                    "probe_recall_chunk": round(len(in_chunk) / len(probes), 4),
                    "probe_count": f"{len(in_text)}/{len(probes)}",
                    "probes_missed": [p for p in probes if p not in in_text][:10]})
    return out


def running_lines_left(labels: list[str], raw_pages: dict[int, str],
                       chunks: list[tuple[int | None, str]]) -> tuple[int, int]:
    """(running header/footer lines still in the chunks of their page, such lines in the PDF).

    A running line is the first or last non-empty line of a page that carries the page's printed
    label (from the ground truth, e.g. "29" or "ix") as a word of its own: "§3.6 表格 29", "30 第三章 …",
    "- 7 -". Found independently of ragkb's own detector, which does not know the labels."""
    def lines(text: str) -> list[str]:
        return [" ".join(line.split()) for line in text.split("\n") if line.strip()]

    chunk_lines: dict[int | None, set[str]] = {}
    for page, text in chunks:
        chunk_lines.setdefault(page, set()).update(lines(text))
    total = left = 0
    for page, text in raw_pages.items():
        if not 1 <= page <= len(labels) or not (edge := lines(text)):
            continue
        label = re.compile(rf"(?<![\w.]){re.escape(labels[page - 1])}(?![\w.])", re.IGNORECASE)
        for line in dict.fromkeys((edge[0], edge[-1])):
            if label.search(line):
                total += 1
                left += line in chunk_lines.get(page, set())
    return left, total


def _running(truth: dict, raw_pages: dict[int, str], chunks: list[tuple[int | None, str]]) -> dict:
    left, total = running_lines_left(truth.get("page_labels") or [], raw_pages, chunks)
    return {"running_lines_left": f"{left}/{total}", "running_lines_left_share": round(left / total, 4) if total else None}


def evaluate_pdf_ingest(set_dir: Path, settings: Settings, progress=print) -> dict:  # noqa: ANN001
    from app.evaluation import naive
    from ingest.loaders.pdf import _extract_pages, load_pdf
    from ingest.pipeline import ingest_paths
    from rag.store import KnowledgeBaseStore

    truths = sorted(set_dir.glob("*.truth.json"))
    if not truths:
        raise FileNotFoundError(f"no *.truth.json in {set_dir}: not a pdf_ingest set")
    files: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = KnowledgeBaseStore(settings.model_copy(update={"data_dir": Path(tmp)}))
        try:
            for truth_file in truths:
                truth = json.loads(truth_file.read_text(encoding="utf-8"))
                pdf = set_dir / truth.get("file", "pdfs/" + truth_file.name.replace(".truth.json", ".pdf"))
                progress(f"{pdf.name}: ragkb ingest")
                t0 = time.perf_counter()
                summary = ingest_paths(store, pdf.stem, [pdf])
                r = summary.results[0]
                ragkb: dict = {"pages": r.pages, "chunks": r.chunks, "ingest_seconds": round(time.perf_counter() - t0, 1)}
                if r.status == "failed":
                    ragkb["error"] = r.reason
                else:
                    rows = store.registry.chunk_rows(store.get_row(pdf.stem).id)
                    text = "".join(s.text for s in load_pdf(pdf).segments)
                    ragkb.update(_score_truth(truth, text, [(c.page, norm(c.text)) for c in rows]))
                    raw = {n: t for n, (t, _img, _lines) in enumerate(_extract_pages(pdf), start=1)}
                    ragkb.update(_running(truth, raw, [(c.page, c.text) for c in rows]))
                progress(f"{pdf.name}: naive PyPDFLoader pipeline")
                t0 = time.perf_counter()
                pages = naive.load_file(pdf)
                chunks = naive.split(pages)
                baseline: dict = {"pages": len(pages), "chunks": len(chunks),
                                  "ingest_seconds_without_embedding": round(time.perf_counter() - t0, 1)}
                baseline.update(_score_truth(truth, "".join(p.page_content for p in pages),
                                             [(c.metadata.get("page", -2) + 1, norm(c.page_content)) for c in chunks]))
                baseline.update(_running(truth, {p.metadata.get("page", -2) + 1: p.page_content for p in pages},
                                         [(c.metadata.get("page", -2) + 1, c.page_content) for c in chunks]))
                files[pdf.name] = {"ragkb": ragkb, "naive": baseline}  # not `naive`: that is the module
        finally:
            store.close()
    result: dict = {}
    for system in ("ragkb", "naive"):
        result[system] = {}
        for name, r in files.items():
            for metric in ("probe_recall_text", "probe_recall_chunk", "outline_on_page", "running_lines_left_share"):
                if r[system].get(metric) is not None:
                    result[system][f"{Path(name).stem}:{metric}"] = r[system][metric]
    result["_files"] = files
    result["_meta"] = {"set": set_dir.name, "pdfs": len(files)}
    return result


# --- FinanceBench ---------------------------------------------------------------------------------
def load_financebench(set_dir: Path, limit: int | None = None, seed: int = 0) -> list[dict]:
    import random

    path = set_dir / "questions.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: not a FinanceBench-format set")
    qs = [json.loads(line) for line in open(path, encoding="utf-8")]
    qs = [q for q in qs if (set_dir / "pdfs" / f"{q['doc_name']}.pdf").exists() and q.get("evidence")]
    if limit and limit < len(qs):
        qs = random.Random(seed).sample(qs, limit)
    return qs


def gold_pages(q: dict) -> set[tuple[str, int]]:
    return {(q["doc_name"], int(e["evidence_page_num"]) + 1) for e in q["evidence"]}


def page_metrics(ranked: list[tuple[str, int | None]], gold: set[tuple[str, int]]) -> dict[str, float]:
    out = {}
    for k in KS:
        top = set(ranked[:k])
        found = len(gold & top)
        out[f"page_recall@{k}"] = found / len(gold)
        out[f"hit@{k}"] = float(found > 0)
    return out


def _naive_page(doc) -> tuple[str, int]:  # noqa: ANN001
    """(file stem, 1-based page) of a PyPDFLoader chunk."""
    return Path(doc.metadata.get("source", "")).stem, int(doc.metadata.get("page", -1)) + 1


def evaluate_financebench(set_dir: Path, settings: Settings, limit: int | None = None, baseline: bool = True,
                          out_dir: Path | None = None, answers: bool = False, progress=print) -> dict:  # noqa: ANN001
    """Page recall@k; with `answers`, also each system's answer and whether it cites a gold page
    (answer correctness needs a judge for FinanceBench's free-form numbers and is not scored)."""
    from app.evaluation.answers import reply_metrics, scratch_store, summarize_replies, with_assembled_model
    from ingest.pipeline import Progress, ingest_paths
    from rag.answer import AnswerService
    from rag.llm import LLMService
    from rag.retrieval import search

    if answers:
        settings = with_assembled_model(settings)
    qs = load_financebench(set_dir, limit)
    pdfs = sorted({set_dir / "pdfs" / f"{q['doc_name']}.pdf" for q in qs})
    per_query: dict[str, dict[str, dict]] = {"ragkb": {}}
    meta: dict = {"set": set_dir.name, "questions": len(qs), "pdfs": len(pdfs), "limit": limit}
    k_max = max(KS)
    with scratch_store(settings) as (store, tmp):
        s = store.settings
        t0 = time.perf_counter()

        def report(p: Progress) -> None:
            if p.stage == "done":
                progress(f"ragkb ingest: {p.file_index + 1}/{p.file_total} {p.name}")

        summary = ingest_paths(store, "financebench", pdfs, progress=report)
        meta["ragkb_ingest_seconds"] = round(time.perf_counter() - t0, 1)
        meta["ragkb_pages"] = sum(r.pages or 0 for r in summary.results)
        meta["ragkb_chunks"] = sum(r.chunks or 0 for r in summary.results)
        meta["ragkb_failed"] = [f"{r.name}: {r.reason}" for r in summary.failed]
        t1 = time.perf_counter()
        for q in qs:
            hits = search(store, "financebench", q["question"], k=k_max)
            ranked = [(Path(h.filename).stem, h.page) for h in hits]
            per_query["ragkb"][q["financebench_id"]] = page_metrics(ranked, gold_pages(q))
        meta["ragkb_search_ms_per_question"] = round((time.perf_counter() - t1) * 1000 / max(1, len(qs)), 1)
        if answers:
            llm = LLMService(s)
            try:
                service = AnswerService(store, llm)
                answered = per_query.setdefault("_answers_ragkb", {})
                for n, q in enumerate(qs, start=1):
                    ans = service.answer("financebench", q["question"])
                    gold = gold_pages(q)
                    correct = [(Path(x.filename).stem, x.page) in gold for x in ans.sources if x.kind == "document"]
                    answered[q["financebench_id"]] = reply_metrics(ans.text, correct, ans.error)
                    progress(f"ragkb answers: {n}/{len(qs)}")
            finally:
                llm.close()
        if baseline:
            per_query["naive"], naive_answers = _naive_financebench(qs, pdfs, s, tmp, meta, progress, answers)
            if naive_answers is not None:
                per_query["_answers_naive"] = naive_answers
    ids = [q["financebench_id"] for q in qs]
    result: dict = {name: {m: round(sum(pq[i][m] for i in ids) / max(1, len(ids)), 4) for m in pq[ids[0]]}
                    for name, pq in per_query.items() if not name.startswith("_")} if ids else {}
    for name in ("ragkb", "naive"):
        if per_query.get(f"_answers_{name}"):
            result[f"{name} answers"] = summarize_replies(list(per_query[f"_answers_{name}"].values()))
    if "naive" in per_query and ids:
        result["_ci"] = {"ragkb-naive": {m: paired_bootstrap([per_query["ragkb"][i][m] for i in ids],
                                                             [per_query["naive"][i][m] for i in ids])
                                         for m in ("page_recall@5", "page_recall@10")}}
    result["_meta"] = meta
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / f"{set_dir.name}.pages.per_query.json").write_text(json.dumps(per_query, indent=1), encoding="utf-8")
    return result


def _naive_financebench(qs: list[dict], pdfs: list[Path], settings: Settings, workdir: Path, meta: dict,
                        progress, answers: bool = False) -> tuple[dict[str, dict], dict[str, dict] | None]:  # noqa: ANN001
    """Page metrics per question and, with `answers`, the naive chain's reply metrics per question."""
    from app.evaluation import naive

    t0 = time.perf_counter()
    chunks = []
    for n, pdf in enumerate(pdfs, start=1):
        chunks += naive.split(naive.load_file(pdf))
        progress(f"naive PyPDFLoader: {n}/{len(pdfs)} {pdf.name}")
    store = naive.chroma_store(chunks, settings, workdir / "naive")
    meta["naive_ingest_seconds"] = round(time.perf_counter() - t0, 1)
    meta["naive_chunks"] = len(chunks)
    out = {}
    for q in qs:
        docs = store.similarity_search(q["question"], k=max(KS))
        out[q["financebench_id"]] = page_metrics([_naive_page(d) for d in docs], gold_pages(q))
    if not answers:
        return out, None
    from app.evaluation.answers import NAIVE_K, NaiveStuffChain, reply_metrics
    from rag.llm import LLMService

    replies = {}  # the naive "stuff the top 4 chunks" chain on the same LLM
    chain = NaiveStuffChain.from_store(store)
    llm = LLMService(settings)
    try:
        for n, q in enumerate(qs, start=1):
            reply, docs, error, _s = chain.reply(llm, q["question"], k=NAIVE_K)
            gold = gold_pages(q)
            replies[q["financebench_id"]] = reply_metrics(reply, [_naive_page(d) in gold for d in docs], error)
            progress(f"naive answers: {n}/{len(qs)}")
    finally:
        llm.close()
    return out, replies
