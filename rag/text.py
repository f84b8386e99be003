"""Language facts about text: CJK detection, query language, and a garbled-text score.

Chinese users mix Chinese and English in one sentence, so decisions are made on character shares,
not on a language-id model.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_CJK_RE = re.compile(
    r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef\u3040-\u30ff\uac00-\ud7af]"
)
# Chinese ideographs alone (no kana, no hangul): what the claim and quote checks compare character by character
HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LETTER_CJK_FAMILY = ("CJK", "HIRAGANA", "KATAKANA", "HANGUL", "BOPOMOFO", "HALFWIDTH", "FULLWIDTH", "IDEOGRAPHIC")


def is_cjk_char(ch: str) -> bool:
    return bool(_CJK_RE.match(ch))


# A text whose letters are more than this share CJK holds real Chinese, not a stray name: a Chinese manual quotes
# English commands and code on most pages, an English text holds next to no Chinese.
SOME_CHINESE = 0.05


def cjk_ratio(text: str) -> float:
    """Share of CJK characters among letters (ideographs, kana, hangul count as letters)."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return 0.0
    return sum(1 for c in letters if _CJK_RE.match(c)) / len(letters)


_LATIN_WORD = re.compile(r"[A-Za-z0-9]+")


def query_language(text: str) -> str:
    """'zh' when the query is mostly Chinese (a Chinese question with English terms stays 'zh'), else 'en'.

    Weighs CJK characters against Latin words (one word ~ two characters of meaning), so
    "如何配置 RAGKB_DATA_DIR" is Chinese and "What does 张三 do?" is English.
    """
    cjk = len(_CJK_RE.findall(text))
    latin = len(_LATIN_WORD.findall(text))
    if cjk + latin == 0:
        return "en"
    return "zh" if cjk / (cjk + 2 * latin) >= 0.3 else "en"


def _script(ch: str) -> str:
    try:
        name = unicodedata.name(ch)
    except ValueError:
        return "UNNAMED"
    first = name.split(" ", 1)[0]
    if first in _LETTER_CJK_FAMILY:
        return "CJK"
    return first


@dataclass(frozen=True)
class GarbleReport:
    chars: int
    suspicious: float  # share of private-use, replacement, control and unassigned characters
    scatter: float  # share of non-Latin letters outside the main non-Latin script
    latin1_mojibake: float  # share of Latin characters that are Latin-1 symbols/accented capitals

    @property
    def score(self) -> float:
        return self.suspicious + self.scatter + self.latin1_mojibake

    def describe(self) -> str:
        parts = []
        if self.suspicious >= 0.05:
            parts.append(f"{self.suspicious:.0%} private-use/control/replacement characters")
        if self.scatter >= 0.05:
            parts.append(f"{self.scatter:.0%} letters scattered over unrelated scripts")
        if self.latin1_mojibake >= 0.05:
            parts.append(f"{self.latin1_mojibake:.0%} Latin-1 mojibake letters")
        return ", ".join(parts) or "clean"


def garble_report(text: str) -> GarbleReport:
    """Score how much `text` looks like a broken text layer or a wrong decoding.

    Real text in any language is dominated by one or two scripts (Latin + Han for mixed Chinese);
    a PDF font without a usable ToUnicode map yields private-use code points or letters sprayed
    across Armenian, Thai, Myanmar... blocks; UTF-8/GBK bytes decoded as Latin-1 yield runs of
    'Ã', 'Â', 'Ö', 'Ð'.
    """
    chars = [c for c in text if not c.isspace()]
    n = len(chars)
    if n == 0:
        return GarbleReport(0, 0.0, 0.0, 0.0)
    bad = 0
    other_scripts: dict[str, int] = {}
    latin = latin1_marks = 0
    for c in chars:
        cp = ord(c)
        if unicodedata.category(c) in ("Co", "Cn", "Cc", "Cs") or cp == 0xFFFD:
            bad += 1
        elif 0x80 <= cp <= 0xBF or 0xC0 <= cp <= 0xDE:
            # Latin-1 symbols and accented capitals: rare in real text, the bulk of mis-decoded bytes.
            latin += 1
            latin1_marks += 1
        elif c.isalpha():
            s = _script(c)
            if s == "LATIN":
                latin += 1
            else:
                other_scripts[s] = other_scripts.get(s, 0) + 1
    # Non-Latin letters of real text belong to one script (Han, Cyrillic, Arabic...), maybe plus a
    # little Greek for formulas; mojibake sprays them over a dozen scripts.
    other = sum(other_scripts.values())
    if other >= 20:
        main = max(other_scripts.values()) + other_scripts.get("GREEK", 0) * (max(other_scripts, key=other_scripts.get) != "GREEK")
        scatter = max(0.0, (other - main) / other)
    else:
        scatter = 0.0
    scatter = scatter if scatter > 0.1 else 0.0
    moj = latin1_marks / latin if latin >= 20 else 0.0
    moj = moj if moj > 0.1 else 0.0
    return GarbleReport(n, bad / n, scatter, moj)


def is_garbled(text: str, threshold: float = 0.25) -> bool:
    return garble_report(text).score >= threshold
