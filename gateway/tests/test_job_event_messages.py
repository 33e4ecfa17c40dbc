"""What a job's WebSocket sends for each event (gateway.routers.jobs_ws.event_message)."""

from gateway.routers.jobs_ws import event_message
from objectvision.v1 import detection_pb2, notification_pb2


def _finished(**fields: object) -> notification_pb2.Event:
    return notification_pb2.Event(
        id="event-1",
        type="job.completed",
        job_finished=notification_pb2.JobFinished(
            job_id="job-1", status="completed", total=8, processed=8, **fields
        ),
    )


def test_a_counting_video_jobs_final_message_carries_its_line_counts():
    count = detection_pb2.LineCount(
        line="gate", class_id=5, class_name="bus", crossed_in=1, crossed_out=0
    )
    message = event_message(_finished(kind="video", class_counts={"bus": 8}, line_counts=[count]))

    assert message["line_counts"] == [
        {"line": "gate", "class_id": 5, "class_name": "bus", "crossed_in": 1, "crossed_out": 0}
    ]
    assert (message["status"], message["processed"], message["class_counts"]) == (
        "completed",
        8,
        {"bus": 8},
    )


def test_a_video_job_with_zones_final_message_carries_its_zone_counts():
    count = detection_pb2.ZoneCount(
        zone="queue", class_id=0, class_name="person", visited=3, peak=2, mean_stay_seconds=4.5
    )
    message = event_message(_finished(kind="video", zone_counts=[count]))

    assert message["zone_counts"] == [
        {
            "zone": "queue",
            "class_id": 0,
            "class_name": "person",
            "visited": 3,
            "peak": 2,
            "mean_stay_seconds": 4.5,
        }
    ]


def test_a_job_that_counts_nothing_has_no_line_or_zone_counts():
    message = event_message(_finished(class_counts={"dog": 2}))
    assert (message["line_counts"], message["zone_counts"]) == ([], [])


def _progress(**fields: object) -> notification_pb2.Event:
    return notification_pb2.Event(
        id="event-2",
        type="job.progress",
        job_progress=notification_pb2.JobProgress(job_id="job-1", total=40, processed=16, **fields),
    )


def test_a_counting_video_jobs_progress_carries_its_counts_so_far_when_the_event_has_them():
    counts = notification_pb2.LiveCounts(
        line_counts=[
            detection_pb2.LineCount(
                line="gate", class_id=0, class_name="person", crossed_in=2, crossed_out=1
            )
        ],
        zone_counts=[
            detection_pb2.ZoneCount(zone="bay", class_id=0, class_name="person", visited=1, peak=1)
        ],
    )
    message = event_message(_progress(counts=counts))

    assert (message["processed"], message["total"]) == (16, 40)
    assert message["line_counts"] == [
        {"line": "gate", "class_id": 0, "class_name": "person", "crossed_in": 2, "crossed_out": 1}
    ]
    assert message["zone_counts"] == [
        {
            "zone": "bay",
            "class_id": 0,
            "class_name": "person",
            "visited": 1,
            "peak": 1,
            "mean_stay_seconds": 0.0,
        }
    ]


def test_progress_between_counts_or_of_a_job_that_counts_nothing_names_no_counts():
    message = event_message(_progress())
    assert "line_counts" not in message and "zone_counts" not in message
