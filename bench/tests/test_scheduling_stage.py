"""The scheduling stage against a real PostgreSQL: its figures come from the question asked
over the backlogs it wrote, fit the result schema, render, and leave no row behind. No timing
is asserted: the figures are reported, not judged."""

import json
from pathlib import Path

import jsonschema
import sqlalchemy as sa

from bench.report import render_markdown
from bench.stages import scheduling
from bench.tests.factories import document
from detection_service.config import DetectionSettings
from detection_service.jobs.models import jobs
from detection_service.server import runner
from objectvision_common.db import sync_url
from objectvision_devstack.pytest_plugin import Infrastructure

SCHEMA = json.loads((Path(__file__).parents[1] / "result.schema.json").read_text())


async def test_each_backlog_is_measured_recorded_rendered_and_removed(
    infrastructure: Infrastructure,
) -> None:
    runner().migrate(DetectionSettings(_env_file=None, DATABASE_URL=infrastructure.database_url))

    section = await scheduling.measure(infrastructure.database_url, backlogs=(0, 200), rounds=5)

    assert [row["pending_behind"] for row in section["rows"]] == [0, 200]
    assert all(row["calls"] == 5 and row["median_ms"] > 0 for row in section["rows"])
    assert section["rows"][0]["over_empty"] == 1.0
    whole = document([])
    whole["scheduling"] = section
    jsonschema.validate(whole, SCHEMA)
    rendered = render_markdown(whole)
    assert "## Job scheduling: the question before each job (ADR 0044)" in rendered
    assert "| 200 | 5 |" in rendered
    engine = sa.create_engine(sync_url(infrastructure.database_url))
    with engine.connect() as connection:
        left = connection.scalar(
            sa.select(sa.func.count())
            .select_from(jobs)
            .where(jobs.c.user_id.like("bench-scheduling-%"))
        )
    engine.dispose()
    assert left == 0
