"""Two waiting lines in front of the micro-batcher: images a caller is waiting for, and job work.

A batch job or a video job submits thousands of images through the same batcher as Detect
and DetectStream. In one first-come line, an interactive request that arrives behind a job's
images waits for all of them, and a job can fill the line until interactive requests are
refused with UNAVAILABLE. So the batcher keeps two lines (ADR 0028):

- **interactive** (Detect, DetectStream): somebody holds a connection open for the answer;
- **background** (batch-job items, video frames): the job's owner follows progress.

When only one line has images, it has the batcher to itself (no capacity idles). When both
have, the background line gets ``background_share`` of the images taken, so a busy API slows
a job down but never stops it, and a job adds at most its share to interactive latency. Each
line has its own admission limit, so a deep job backlog never refuses an interactive image.

The pick is a credit counter (weighted round robin over images): every interactive image
taken while background images wait earns the background line ``share / (1 - share)`` of a
turn; a whole turn takes one background image. Credit is not banked while a line is empty,
so a line that was idle cannot claim a burst later.

Inside a line, users take turns: each user's images wait first come, first served, and the
line takes one image from each user with images waiting in turn (round robin over users).
One user who sends a thousand images at once therefore delays another user's single image
by one image, not a thousand; and `waiting_for` lets the batcher cap what one user may have
waiting, so a flood is refused before it fills the line for everybody.
"""

import asyncio
import enum
from collections import deque
from typing import Generic, Protocol, TypeVar


class Lane(enum.Enum):
    INTERACTIVE = "interactive"
    BACKGROUND = "background"


class Waiting(Protocol):
    """What a line holds: something that knows whether its caller still waits."""

    def abandoned(self) -> bool: ...


W = TypeVar("W", bound=Waiting)

# Above this the background line would get more than nine images in ten while callers wait:
# it would no longer be "background".
MAX_BACKGROUND_SHARE = 0.9


class _Line(Generic[W]):
    """One lane's images: first come, first served per user, users in turn."""

    def __init__(self) -> None:
        self._by_user: dict[str, deque[W]] = {}
        # Users with images waiting, the next to be served first.
        self._turns: deque[str] = deque()
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def waiting_for(self, user_id: str) -> int:
        return len(self._by_user.get(user_id, ()))

    def append(self, item: W, user_id: str) -> None:
        queue = self._by_user.get(user_id)
        if queue is None:
            queue = self._by_user[user_id] = deque()
            self._turns.append(user_id)
        queue.append(item)
        self._count += 1

    def head(self) -> W | None:
        """The image the next `popleft` takes, after dropping those whose caller gave up."""
        while self._turns:
            user_id = self._turns[0]
            queue = self._by_user[user_id]
            while queue and queue[0].abandoned():
                queue.popleft()
                self._count -= 1
            if queue:
                return queue[0]
            del self._by_user[user_id]
            self._turns.popleft()
        return None

    def popleft(self) -> W:
        """The next user's oldest image; that user goes to the back of the turns."""
        user_id = self._turns.popleft()
        queue = self._by_user[user_id]
        item = queue.popleft()
        self._count -= 1
        if queue:
            self._turns.append(user_id)
        else:
            del self._by_user[user_id]
        return item

    def drain(self) -> list[W]:
        left = [item for queue in self._by_user.values() for item in queue]
        self._by_user.clear()
        self._turns.clear()
        self._count = 0
        return left


class Lanes(Generic[W]):
    """The two lines and the rule that picks the next image from them."""

    def __init__(self, *, background_share: float) -> None:
        if not 0.0 <= background_share <= MAX_BACKGROUND_SHARE:
            raise ValueError(
                f"background_share must be between 0 and {MAX_BACKGROUND_SHARE},"
                f" not {background_share}"
            )
        self._credit_per_interactive = background_share / (1.0 - background_share)
        self._credit = 0.0
        self._lines: dict[Lane, _Line[W]] = {lane: _Line() for lane in Lane}
        self._arrived = asyncio.Event()

    def waiting(self, lane: Lane) -> int:
        """Images in ``lane``'s line, including any whose caller gave up and that the next
        pick will drop."""
        return len(self._lines[lane])

    def waiting_for(self, lane: Lane, user_id: str) -> int:
        """Images of one user in ``lane``'s line (likewise)."""
        return self._lines[lane].waiting_for(user_id)

    def put(self, item: W, lane: Lane, *, user_id: str) -> None:
        self._lines[lane].append(item, user_id)
        self._arrived.set()

    def take_nowait(self) -> W | None:
        """The next image by the sharing rule, or None when both lines are empty."""
        interactive = self._lines[Lane.INTERACTIVE].head()
        background = self._lines[Lane.BACKGROUND].head()
        if interactive is None and background is None:
            self._credit = 0.0
            self._arrived.clear()
            return None
        if interactive is None or background is None:
            self._credit = 0.0
            chosen = Lane.INTERACTIVE if interactive is not None else Lane.BACKGROUND
        elif self._credit >= 1.0:
            self._credit -= 1.0
            chosen = Lane.BACKGROUND
        else:
            self._credit += self._credit_per_interactive
            chosen = Lane.INTERACTIVE
        return self._lines[chosen].popleft()

    async def take(self) -> W:
        """The next image, waiting for one to arrive."""
        while True:
            item = self.take_nowait()
            if item is not None:
                return item
            await self._arrived.wait()

    def drain(self) -> list[W]:
        """Empty both lines (at shutdown), returning what was in them."""
        left = [item for line in self._lines.values() for item in line.drain()]
        self._arrived.clear()
        return left
