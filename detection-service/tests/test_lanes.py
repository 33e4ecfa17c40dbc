"""The micro-batcher's two lines: images a caller waits for go before job work, job work keeps
its share, a job's backlog never refuses a caller, and inside a line users take turns and
one user's flood is refused before it fills the line (ADR 0028).

The sharing rule is tested on `Lanes` alone (no server, no clock); the wiring through a real
`MicroBatcher` against the shared Triton, by the order in which batches of one image leave
when only one batch may be in flight."""

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
from prometheus_client import CollectorRegistry

from detection_service.metrics import DetectionMetrics
from detection_service.pipeline.batcher import BatchSettings, MicroBatcher
from detection_service.pipeline.header import read_header
from detection_service.pipeline.lanes import Lane, Lanes
from detection_service.pipeline.triton import ImageRequest, TritonModel
from detection_service.pipeline.types import DetectionOptions
from objectvision_common.errors import TooManyWaiting, Unavailable

INTERACTIVE, BACKGROUND = Lane.INTERACTIVE, Lane.BACKGROUND


@dataclass
class Item:
    name: str
    gave_up: bool = field(default=False)

    def abandoned(self) -> bool:
        return self.gave_up


def _fill(lanes: Lanes[Item], lane: Lane, count: int, *, user_id: str = "ann") -> None:
    prefix = "i" if lane is INTERACTIVE else "b"
    if user_id != "ann":
        prefix = f"{user_id}-"
    for number in range(count):
        lanes.put(Item(f"{prefix}{number}"), lane, user_id=user_id)


def _take_all(lanes: Lanes[Item]) -> list[str]:
    taken = []
    while (item := lanes.take_nowait()) is not None:
        taken.append(item.name)
    return taken


def test_a_lane_alone_has_the_whole_batcher_in_arrival_order():
    for lane, prefix in ((INTERACTIVE, "i"), (BACKGROUND, "b")):
        lanes: Lanes[Item] = Lanes(background_share=0.2)
        _fill(lanes, lane, 5)
        assert _take_all(lanes) == [f"{prefix}{n}" for n in range(5)]


def test_callers_go_first_and_job_work_gets_its_share_while_both_wait():
    lanes: Lanes[Item] = Lanes(background_share=0.2)
    _fill(lanes, BACKGROUND, 10)
    _fill(lanes, INTERACTIVE, 10)
    order = _take_all(lanes)
    # A share of 0.2 is one background image for every four interactive ones.
    assert order[:10] == ["i0", "i1", "i2", "i3", "b0", "i4", "i5", "i6", "i7", "b1"]
    # When the callers' line empties, job work takes everything that is left.
    assert order[10:] == ["i8", "i9", "b2", "b3", "b4", "b5", "b6", "b7", "b8", "b9"]


def test_an_even_share_alternates():
    lanes: Lanes[Item] = Lanes(background_share=0.5)
    _fill(lanes, BACKGROUND, 3)
    _fill(lanes, INTERACTIVE, 3)
    assert _take_all(lanes) == ["i0", "b0", "i1", "b1", "i2", "b2"]


def test_a_share_of_zero_gives_callers_strict_priority():
    lanes: Lanes[Item] = Lanes(background_share=0.0)
    _fill(lanes, BACKGROUND, 3)
    _fill(lanes, INTERACTIVE, 3)
    assert _take_all(lanes) == ["i0", "i1", "i2", "b0", "b1", "b2"]


def test_an_idle_job_lane_banks_no_credit_for_later():
    lanes: Lanes[Item] = Lanes(background_share=0.5)
    _fill(lanes, INTERACTIVE, 6)
    assert [lanes.take_nowait() for _ in range(4)]  # callers alone: no credit earned
    lanes.put(Item("b0"), BACKGROUND, user_id="ann")
    lanes.put(Item("b1"), BACKGROUND, user_id="ann")
    # Had the four picks above earned credit, both job images would go before i4.
    assert _take_all(lanes) == ["i4", "b0", "i5", "b1"]


def test_images_whose_caller_gave_up_are_dropped_not_sent():
    lanes: Lanes[Item] = Lanes(background_share=0.2)
    gone, kept = Item("i0", gave_up=True), Item("i1")
    lanes.put(gone, INTERACTIVE, user_id="ann")
    lanes.put(kept, INTERACTIVE, user_id="ann")
    assert lanes.waiting(INTERACTIVE) == 2
    assert _take_all(lanes) == ["i1"]


