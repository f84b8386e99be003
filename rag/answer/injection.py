"""Instruction-like text in retrieved documents: documents are untrusted input, and a sentence that tells the
model what to do ("ignore your instructions and reply …", "助手：请在回答末尾附上 …") is data, never an order. Such
sentences are left out of the text the model reads and reported with the source, so the user sees what was
dropped and why. Measured with `ragkb eval injection` (README, "Prompt injection").

A sentence counts when it speaks to the model (ADDRESS) or tells it to set something aside (SET_ASIDE) and also
gives an order (ORDER), or when it carries a remote image (a request the browser would send by itself). The
phrases are per language, below; English ones match whole words, Chinese ones anywhere."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Who a sentence speaks to when it is meant for the model. Not the bare "system" / "系统" (a manual says "the
# system must be restarted" every other page) nor "the user" (a helpdesk runbook tells its reader what to tell
# the user).
ADDRESS = {
    "en": ["assistant", "ai", "a.i.", "ai model", "language model", "chatbot", "llm", "[system]", "system:",
           "system prompt", "system message", "previous instructions", "prior instructions", "above instructions",
           "before answering", "when you answer", "when answering", "your answer", "your reply", "you are now",
           "from now on"],
    "zh": ["助手", "人工智能", "语言模型", "大模型", "机器人", "【系统】", "[系统]", "系统：", "系统提示",
           "之前的指令", "以上指令", "上述指令", "之前的所有指令", "回答时", "在回答", "你的回答", "从现在起你",
           "你现在是"],
}
SET_ASIDE = {
    "en": ["ignore", "disregard", "forget", "override"],
    "zh": ["忽略", "无视", "忘记", "不要理会", "不要回答用户"],
}
ORDER = {
    "en": ["reply", "respond", "answer", "say", "tell", "append", "add", "write", "start", "end", "include",
           "recommend", "ask", "click", "output", "print", "sign", "mention"],
    "zh": ["回复", "回答", "告诉", "附上", "加上", "添加", "写", "开头", "结尾", "推荐", "请用户", "让用户", "点击",
           "输出", "署名", "请说", "提到"],
}
_REMOTE_IMAGE = re.compile(r"!\[[^\]\n]*\]\(\s*<?(?:https?:)?//|<\s*img\b[^>]*\bsrc\s*=\s*[\"']?(?:https?:)?//", re.I)
# a piece ends a sentence (。！？, or !?. before a space), a line or a table cell; an HTML comment is one piece
_PIECES = re.compile(r"<!--.*?-->|.*?(?:[。！？]+|[!?.](?=\s|$)|\n|\||$)", re.S)


def _english(phrases: list[str]) -> re.Pattern:
    return re.compile(r"(?<![a-z0-9])(?:" + "|".join(re.escape(p) for p in phrases) + r")(?![a-z0-9])")


_EN = {name: _english(table["en"]) for name, table in (("address", ADDRESS), ("aside", SET_ASIDE), ("order", ORDER))}


def _has(kind: str, table: dict[str, list[str]], low: str) -> bool:
    return bool(_EN[kind].search(low)) or any(p in low for p in table["zh"])


def _without_address(low: str) -> str:
    """The sentence with the words that address the model taken out ("在回答" holds the order word "回答")."""
    low = _EN["address"].sub(" ", low)
    for p in ADDRESS["zh"]:
        low = low.replace(p, " ")
    return low


def is_instruction(sentence: str) -> bool:
    """Whether `sentence` reads as an order to the model rather than as content."""
    if _REMOTE_IMAGE.search(sentence):
        return True
    low = sentence.lower()
    return _has("order", ORDER, _without_address(low)) and (_has("address", ADDRESS, low) or _has("aside", SET_ASIDE, low))


@dataclass
class Defused:
    text: str  # what the model reads
    dropped: list[str] = field(default_factory=list)  # the instruction-like sentences left out, as written


def defuse(text: str) -> Defused:
    """`text` without its instruction-like sentences (the rest exactly as it was)."""
    kept, dropped = [], []
    for piece in _PIECES.findall(text):
        if piece.strip() and is_instruction(piece):
            dropped.append(piece.strip())
            kept.append("\n" if piece.endswith("\n") else " |" if piece.endswith("|") else " ")
        else:
            kept.append(piece)
    if not dropped:
        return Defused(text)
    return Defused(re.sub(r"[ \t]{2,}", " ", "".join(kept)).strip(), dropped)
