"""Bad input, measured: malformed files through the real ingest pipeline (embedded Chroma, the default embedder) and
hypothesis-made bytes under every extension, then schemathesis over the upload, ask, search, chunk and grant
endpoints of a real `ragkb serve` with users. Prints, per family of inputs: inputs tried, crashes (an exception
out of the pipeline, a 5xx), unclear errors (a refusal that does not say why in words: no reason, an exception's
repr, a traceback) and anything lost (a document the knowledge base held is no longer searchable, a failed
re-ingest replaced the good version, a half-written document is left).

    python bench/fuzz_inputs.py [--examples 40] [--pages 2000] [--api-examples 20]

Needs reportlab and schemathesis (the test extra)."""

from __future__ import annotations

import argparse
import io
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
                   "ANONYMIZED_TELEMETRY": "False", "HF_HUB_DISABLE_PROGRESS_BARS": "1"})

GOOD = "# Leave policy\n\nEmployees receive 24 days of leave per year. 年假为每年二十四天。\n"
UNCLEAR = re.compile(r"Traceback|^\w+Error$|^\w+Error\(|object at 0x|<class '", re.M)


@dataclass
class Tally:
    tried: int = 0
    crashes: list[str] = field(default_factory=list)
    unclear: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    refused: int = 0
    seconds: float = 0.0


WORDS = ("leave", "policy", "backup", "server", "invoice", "travel", "budget", "office", "network", "audit", "report",
         "training", "safety", "contract", "holiday", "payroll")


def pdf_bytes(pages: int, text: str | None = None) -> bytes:
    """`pages` pages; without `text` each page says something of its own (a line repeated on every page is a
    running header, which the loader removes)."""
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf, invariant=1)
    rnd = random.Random(pages)
    for n in range(1, pages + 1):
        lines = [text] if text else [" ".join(rnd.choice(WORDS) for _ in range(12)) + "." for _ in range(4)]
        for i, line in enumerate(lines):
            c.drawString(72, 720 - 16 * i, line)
        c.showPage()
    c.save()
    return buf.getvalue()


def docx_bytes(paragraphs: list[str]) -> bytes:
    from docx import Document

    d = Document()
    for p in paragraphs:
        d.add_paragraph(p)
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def zip_bomb_docx(expanded_mb: int) -> bytes:
    """A .docx whose document.xml expands to `expanded_mb` MB of zeros (about 1 MB on disk per GB)."""
    good = zipfile.ZipFile(io.BytesIO(docx_bytes(["x"])))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for info in good.infolist():
            if info.filename != "word/document.xml":
                z.writestr(info, good.read(info))
        with z.open("word/document.xml", "w", force_zip64=True) as f:
            block = b"0" * (1 << 20)
            for _ in range(expanded_mb):
                f.write(block)
    return buf.getvalue()


def good_version(ext: str, marker: str) -> bytes:
    text = f"Policy {marker}: employees receive 24 days of leave per year."
    if ext == "pdf":
        return pdf_bytes(1, text)
    if ext == "docx":
        return docx_bytes([text])
    if ext == "html":
        return f"<html><body><p>{text}</p></body></html>".encode()
    return f"# Policy\n\n{text}\n".encode()


