"""A running job's estimate: the server's pace of the job since a worker last started it
(`items_per_second`) and when it should end at that pace (`estimated_completion_at`), read by
the client and said by `objectvision jobs show` and `jobs watch`'s progress line. The answers
come from a real HTTP server on a local port that stands where the gateway would;
detection-service/tests/test_jobs.py checks the estimate the service computes.
"""

from datetime import UTC, datetime, timedelta

import pytest

from objectvision_client import Job
from objectvision_client.cli import EXIT_OK, job_estimate, jobs_table, main, time_left
from objectvision_devstack.scripted_gateway import ScriptedGateway

JOB_ID = "6b1f3c2a-0000-4000-8000-0000000000e7"
JOB = f"/api/v1/detect/jobs/{JOB_ID}"


def _processing(seconds_left: float, *, per_second: float = 2.5, kind: str = "batch") -> dict:
    return {
        "job_id": JOB_ID,
        "status": "processing",
        "kind": kind,
        "total": 200,
        "processed": 100,
        "failed": 0,
        "items": [],
        "items_per_second": per_second,
        "estimated_completion_at": (
            datetime.now(UTC) + timedelta(seconds=seconds_left)
        ).isoformat(),
    }


COMPLETED = {
    "job_id": JOB_ID,
    "status": "completed",
    "total": 200,
    "processed": 200,
    "failed": 0,
    "items": [],
    "items_per_second": None,
    "estimated_completion_at": None,
}


def test_a_processing_job_reads_its_pace_and_how_long_is_left() -> None:
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    job = Job.from_json({**_processing(0), "estimated_completion_at": "2026-12-07T12:00:40Z"})
    assert job.items_per_second == 2.5
    assert job.seconds_left(now) == 40
    assert job.seconds_left(now + timedelta(minutes=5)) == 0, "overdue is not negative"
    assert job_estimate(job, now) == "about 40 s left (2.5 images/s)"
    video = Job.from_json({**_processing(0, kind="video"), "estimated_completion_at": None})
    assert video.seconds_left(now) is None and job_estimate(video, now) is None
    assert Job.from_json(COMPLETED).seconds_left(now) is None
    # A server from before estimates sends neither field.
    older = Job.from_json({k: v for k, v in COMPLETED.items() if "estimate" not in k})
    assert (older.items_per_second, older.estimated_completion_at) == (None, None)


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (0.2, "about 1 s"),
        (40.4, "about 40 s"),
        (59.4, "about 59 s"),
        (61, "about 1 min"),
        (3 * 60 + 40, "about 4 min"),
        (3600, "about 1 h"),
        (80 * 60 + 10, "about 1 h 20 min"),
    ],
)
def test_time_left_is_said_as_roughly_as_it_is_known(seconds: float, said: str) -> None:
    assert time_left(seconds) == said


def test_jobs_show_says_when_a_running_job_should_end_and_nothing_once_it_ended(
    json_gateway: ScriptedGateway, api_key: None, capsys: pytest.CaptureFixture[str]
) -> None:
    json_gateway.answers(f"GET {JOB}", (200, _processing(170, kind="video")), (200, COMPLETED))

    assert main(["--api-url", json_gateway.url, "jobs", "show", JOB_ID]) == EXIT_OK
    said = capsys.readouterr().err.splitlines()[0]
    assert said == f"Job {JOB_ID}: processing, 100/200 processed, about 3 min left (2.5 frames/s)"

    assert main(["--api-url", json_gateway.url, "jobs", "show", JOB_ID]) == EXIT_OK
    assert capsys.readouterr().err.splitlines()[0] == f"Job {JOB_ID}: completed, 200/200 processed"


def test_the_jobs_list_has_the_time_a_processing_job_has_left() -> None:
    header, running, done = jobs_table(
        [Job.from_json(_processing(170)), Job.from_json({**COMPLETED, "job_id": "j2"})]
    ).splitlines()
    assert header.split()[:7] == ["ID", "KIND", "STATUS", "DONE", "FAILED", "LEFT", "CREATED"]
    assert running.split()[1:7] == ["batch", "processing", "100/200", "0", "about", "3"]
    assert done.split()[1:6] == ["batch", "completed", "200/200", "0", "-"]


def test_jobs_watch_shows_the_estimate_while_it_waits(
    json_gateway: ScriptedGateway, api_key: None, capsys: pytest.CaptureFixture[str]
) -> None:
    running = (200, _processing(20.2, per_second=5))
    json_gateway.answers(f"GET {JOB}", running, running, (200, COMPLETED))

    assert main(["--api-url", json_gateway.url, "jobs", "watch", JOB_ID]) == EXIT_OK
    progress = capsys.readouterr().err
    assert "processing, about 20 s left (5 images/s)" in progress
    assert f"Job {JOB_ID} completed: 200 images." in progress
