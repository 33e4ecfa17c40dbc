"""Counting lines, crossings and counts (ADR 0039), and counting zones and their counts (ADR
0042), as the contract spells them, both ways: one mapping for the servicer's replies and the
job's final event."""

from collections.abc import Iterable

from detection_service.tracking.lines import (
    CountingLine,
    CrossingDirection,
    LineCount,
    LineCrossing,
)
from detection_service.tracking.zones import CountingZone, ZoneCount
from objectvision.v1 import detection_pb2

_DIRECTIONS = {
    CrossingDirection.IN: detection_pb2.CROSSING_DIRECTION_IN,
    CrossingDirection.OUT: detection_pb2.CROSSING_DIRECTION_OUT,
}


def counting_lines(messages: Iterable[detection_pb2.CountingLine]) -> list[CountingLine]:
    return [
        CountingLine(
            name=message.name,
            start=(message.start.x, message.start.y),
            end=(message.end.x, message.end.y),
        )
        for message in messages
    ]


def counting_lines_reply(lines: Iterable[CountingLine]) -> list[detection_pb2.CountingLine]:
    return [
        detection_pb2.CountingLine(
            name=line.name,
            start=detection_pb2.Point(x=line.start[0], y=line.start[1]),
            end=detection_pb2.Point(x=line.end[0], y=line.end[1]),
        )
        for line in lines
    ]


def crossings_reply(crossings: Iterable[LineCrossing]) -> list[detection_pb2.LineCrossing]:
    return [
        detection_pb2.LineCrossing(
            line=crossing.line,
            track_id=crossing.track_id,
            class_id=crossing.class_id,
            class_name=crossing.class_name,
            direction=_DIRECTIONS[crossing.direction],
        )
        for crossing in crossings
    ]


def line_counts_reply(counts: Iterable[LineCount]) -> list[detection_pb2.LineCount]:
    return [
        detection_pb2.LineCount(
            line=count.line,
            class_id=count.class_id,
            class_name=count.class_name,
            crossed_in=count.crossed_in,
            crossed_out=count.crossed_out,
        )
        for count in counts
    ]


def counting_zones(messages: Iterable[detection_pb2.CountingZone]) -> list[CountingZone]:
    return [
        CountingZone(
            name=message.name, polygon=tuple((point.x, point.y) for point in message.polygon)
        )
        for message in messages
    ]


def counting_zones_reply(zones: Iterable[CountingZone]) -> list[detection_pb2.CountingZone]:
    return [
        detection_pb2.CountingZone(
            name=zone.name,
            polygon=[detection_pb2.Point(x=x, y=y) for x, y in zone.polygon],
        )
        for zone in zones
    ]


def zone_counts_reply(counts: Iterable[ZoneCount]) -> list[detection_pb2.ZoneCount]:
    return [
        detection_pb2.ZoneCount(
            zone=count.zone,
            class_id=count.class_id,
            class_name=count.class_name,
            visited=count.visited,
            peak=count.peak,
            mean_stay_seconds=count.mean_stay_seconds,
        )
        for count in counts
    ]
