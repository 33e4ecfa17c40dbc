"""The outbox stage against a real PostgreSQL and Redis: both relays carry every event, the
figures fit the result schema and render, and nothing is left behind (no scratch schema, no
stream). No timing is asserted: the figures are reported, not judged."""

import json
from pathlib import Path

import jsonschema
import sqlalchemy as sa
from redis import Redis

from bench.report import render_markdown
from bench.stages import outbox
from bench.tests.factories import document
from objectvision_common.db import sync_url
from objectvision_devstack.pytest_plugin import Infrastructure

SCHEMA = json.loads((Path(__file__).parents[1] / "result.schema.json").read_text())


async def test_both_relays_are_measured_recorded_rendered_and_cleaned_up(
    infrastructure: Infrastructure,
) -> None:
    section = await outbox.measure(infrastructure.database_url, infrastructure.redis_url, events=4)

    assert set(section["modes"]) == {"listening", "polling"}
    assert all(row["events"] == 4 and row["median_ms"] > 0 for row in section["modes"].values())
    assert section["listening_over_polling_median"] is not None
    whole = document([])
    whole["outbox"] = section
    jsonschema.validate(whole, SCHEMA)
    rendered = render_markdown(whole)
    assert "## Outbox: from commit to the events stream (ADR 0006)" in rendered
    assert "| listening | 4 |" in rendered and "| polling | 4 |" in rendered
    engine = sa.create_engine(sync_url(infrastructure.database_url))
    with engine.connect() as connection:
        schemas = connection.scalar(
            sa.text(
                "SELECT count(*) FROM information_schema.schemata"
                " WHERE schema_name LIKE 'bench_outbox_%'"
            )
        )
    engine.dispose()
    assert schemas == 0
    redis = Redis.from_url(infrastructure.redis_url)
    assert list(redis.scan_iter("bench:outbox:*")) == []
    redis.close()
