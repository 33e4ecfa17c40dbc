"""Argon2id password hashing, kept off the event loop and bounded in memory."""

import asyncio
import secrets

import argon2
from argon2.exceptions import InvalidHashError, VerificationError

from auth_service.config import AuthSettings


class PasswordHasher:
    """Hashes and verifies passwords in worker threads.

    A hash costs tens of milliseconds of CPU and `memory_cost_kib` of memory, so it must not
    run on the event loop, and at most `max_concurrency` run at once to cap peak memory.
    """

    def __init__(
        self, *, time_cost: int, memory_cost_kib: int, parallelism: int, max_concurrency: int
    ) -> None:
        self._hasher = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost_kib,
            parallelism=parallelism,
            type=argon2.Type.ID,
        )
        self._slots = asyncio.Semaphore(max_concurrency)
        # Verified against when the email is unknown, so that a login for a missing account
        # takes as long as one for an existing account.
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> "PasswordHasher":
        return cls(
            time_cost=settings.argon2_time_cost,
            memory_cost_kib=settings.argon2_memory_cost_kib,
            parallelism=settings.argon2_parallelism,
            max_concurrency=settings.argon2_max_concurrency,
        )

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        async with self._slots:
            return await asyncio.to_thread(self._verify, password_hash, password)

    async def verify_dummy(self, password: str) -> None:
        """Spend the time of a real verification without one, against user enumeration."""
        await self.verify(self._dummy_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the hash was made with other parameters than the configured ones."""
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False
