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
    """The model a knowledge base was built with now gives vectors of another size (its files were replaced)."""

    def __init__(self, kb: str, model: str, built_dim: int, now_dim: int):
        super().__init__(
            f"Knowledge base '{kb}' was built with embedding model '{model}' (dimension {built_dim}), but that model "
            f"now gives vectors of dimension {now_dim}: the files behind its name changed. Restore them, or rebuild "
            f"the index with the model as it is now: ragkb reindex '{kb}' --model '{model}'")
        self.kb, self.model = kb, model


class EmbeddingModelUnavailable(RagkbError):
    pass


class ReindexRefused(RagkbError):
    """A re-index cannot start, switch or be cancelled now (rag.reindex); the message says why and what to do."""


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


class UserError(RagkbError):
    """A user name, password, key or role that cannot be used; the message says which and why (HTTP 422)."""


class UserNotFound(UserError):
    """No such user, or no such membership (HTTP 404)."""


class Forbidden(RagkbError):
    """The user holds a role on the knowledge base, but not one that allows this (HTTP 403)."""


class NotAuthenticated(RagkbError):
    """No valid key or login (HTTP 401)."""
