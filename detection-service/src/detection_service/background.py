"""The shape of the service's background loops (job workers, sweeps) as GrpcApp runs them."""

import asyncio


class BackgroundLoop:
    """A background loop for GrpcApp: `run()` until `stop()`.

    Stopping cancels the loop wherever it waits, mid-job included: a job's message stays
    unacknowledged and another consumer reclaims it, and committed items are not redone.
    """

    _task: asyncio.Task[None] | None = None
    _stopped = False

    async def run(self) -> None:
        if self._stopped:
            return
        self._task = asyncio.current_task()
        await self._loop()

    def stop(self) -> None:
        self._stopped = True
        if self._task is not None:
            self._task.cancel()

    async def _loop(self) -> None:
        raise NotImplementedError