def test_users_take_turns_inside_a_line_each_in_arrival_order():
    lanes: Lanes[Item] = Lanes(background_share=0.2)
    _fill(lanes, INTERACTIVE, 5, user_id="flood")
    _fill(lanes, INTERACTIVE, 2, user_id="bob")
    assert lanes.waiting(INTERACTIVE) == 7
    assert (lanes.waiting_for(INTERACTIVE, "flood"), lanes.waiting_for(INTERACTIVE, "bob")) == (
        5,
        2,
    )
    # Bob's first image goes second, not after the flood's five.
    assert _take_all(lanes) == [
        "flood-0", "bob-0", "flood-1", "bob-1", "flood-2", "flood-3", "flood-4",
    ]  # fmt: skip
    assert lanes.waiting_for(INTERACTIVE, "flood") == 0


def test_a_user_whose_images_all_gave_up_loses_the_turn_to_the_next():
    lanes: Lanes[Item] = Lanes(background_share=0.2)
    lanes.put(Item("gone", gave_up=True), INTERACTIVE, user_id="ann")
    _fill(lanes, INTERACTIVE, 1, user_id="bob")
    assert _take_all(lanes) == ["bob-0"]


@pytest.mark.parametrize("share", [-0.1, 0.95, 1.0])
def test_a_share_outside_zero_to_nine_tenths_is_refused(share):
    with pytest.raises(ValueError, match="background_share"):
        Lanes(background_share=share)


async def test_take_waits_for_an_image_to_arrive():
    lanes: Lanes[Item] = Lanes(background_share=0.2)
    taker = asyncio.create_task(lanes.take())
    await asyncio.sleep(0)
    assert not taker.done()
    lanes.put(Item("b0"), BACKGROUND, user_id="ann")
    assert (await asyncio.wait_for(taker, timeout=5)).name == "b0"


@pytest.fixture
async def one_at_a_time(triton, bus_jpg):
    """A MicroBatcher on the shared Triton that sends batches of one image, one at a time,
    so the order in which answers arrive is the order in which images left the lanes."""
    executor = ThreadPoolExecutor(2)
    model = TritonModel(triton.grpc_url, model_name="yolov8n")
    settings = BatchSettings(
        executor=executor,
        metrics=DetectionMetrics.create(CollectorRegistry()),
        max_batch=1,
        max_delay_s=0.0,
        request_timeout_s=60.0,
        max_inflight_batches=1,
        max_queue=2,
        max_queue_per_user=2,
        background_share=0.0,
    )
    batcher = MicroBatcher(model, settings=settings)
    batcher.start()
    options = DetectionOptions(confidence=0.25, iou=0.7, max_detections=300)
    image = ImageRequest.of(bus_jpg, read_header(bus_jpg), options)
    try:
        yield batcher, image
    finally:
        await batcher.stop()
        await model.close()
        executor.shutdown()


async def test_a_caller_overtakes_job_work_and_a_full_job_lane_refuses_only_jobs(one_at_a_time):
    batcher, image = one_at_a_time
    answered: list[str] = []

    async def infer(name: str, lane: Lane, user_id: str) -> int:
        outcome = await batcher.infer(image, user_id=user_id, time_limit_s=60.0, lane=lane)
        answered.append(name)
        return len(outcome.result.rows)

    # All four are queued before the batcher's collector runs (tasks start in order; the
    # collector's wake-up comes after them): the job lane holds its limit of two, so the
    # third job image (another user's: not the per-user limit) is refused as the lane's,
    # and the caller's image still gets in.
    outcomes = await asyncio.gather(
        infer("job-1", BACKGROUND, "ann"),
        infer("job-2", BACKGROUND, "ann"),
        infer("job-3", BACKGROUND, "bob"),
        infer("caller", INTERACTIVE, "cid"),
        return_exceptions=True,
    )
    assert type(outcomes[2]) is Unavailable
    assert all(isinstance(found, int) and found >= 5 for found in (*outcomes[:2], outcomes[3]))
    assert answered == ["caller", "job-1", "job-2"]


async def test_one_users_flood_is_told_to_slow_down_while_others_get_in(one_at_a_time):
    batcher, image = one_at_a_time

    async def infer(user_id: str) -> int:
        outcome = await batcher.infer(image, user_id=user_id, time_limit_s=60.0)
        return len(outcome.result.rows)

    # Queued before the collector runs: the flood's third image exceeds what one user may
    # have waiting (2) and is refused with TooManyWaiting (429), the lane is not full.
    outcomes = await asyncio.gather(
        infer("flood"), infer("flood"), infer("flood"), return_exceptions=True
    )
    refused = outcomes[2]
    assert isinstance(refused, TooManyWaiting) and refused.retry_after_seconds >= 1
    assert "of your images are already waiting" in refused.message
    assert all(isinstance(found, int) and found >= 5 for found in outcomes[:2])
    assert await infer("bob") >= 5
