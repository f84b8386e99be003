"""Access to the language model: one protocol, the OpenAI-compatible chat API.

In production that is `vllm serve` (RAGKB_LLM_BASE_URL); Ollama, llama.cpp and hosted services work
the same way. With no base URL, the embedded llama.cpp server (rag.local_llm) is started on
loopback on first use and stopped with the process.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from rag.errors import LLMUnavailable
from rag.settings import Settings


DEFAULT_CONTEXT_TOKENS = 600  # evidence budget for a model server (a GPU reads prompts fast) or a user's GGUF


class LLMService:
    """Resolves where the model is and hands out LangChain chat models for it."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._server = None
        self._resolved: tuple[str, str] | None = None
        self._lock = threading.Lock()
        self._token_counts: dict[str, int] = {}
        self._tokenize_style: str | None = None  # "content" (llama.cpp), "prompt" (vLLM), "estimate"
        self._tokenize_retry_at = 0.0
        self._context_tokens: int | None = None
        self._closed = False  # after close() no model server is started again (a warm-up thread may still ask)

    @property
    def embedded(self) -> bool:
        return not self.settings.llm_base_url and self.settings.llm_mode != "mock"

    @property
    def model_in_use(self) -> str | None:
        """The name of the model this service has been asking, or None before its first call (nothing is started
        or asked to find out: an evaluation reports it, and `auto` may have picked the 0.5B)."""
        return self._resolved[1] if self._resolved else None

    def endpoint(self) -> tuple[str, str]:
        """(base_url, model name); starts the embedded server the first time if needed."""
        with self._lock:
            if self._closed:
                raise LLMUnavailable("The app is shutting down; the model server is stopped.")
            if self._resolved and (not self.embedded or (self._server and self._server.running())):
                return self._resolved
            s = self.settings
            if s.llm_mode == "mock":
                self._resolved = ("mock://extractive", "mock-extractive")
            elif self.embedded:
                from rag.local_llm import LocalLLMServer

                path, alias = local_model_file(s)
                if self._server is None:
                    self._server = LocalLLMServer(path, alias, s.data_dir / "logs" / "llm-server.log",
                                                  n_ctx=s.llm_local_ctx, threads=s.llm_local_threads,
                                                  slots=s.concurrency)
                base = self._server.start()
                self._resolved = (base, alias)
            else:
                base = s.llm_base_url.rstrip("/")
                self._resolved = (base, s.llm_model or self._first_model(base))
            return self._resolved

    def _first_model(self, base_url: str) -> str:
        import httpx

        headers = {"Authorization": f"Bearer {self.settings.llm_api_key.get_secret_value()}"}
        try:
            r = httpx.get(f"{base_url}/models", headers=headers, timeout=min(self.settings.llm_timeout, 15))
            r.raise_for_status()
            models = [m["id"] for m in r.json().get("data", [])]
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            raise LLMUnavailable(unreachable_message(base_url, exc)) from exc
        if not models:
            raise LLMUnavailable(f"The model server at {base_url} lists no models; set RAGKB_LLM_MODEL.")
        return models[0]

    def context_tokens(self) -> int:
        """The evidence budget the served model affords (RAGKB_ANSWER_CONTEXT_TOKENS unset): what a packaged model
        reads in about 4 s on 2 cores; 600 for a model server or a GGUF of the user's."""
        if self._context_tokens is None:  # auto's choice looks at installed packages: once per service
            from rag.local_llm import PACKAGED_MODELS

            packaged = self.embedded and not self.settings.llm_local_model_path
            model = PACKAGED_MODELS.get(packaged_model_name(self.settings)) if packaged else None
            self._context_tokens = model.context_tokens if model else DEFAULT_CONTEXT_TOKENS
        return self._context_tokens

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` in the served model's own tokenizer: the server's /tokenize (llama.cpp and vLLM
        both have one); a character estimate only when the server offers none."""
        import httpx

        if not text:
            return 0
        if self.settings.llm_mode == "mock":
            return estimate_tokens(text)
        with self._lock:
            cached = self._token_counts.get(text)
        if cached is not None:
            return cached
        base, model = self.endpoint()
        root = base[: -len("/v1")] if base.endswith("/v1") else base
        headers = {"Authorization": f"Bearer {self.settings.llm_api_key.get_secret_value()}"}
        if self._tokenize_style == "estimate" or time.monotonic() < self._tokenize_retry_at:
            return estimate_tokens(text)
        count = None
        styles = {"content": {"content": text, "add_special": False},  # llama.cpp
                  "prompt": {"model": model, "prompt": text, "add_special_tokens": False}}  # vLLM
        for style, body in styles.items():
            if self._tokenize_style not in (None, style):
                continue
            try:
                r = httpx.post(f"{root}/tokenize", json=body, headers=headers,
                               timeout=min(self.settings.llm_timeout, 10))
                tokens = r.json().get("tokens") if r.status_code == 200 else None
            except (httpx.TimeoutException, httpx.TransportError):
                # down or hanging: the answer call will say so; do not wait on the tokenizer again for a while
                self._tokenize_retry_at = time.monotonic() + 30
                return estimate_tokens(text)
            except (httpx.HTTPError, ValueError, AttributeError):
                tokens = None
            if isinstance(tokens, list):
                count, self._tokenize_style = len(tokens), style
                break
        if count is None:  # the server has no tokenizer endpoint: estimate, and stop asking
            self._tokenize_style = self._tokenize_style or "estimate"
            return estimate_tokens(text)
        with self._lock:
            if len(self._token_counts) > 20000:
                self._token_counts.clear()
            self._token_counts[text] = count
        return count

    def chat_model(self, *, temperature: float | None = None, max_tokens: int | None = None,
                   timeout: float | None = None):
        from langchain_openai import ChatOpenAI

        base, model = self.endpoint()
        s = self.settings
        if s.llm_mode == "mock":
            from rag.mock import ExtractiveChatModel

            return ExtractiveChatModel()
        return ChatOpenAI(
            model=model, base_url=base, api_key=s.llm_api_key.get_secret_value(),
            temperature=s.llm_temperature if temperature is None else temperature,
            max_tokens=max_tokens or s.llm_max_tokens, timeout=timeout or s.llm_timeout, max_retries=0,
            streaming=True, stream_usage=True,
        )

    def close(self) -> None:
        with self._lock:  # waits for a server that is being started, then stops it
            self._closed = True
            if self._server is not None:
                self._server.stop()
                self._server = None
            self._resolved = None


def estimate_tokens(text: str) -> int:
    """Rough token count when no tokenizer is reachable: a CJK character ~1 token, ~4 other characters ~1."""
    from rag.text import is_cjk_char

    cjk = sum(1 for c in text if is_cjk_char(c))
    return cjk + (len(text) - cjk + 3) // 4


def packaged_model_name(s: Settings) -> str:
    """RAGKB_LOCAL_MODEL with `auto` resolved for this machine (a packaged model's name, or a GGUF path)."""
    from rag.local_llm import auto_local_model

    return auto_local_model() if s.local_model == "auto" else s.local_model


def local_model_file(s: Settings) -> tuple[Path, str]:
    """(GGUF path, served name) of the embedded model: a GGUF path, or a packaged model assembled and verified."""
    from rag.local_llm import PACKAGED_MODELS, assemble_default_model

    name = packaged_model_name(s)
    explicit = s.llm_local_model_path or (None if name in PACKAGED_MODELS else Path(name))
    if explicit is not None:
        if not explicit.is_file():
            raise LLMUnavailable(f"The embedded model file {explicit} does not exist (RAGKB_LOCAL_MODEL / "
                                 f"RAGKB_LLM_LOCAL_MODEL_PATH); packaged models: {', '.join(PACKAGED_MODELS)}.")
        return explicit, s.llm_model or explicit.stem
    model = PACKAGED_MODELS[name]
    return assemble_default_model(s.data_dir / "models", model), s.llm_model or model.alias


def unreachable_message(base_url: str, exc: BaseException) -> str:
    return (f"The language model at {base_url} is not reachable ({type(exc).__name__}: {exc}). Check that the "
            "model server is running (e.g. vllm serve), or unset RAGKB_LLM_BASE_URL to use the embedded model.")


def describe_llm_error(exc: BaseException, base_url: str, timeout: float) -> str:
    """A user-facing sentence for whatever the OpenAI client raised."""
    name = type(exc).__name__
    if "Timeout" in name:
        return (f"The language model at {base_url} did not answer within {timeout:g}s. It may be overloaded; "
                "try again, or raise RAGKB_LLM_TIMEOUT.")
    if "Connection" in name:
        return unreachable_message(base_url, exc)
    if "NotFound" in name:
        return f"The model server at {base_url} does not serve the configured model ({exc}). Check RAGKB_LLM_MODEL."
    if "Authentication" in name or "PermissionDenied" in name:
        return f"The model server at {base_url} refused the API key ({exc}). Check RAGKB_LLM_API_KEY."
    return f"The language model at {base_url} failed: {name}: {exc}"


def is_llm_error(exc: BaseException) -> bool:
    """Errors of the model call (connection, timeout, HTTP status), as opposed to bugs."""
    import openai

    mod = type(exc).__module__ or ""
    return isinstance(exc, (openai.APIError, ConnectionError, TimeoutError)) or \
        mod.startswith(("openai", "httpx", "httpcore", "langchain_openai"))
