"""Sentence embeddings of a mean-pooling sentence-transformers model, run with transformers alone.

The packaged all-MiniLM-L6-v2 is a transformer, mean pooling and normalisation, nothing more. Loading it through
sentence-transformers imports scikit-learn and SciPy too, which cost every ragkb process (each CLI command, the
server, each evaluation) about 3 s of CPU before the first embedding. This runs the same steps on the same files
and gives the same vectors (tests/test_search.py compares them with sentence-transformers'). A model folder that
does anything else (CLS or max pooling, prompts, dense layers, lower-casing) is loaded by sentence-transformers.
"""

from __future__ import annotations

import json
from pathlib import Path

from langchain_core.embeddings import Embeddings

_MODULE = "sentence_transformers.models."


def plain_mean_pooling(folder: str | Path) -> bool:
    """Is `folder` a sentence-transformers model that is exactly Transformer -> mean Pooling (-> Normalize)?"""
    path = Path(folder)
    try:
        modules = json.loads((path / "modules.json").read_text(encoding="utf-8"))
        types = [m["type"] for m in modules]
        if types not in ([_MODULE + "Transformer", _MODULE + "Pooling", _MODULE + "Normalize"],
                         [_MODULE + "Transformer", _MODULE + "Pooling"]) or modules[0]["path"] not in ("", "."):
            return False
        pooling = json.loads((path / modules[1]["path"] / "config.json").read_text(encoding="utf-8"))
        others = [k for k, v in pooling.items() if k.startswith("pooling_mode_") and k != "pooling_mode_mean_tokens" and v]
        if not pooling.get("pooling_mode_mean_tokens") or others or pooling.get("include_prompt") is False:
            return False
        config = json.loads((path / "sentence_bert_config.json").read_text(encoding="utf-8"))
        if config.get("do_lower_case") or not config.get("max_seq_length"):
            return False
        st = path / "config_sentence_transformers.json"
        if st.exists():
            extra = json.loads(st.read_text(encoding="utf-8"))
            if extra.get("prompts") or extra.get("default_prompt_name"):
                return False
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return False
    return True


class MeanPooledEmbeddings(Embeddings):
    """LangChain Embeddings over such a folder: tokens (stripped, truncated to the model's max_seq_length, as
    sentence-transformers does), the mean of the token vectors under the attention mask, L2-normalised; newlines
    become spaces first, as in LangChain's HuggingFaceEmbeddings."""

    def __init__(self, folder: str | Path, device: str = "cpu", batch_size: int = 32):
        import torch
        from transformers import AutoModel, AutoTokenizer

        path = Path(folder)
        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        self.model = AutoModel.from_pretrained(str(path)).to(device).eval()
        self.max_length = int(json.loads((path / "sentence_bert_config.json").read_text(encoding="utf-8"))["max_seq_length"])
        self.device = device
        self.batch_size = max(1, batch_size)

    def get_embedding_dimension(self) -> int:
        return int(self.model.config.hidden_size)

    def _encode(self, texts: list[str]) -> list[list[float]]:
        torch = self._torch
        texts = [t.replace("\n", " ").strip() for t in texts]
        out: list[list[float]] = []
        with torch.inference_mode():
            for i in range(0, len(texts), self.batch_size):
                batch = self.tokenizer(texts[i:i + self.batch_size], padding=True, truncation="longest_first",
                                       max_length=self.max_length, return_tensors="pt").to(self.device)
                tokens = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(tokens.dtype)
                pooled = (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
                out.extend(torch.nn.functional.normalize(pooled, p=2, dim=1).cpu().tolist())
        return out

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._encode(list(texts))

    def embed_query(self, text: str) -> list[float]:
        return self._encode([text])[0]
