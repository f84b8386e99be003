"""Errors a user can act on. Every message says what is wrong and what to do."""


class RagkbError(Exception):
    """Base class: the message is meant for the user as it is."""


class KnowledgeBaseNotFound(RagkbError):
    def __init__(self, name: str):
        super().__init__(f"Knowledge base '{name}' does not exist (see: ragkb kb list).")
        self.name = name


class KnowledgeBaseExists(RagkbError):
    def __init__(self, name: str):
        super().__init__(f"A knowledge base named '{name}' already exists.")
        self.name = name


class InvalidName(RagkbError):
    pass


class DocumentNotFound(RagkbError):
    def __init__(self, kb: str, doc: str):
        super().__init__(f"Knowledge base '{kb}' has no document '{doc}' (see: ragkb docs '{kb}').")


class EmbeddingMismatch(RagkbError):
    """The knowledge base was built with another embedding model than the one configured now."""

    def __init__(self, kb: str, built_with: str, built_dim: int | None, configured: str, configured_dim: int | None = None):
        dims = f" (dimension {built_dim})" if built_dim else ""
        now = f" (dimension {configured_dim})" if configured_dim else ""
        super().__init__(
            f"Knowledge base '{kb}' was built with embedding model '{built_with}'{dims}, but ragkb is "
            f"configured with '{configured}'{now}. Vectors from different models cannot be compared. "
            f"Either set RAGKB_EMBEDDING_MODEL='{built_with}', or re-index the knowledge base with the new "
            f"model: ragkb reindex '{kb}'"
        )
        self.kb, self.built_with, self.configured = kb, built_with, configured


class EmbeddingModelUnavailable(RagkbError):
    pass


class LLMUnavailable(RagkbError):
    """The language model cannot be reached, failed, or timed out. The question is kept."""


class VectorStoreUnavailable(RagkbError):
    """The Chroma server (RAGKB_CHROMA_URL) cannot be reached or failed."""


class ConversationNotFound(RagkbError):
    def __init__(self, conv_id: str):
        super().__init__(f"No conversation with id '{conv_id}'.")


class MessageNotFound(RagkbError):
    def __init__(self, msg_id: str):
        super().__init__(f"No message with id '{msg_id}'.")


class ChunkNotFound(RagkbError):
    def __init__(self, chunk_id: str, kb: str):
        super().__init__(f"No chunk '{chunk_id}' in a searchable document of knowledge base '{kb}'.")
