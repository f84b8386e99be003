"""The answer pipeline's shape and its generation stage: stages that do not import each other in circles, a reply
that loops is stopped while it streams, and the check stage records what each of its rules changed."""

from __future__ import annotations

import ast
from pathlib import Path

from fakes import ScriptedLLM
from rag.answer import AnswerService
from rag.answer.generate import LoopGuard

ROOT = Path(__file__).resolve().parent.parent


def _run(service, *args):
    events = list(service.stream(*args))
    return "".join(e.text for e in events if e.type == "token"), events[-1]


def test_no_module_of_rag_imports_itself_through_others():
    """rag.citations and rag.claims imported each other (inside functions); no such circle may come back."""
    graph: dict[str, set[str]] = {}
    for path in (ROOT / "rag").rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rag"):
                deps.add(node.module)
                deps.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name.startswith("rag"))
        graph[name] = deps
    graph = {m: {d for d in deps if d in graph and d != m and not m.startswith(d + ".")} for m, deps in graph.items()}

    def cycle_from(start: str) -> list[str] | None:
        stack = [(start, [start])]
        seen = set()
        while stack:
            node, path = stack.pop()
            for dep in graph[node]:
                if dep == start:
                    return path + [dep]
                if dep not in seen:
                    seen.add(dep)
                    stack.append((dep, path + [dep]))
        return None

    cycles = [c for m in graph if (c := cycle_from(m))]
    assert not cycles, cycles[0]


def test_the_stream_orchestration_fits_one_screen():
    """The pipeline is read in one place: AnswerService.stream stays within 60 lines."""
    tree = ast.parse((ROOT / "rag" / "answer" / "service.py").read_text(encoding="utf-8"))
    stream = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "stream")
    assert stream.end_lineno - stream.lineno + 1 <= 60


def test_loop_guard_stops_repetition_and_leaves_ordinary_text_alone():
    for looping in ("[1] [2] " * 12, "[1] " * 20, "答案是第一行。\n" * 8, "| a | b |\n" * 10):
        guard = LoopGuard()
        assert any(guard.feed(looping[i:i + 3]) for i in range(0, len(looping), 3)), looping[:20]
    for fine in ("财务部门在收到完整材料后的五个工作日内完成付款[1]。发票原件需要由部门负责人签字[2]。",
                 "| a | b | c |\n|---|---|---|\n| 1 | 2 | 3 |\n| 4 | 5 | 6 |\n",
                 "Use \\section, \\subsection and \\subsubsection [1] [2] [3].", "........ 12\n" * 3):
        guard = LoopGuard()
        assert not any(guard.feed(fine[i:i + 3]) for i in range(0, len(fine), 3)), fine[:20]


def test_a_looping_reply_is_stopped_while_streaming_and_quoted(kb_store):
    """The injection benchmark's en-footnote case: "[1] [2] [1] [2] …" until the token limit. The stream is
    closed once the loop is plain; the bare marks then get the cited passage's sentence as any bare citation."""
    llm = ScriptedLLM("[1] [2] " * 60 + "never shown")
    text, done = _run(AnswerService(kb_store, llm), "kb", "报销后多久付款？")
    assert done.stopped == "repetition"
    assert "never shown" not in text and text.count("[1] [2]") < 12
    assert "五个工作日" in text  # the quote of the cited passage
    assert [a["rule"] for a in done.applied] == ["quote (adds nothing)"]


def test_each_rule_that_changes_an_answer_records_the_answer_without_it(kb_store):
    """Done.applied holds, per rule that fired, what the user would have read without it (and what it cited):
    `ragkb eval answers` scores every rule on and off from that one run."""
    llm = ScriptedLLM("财务部门在五个工作日内完成付款。")  # right, but cites nothing: attributed to block [1]
    text, done = _run(AnswerService(kb_store, llm), "kb", "报销后多久付款？")
    assert text.endswith(" [1]")
    assert done.applied == [{"rule": "attribution", "text": "财务部门在五个工作日内完成付款。", "cited": [],
                             "pages": [], "files": [], "chunks": []}]
    llm = ScriptedLLM("财务部门在五个工作日内完成付款[1]。")
    _, done = _run(AnswerService(kb_store, llm), "kb", "报销后多久付款？")
    assert done.applied == [] and done.stopped is None


def test_done_holds_the_evidence_the_model_read_and_the_wire_does_not(kb_store):
    """`ragkb eval answers` tells a miss whose answer reached the model (the model's) from one whose answer never did
    (the evidence's) by Done.read: the text of each numbered block, as the prompt held it. Clients never get it."""
    from rag.events import event_dict

    llm = ScriptedLLM("财务部门在五个工作日内完成付款[1]。")
    _, done = _run(AnswerService(kb_store, llm), "kb", "报销后多久付款？")
    prompt = llm.calls[-1][-1].content
    assert done.read and any("五个工作日" in t for t in done.read)
    assert all(" ".join(t.split()) in " ".join(prompt.split()) for t in done.read)
    assert prompt.count("<<<") == len(done.read)  # one text per block the model was given
    assert "read" not in event_dict(done) and "applied" not in event_dict(done)
    _, done = _run(AnswerService(kb_store, ScriptedLLM("x")), "kb", "法国的首都是哪里？")  # refused, no model call
    assert done.refused and done.read == []
