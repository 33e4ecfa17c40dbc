"""The PostgreSQL engine and Redis client of a service that keeps both.

Every service with a database (auth, detection, notification) builds the same pool from the
same variables and must release both clients once its workers have stopped. Here that is done
once, so a service's wiring names only what it builds on top of them, and none disposes of the
engine before Redis, or forgets one of the two.
"""

from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from objectvision_common.db import create_engine_for, session_factory
from objectvision_common.redis_client import connect_redis
from objectvision_common.settings import GrpcServiceSettings


@dataclass(frozen=True)
class Stores:
    """One process's database engine, its session factory and its Redis client."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    redis: Redis

    @classmethod
    def from_settings(
        cls, settings: GrpcServiceSettings, *, decode_responses: bool = False
    ) -> "Stores":
        """Connects nothing yet: both clients open connections on their first use."""
        engine = create_engine_for(settings.database_url, pool_size=settings.database_pool_size)
        redis = connect_redis(settings.redis_url, decode_responses=decode_responses)
        return cls(engine=engine, sessions=session_factory(engine), redis=redis)

    async def close(self) -> None:
        """A runner `on_close` hook: called after the workers that use the clients stopped."""
        await self.redis.aclose()
        await self.engine.dispose()