def crafted(pages: int) -> list[tuple[str, str, bytes]]:
    """(family, file name, bytes): the kinds of bad input users send."""
    rnd = random.Random(7)
    pdf = pdf_bytes(3)
    docx = docx_bytes(["第一章 总则", "员工每年享有二十四天年假。"])
    png = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000") + bytes(40)
    out = []
    for frac in (0.05, 0.2, 0.4, 0.5, 0.6, 0.8, 0.95, 0.99):
        out.append(("truncated", f"truncated-{int(frac * 100)}.pdf", pdf[:int(len(pdf) * frac)]))
        out.append(("truncated", f"truncated-{int(frac * 100)}.docx", docx[:int(len(docx) * frac)]))
    for name, data in (("pdf-as.docx", pdf), ("pdf-as.md", pdf), ("pdf-as.txt", pdf), ("pdf-as.html", pdf),
                       ("docx-as.pdf", docx), ("docx-as.txt", docx), ("png-as.pdf", png), ("png-as.md", png),
                       ("png-as.txt", png), ("png-as.docx", png), ("text-as.pdf", GOOD.encode()),
                       ("text-as.docx", GOOD.encode()), ("empty.pdf", b""), ("empty.md", b""), ("empty.docx", b"")):
        out.append(("wrong extension or empty", name, data))
    for mb in (300, 2048):
        out.append(("zip bomb (.docx)", f"bomb-{mb}mb.docx", zip_bomb_docx(mb)))
    # (each chunk is embedded: a megabyte of text is ~1,000 chunks, about a minute on 2 cores)
    out.append(("huge lines", "one-line-1mb.txt", b"leave " * ((1 << 20) // 6)))
    out.append(("huge lines", "no-space-1mb.md", b"a" * (1 << 20)))
    out.append(("huge lines", "zh-no-punct-0.5mb.txt", ("年假天数" * (1 << 14)).encode()))
    out.append(("NUL bytes", "nul-sprinkled.txt", GOOD.replace(" ", "\0 ").encode()))
    out.append(("NUL bytes", "nul-only.md", b"\0" * 4096))
    out.append(("NUL bytes", "nul-in-utf16.txt", GOOD.encode("utf-16")))
    out.append(("broken encodings", "high-bytes.txt", bytes(rnd.randrange(0x80, 0x100) for _ in range(5000))))
    out.append(("broken encodings", "utf8-cut.md", "年假为每年二十四天".encode()[:-1]))
    out.append(("broken encodings", "gbk-and-utf8.txt", "年假".encode("gbk") + "二十四天".encode() * 50))
    out.append(("broken encodings", "utf16-no-bom.txt", GOOD.encode("utf-16-le")))
    out.append(("broken encodings", "surrogates.md", "年假 \ud800 天".encode("utf-8", "surrogatepass")))
    out.append(("broken encodings", "latin1.html", "<html><body><p>Caf\xe9 policy: 24 days</p></body></html>".encode("latin-1")))
    out.append((f"{pages}-page PDF", f"long-{pages}.pdf", pdf_bytes(pages)))
    return out


def hypothesis_inputs(examples: int) -> list[tuple[str, str, bytes]]:
    """Random bytes and mutated real files under every extension (hypothesis, derandomised)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    seeds = {"pdf": pdf_bytes(2), "docx": docx_bytes(["年假", "24 days"]), "md": GOOD.encode(), "txt": GOOD.encode(),
             "html": f"<html><body>{GOOD}</body></html>".encode()}
    got: list[tuple[str, str, bytes]] = []

    @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(ext=st.sampled_from(sorted(seeds)), how=st.sampled_from(["random", "flip", "cut", "splice"]),
           blob=st.binary(min_size=0, max_size=4096), at=st.integers(0, 10**6))
    def make(ext, how, blob, at):  # noqa: ANN001
        base = seeds[ext]
        i = at % (len(base) + 1)
        data = {"random": blob, "flip": base[:i] + blob[:16] + base[i + 16:], "cut": base[:i],
                "splice": base[:i] + blob + base[i:]}[how]
        got.append((f"hypothesis ({how})", f"h{len(got):03d}-{how}.{ext}", data))

    make()
    return got[:examples * 2]


def run_files(inputs: list[tuple[str, str, bytes]], progress=print) -> dict[str, Tally]:  # noqa: ANN001
    from ingest.pipeline import FAILED, ingest_paths
    from rag.retrieval import search
    from rag.settings import Settings
    from rag.store import KnowledgeBaseStore

    tallies: dict[str, Tally] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = KnowledgeBaseStore(Settings(data_dir=root / "data", _env_file=None))
        good = root / "good" / "policy.md"
        good.parent.mkdir()
        good.write_text(GOOD, encoding="utf-8")
        ingest_paths(store, "fuzz", [good])
        for n, (family, name, data) in enumerate(inputs, start=1):
            t = tallies.setdefault(family, Tally())
            t.tried += 1
            folder = root / f"in{n}"
            folder.mkdir()
            bad = folder / name
            bad.write_bytes(data)
            # first a good document under the same name: a refused file must leave it as it was
            marker = f"zq{n}xv"
            ext = Path(name).suffix.lower().lstrip(".")
            held = root / f"held{n}" / name
            held.parent.mkdir()
            held.write_bytes(good_version(ext, marker))
            ingest_paths(store, "fuzz", [held])
            t0 = time.perf_counter()
            try:
                summary = ingest_paths(store, "fuzz", [bad])
                results = summary.results
            except Exception as exc:  # noqa: BLE001 - the point is to catch anything that escapes
                t.crashes.append(f"{name}: {type(exc).__name__}: {exc}"[:300])
                results = []
            t.seconds += time.perf_counter() - t0
            for r in results:
                if r.status == FAILED:
                    t.refused += 1
                    if not r.reason or len(r.reason) < 12 or UNCLEAR.search(r.reason):
                        t.unclear.append(f"{name}: {r.reason!r}")
                    if not any(marker in h.text for h in search(store, "fuzz", marker, k=3)):
                        t.lost.append(f"{name}: refused, and the version the knowledge base held is gone")
            row = store.get_row("fuzz")
            docs = {d.filename: d for d in store.registry.documents(row.id)}
            if "policy.md" not in docs or not any("24 days" in h.text for h in search(store, "fuzz", "leave days", k=3)):
                t.lost.append(f"{name}: the knowledge base's good document is gone or unsearchable")
            half = [d.filename for d in docs.values() if d.status not in ("ready", "failed")]
            if half:
                t.lost.append(f"{name}: left half-written: {half}")
            if n % 10 == 0 or n == len(inputs):
                progress(f"  {n}/{len(inputs)} files")
        store.close()
    return tallies


def run_api(examples: int, progress=print) -> Tally:  # noqa: ANN001
    """schemathesis against a real `ragkb serve` that has users (an admin's API key), on the endpoints that take
    user input: upload, ask, search, chunks, members."""
    from rag.local_llm import free_port, stop_process

    t = Tally()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "RAGKB_DATA_DIR": str(Path(tmp) / "data"), "COLUMNS": "200"}
        exe = str(Path(sys.executable).parent / "ragkb")
        subprocess.run([exe, "user", "add", "admin"], input="fuzz-password\n", text=True, env=env, check=True,
                       capture_output=True)
        key = subprocess.run([exe, "user", "key", "admin"], text=True, env=env, check=True,
                             capture_output=True).stdout.strip().split()[-1]
        (Path(tmp) / "g.md").write_text(GOOD, encoding="utf-8")
        subprocess.run([exe, "ingest", "docs", str(Path(tmp) / "g.md")], env=env, check=True, capture_output=True)
        port = free_port()
        log = open(Path(tmp) / "serve.log", "wb")
        proc = subprocess.Popen([exe, "serve", "--host", "127.0.0.1", "--port", str(port)], env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            import urllib.request

            for _ in range(180):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2)
                    break
                except Exception:  # noqa: BLE001
                    time.sleep(1)
            t0 = time.perf_counter()
            run = subprocess.run(
                [str(Path(sys.executable).parent / "schemathesis"), "run", f"http://127.0.0.1:{port}/openapi.json",
                 "-H", f"Authorization: Bearer {key}", "--max-examples", str(examples), "--workers", "1",
                 "--seed", "1", "--request-timeout", "120", "--suppress-health-check", "filter_too_much",
                 "--include-path-regex", "^/api/kbs$|documents|ask|search|chunks|members|chat/completions"],
                cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
            t.seconds = time.perf_counter() - t0
            text = run.stdout + run.stderr
            m = re.search(r"(\d+) generated", text)
            t.tried = int(m.group(1)) if m else 0
            fails = re.findall(r"_{3,} (\w+ \S+) _{3,}", text)
            t.crashes = [f for f in fails] if "Server error" in text else []
            t.unclear = [f for f in fails if f not in t.crashes]
            if run.returncode not in (0, 1):
                t.crashes.append(f"schemathesis exit {run.returncode}: {text[-500:]}")
            progress(text[-1500:])
        finally:
            stop_process(proc, timeout=30)
            log.close()
    return t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", type=int, default=40, help="hypothesis-made files")
    ap.add_argument("--pages", type=int, default=2000, help="pages of the long PDF")
    ap.add_argument("--api-examples", type=int, default=20, help="schemathesis examples per operation (0: skip)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    inputs = crafted(args.pages) + hypothesis_inputs(args.examples)
    print(f"{len(inputs)} files ({sum(len(d) for *_, d in inputs) / 1e6:.0f} MB) through ingest")
    tallies = run_files(inputs)
    if args.api_examples:
        tallies["API (schemathesis: upload, ask, search, chunks, members)"] = run_api(args.api_examples)
    print("\n| inputs | tried | refused with a reason | crashes | unclear errors | lost | seconds |")
    print("|---|---|---|---|---|---|---|")
    total = Tally()
    for family, t in tallies.items():
        print(f"| {family} | {t.tried} | {t.refused} | {len(t.crashes)} | {len(t.unclear)} | {len(t.lost)} | {t.seconds:.0f} |")
        total.tried += t.tried
        total.refused += t.refused
        total.crashes += t.crashes
        total.unclear += t.unclear
        total.lost += t.lost
    print(f"| **all** | {total.tried} | {total.refused} | {len(total.crashes)} | {len(total.unclear)} | {len(total.lost)} "
          f"| {time.perf_counter() - t0:.0f} |")
    for label, items in (("crashes", total.crashes), ("unclear", total.unclear), ("lost", total.lost)):
        for x in items:
            print(f"{label}: {x}")


if __name__ == "__main__":
    main()
