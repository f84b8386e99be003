"""Users, their API keys and their roles on knowledge bases, in the registry's database.

Passwords are hashed with argon2 (argon2-cffi); an API key is 32 random bytes shown once and stored as its
SHA-256 (a random key needs no slow hash; its first 8 characters are kept to name it in `ragkb user list`).
Roles are per knowledge base, by its id (a rename keeps them): viewer (search, ask), editor (also upload,
delete documents, edit chunks), owner (also rename, delete, re-index, grant). An admin holds every role on every
knowledge base. No user at all means no login: everyone is an admin, as before users existed.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String, delete, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from rag.errors import UserError, UserNotFound
from rag.registry import KnowledgeBaseRow, Registry, _now

VIEWER, EDITOR, OWNER = "viewer", "editor", "owner"
ROLES = (VIEWER, EDITOR, OWNER)  # each includes the rights of the ones before it
KEY_PREFIX = "rk-"


class _Base(DeclarativeBase):
    pass


class UserRow(_Base):
    __tablename__ = "users"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=_now)


class ApiKeyRow(_Base):
    __tablename__ = "api_keys"
    key_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    user: Mapped[str] = mapped_column(ForeignKey("users.name", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=_now)


class MemberRow(_Base):
    __tablename__ = "kb_members"
    kb_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user: Mapped[str] = mapped_column(ForeignKey("users.name", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))


@dataclass(frozen=True)
class User:
    """Who is acting. `name` "" with admin: nobody logged in because no login is configured (or the CLI)."""

    name: str
    admin: bool = False


ANYONE = User("", admin=True)


@dataclass
class UserInfo:
    name: str
    admin: bool
    keys: list[str]  # key prefixes
    roles: dict[str, str]  # knowledge base name -> role


def role_at_least(role: str | None, needed: str) -> bool:
    return role is not None and ROLES.index(role) >= ROLES.index(needed)


def _sha(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


_NAME = re.compile(r"^[\w.@-]{1,100}$")


class UserStore:
    def __init__(self, registry: Registry):
        _Base.metadata.create_all(registry.engine)
        self.session = registry.session
        from argon2 import PasswordHasher

        self._hasher = PasswordHasher()

    # -- users --------------------------------------------------------------------------------
    def any(self) -> bool:
        with self.session() as s:
            return bool(s.scalar(select(func.count()).select_from(UserRow)))

    def add(self, name: str, password: str, admin: bool = False) -> User:
        """The first user is an admin whatever `admin` says: someone has to be able to grant."""
        if not _NAME.match(name or ""):
            raise UserError(f"'{name}' cannot be a user name: use letters, digits, '.', '_', '@' or '-' (at most 100).")
        if len(password or "") < 8:
            raise UserError(f"The password for '{name}' is too short: use at least 8 characters.")
        with self.session() as s:
            if s.get(UserRow, name) is not None:
                raise UserError(f"A user named '{name}' already exists (ragkb user list).")
            first = not s.scalar(select(func.count()).select_from(UserRow))
            s.add(UserRow(name=name, password_hash=self._hasher.hash(password), admin=bool(admin or first)))
        return User(name, bool(admin or first))

    def get(self, name: str) -> User | None:
        with self.session() as s:
            row = s.get(UserRow, name)
            return User(row.name, row.admin) if row else None

    def remove(self, name: str) -> None:
        with self.session() as s:
            if s.get(UserRow, name) is None:
                raise UserNotFound(f"No user named '{name}' (ragkb user list).")
            s.execute(delete(ApiKeyRow).where(ApiKeyRow.user == name))
            s.execute(delete(MemberRow).where(MemberRow.user == name))
            s.execute(delete(UserRow).where(UserRow.name == name))

    def list(self) -> list[UserInfo]:
        with self.session() as s:
            names = {k.id: k.name for k in s.scalars(select(KnowledgeBaseRow))}
            out = []
            for row in s.scalars(select(UserRow).order_by(UserRow.created_at)):
                keys = [k.prefix for k in s.scalars(select(ApiKeyRow).where(ApiKeyRow.user == row.name))]
                roles = {names[m.kb_id]: m.role for m in s.scalars(select(MemberRow).where(MemberRow.user == row.name))
                         if m.kb_id in names}
                out.append(UserInfo(row.name, row.admin, keys, roles))
            return out

    def check_password(self, name: str, password: str) -> User | None:
        from argon2.exceptions import VerificationError

        with self.session() as s:
            row = s.get(UserRow, name or "")
        if row is None:
            self._hasher.hash(password or "")  # same time as a wrong password: names are not probed by timing
            return None
        try:
            self._hasher.verify(row.password_hash, password or "")
        except VerificationError:
            return None
        return User(row.name, row.admin)

    # -- API keys -----------------------------------------------------------------------------
    def new_key(self, name: str) -> str:
        """A new key acting as `name`, returned once (only its hash is stored)."""
        if self.get(name) is None:
            raise UserNotFound(f"No user named '{name}' (ragkb user add {name}).")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        with self.session() as s:
            s.add(ApiKeyRow(key_sha256=_sha(key), prefix=key[:11], user=name))
        return key

    def revoke_key(self, key_or_prefix: str) -> str:
        """Revoke a key given whole or by the prefix `ragkb user list` shows; returns the user it acted as."""
        given = (key_or_prefix or "").strip()
        with self.session() as s:
            rows = list(s.scalars(select(ApiKeyRow).where(ApiKeyRow.key_sha256 == _sha(given))))
            if not rows and len(given) >= 8:
                rows = list(s.scalars(select(ApiKeyRow).where(ApiKeyRow.prefix == given[:11])))
            if len(rows) != 1:
                raise UserError(f"No single API key matches '{given[:11]}' (ragkb user list shows the prefixes).")
            s.delete(rows[0])
            return rows[0].user

    def user_for_key(self, key: str) -> User | None:
        if not key:
            return None
        with self.session() as s:
            row = s.get(ApiKeyRow, _sha(key))
            user = s.get(UserRow, row.user) if row else None
            return User(user.name, user.admin) if user else None

    # -- roles --------------------------------------------------------------------------------
    def grant(self, kb_id: str, name: str, role: str) -> None:
        if role not in ROLES:
            raise UserError(f"'{role}' is not a role: use one of {', '.join(ROLES)}.")
        with self.session() as s:
            if s.get(UserRow, name) is None:
                raise UserNotFound(f"No user named '{name}' (ragkb user list).")
            row = s.get(MemberRow, (kb_id, name))
            if row is None:
                s.add(MemberRow(kb_id=kb_id, user=name, role=role))
            else:
                row.role = role

    def revoke(self, kb_id: str, name: str) -> bool:
        with self.session() as s:
            return bool(s.execute(delete(MemberRow).where(MemberRow.kb_id == kb_id, MemberRow.user == name)).rowcount)

    def role(self, kb_id: str, user: User) -> str | None:
        if user.admin:
            return OWNER
        with self.session() as s:
            row = s.get(MemberRow, (kb_id, user.name))
            return row.role if row else None

    def members(self, kb_id: str) -> dict[str, str]:
        with self.session() as s:
            return {m.user: m.role for m in s.scalars(select(MemberRow).where(MemberRow.kb_id == kb_id)
                                                      .order_by(MemberRow.user))}

    def kb_deleted(self, kb_id: str) -> None:
        with self.session() as s:
            s.execute(delete(MemberRow).where(MemberRow.kb_id == kb_id))
