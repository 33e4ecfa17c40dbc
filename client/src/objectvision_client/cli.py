"""The `objectvision` command: log in once, then detect, run batches and score them against
ground-truth labels, read history, manage API keys and signed-in sessions, manage webhooks and
follow their deliveries, and delete the account from a shell; share a stored detection or a
completed video job by link, and read one shared with you.

Results go to stdout (a table, or the API's JSON with --json); progress, confirmations and
errors go to stderr, so output can be piped. Exit status: 0 success, 1 the request or the
job failed, or a file could not be used (the message says why), 2 wrong usage (argparse's
convention: an invalid option, or a required value missing where nothing can prompt for
it), 130 interrupted.
"""

import argparse
import getpass
import json
import math
import os
import shlex
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO, TypeVar

import httpx

from objectvision_client.client import DEFAULT_API_URL, Client
from objectvision_client.credentials import CredentialStore, SavedSession
from objectvision_client.errors import ObjectVisionError
from objectvision_client.models import (
    AccountsPage,
    CountingLine,
    CountingZone,
    DetectedObject,
    DetectionResult,
    HistoryPage,
    HistorySummary,
    Job,
    JobEvaluation,
    JobsPage,
    LineCount,
    LiveFrame,
    Session,
    SharedDetection,
    SharedVideo,
    ShareLink,
    ShareLinksPage,
    TrackingEvaluation,
    VideoFacts,
    VideoFrame,
    Webhook,
    WebhookDeliveriesPage,
    WebhookDelivery,
    ZoneCount,
)
from objectvision_client.operations import (
    API_KEY_SCOPES,
    DELIVERY_STATES,
    EXPORT_FORMATS,
    JOB_KINDS,
    JOB_STATUSES,
    MAX_API_KEY_LIFETIME_DAYS,
    MAX_SHARE_LINK_DAYS,
    WEBHOOK_EVENTS,
    DetectionParams,
    share_token,
)
from objectvision_client.output import ProgressBar, format_table

API_URL_VARIABLE = "OBJECTVISION_API_URL"
API_KEY_VARIABLE = "OBJECTVISION_API_KEY"
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp"})
JOB_POLL_SECONDS = 0.5
# How often `webhooks ping --wait` looks at the test event's delivery, and for how long by
# default (a receiver that does not answer is retried for much longer than that).
DELIVERY_POLL_SECONDS = 0.5
PING_WAIT_SECONDS = 60.0
# Deliveries read per request while looking for one (the API's largest page).
DELIVERIES_PER_LOOK = 100
# The API's MAX_BATCH_FILES default: a larger folder is sent as several jobs.
MAX_FILES_PER_JOB = 100
# Commands that send no credentials: a 401 there is about the password, not the session.
PUBLIC_COMMANDS = frozenset(
    {"login", "signup", "forgot-password", "reset-password", "verify-email"}
)
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
# How long `not logged in` waits to find out whether the server is there at all.
REACHABILITY_TIMEOUT_SECONDS = 5.0


class CliError(Exception):
    """A problem to report in one line, without a traceback."""


class UsageError(CliError):
    """The command was called wrongly: exits 2, as argparse does for its own usage errors."""


N = TypeVar("N", int, float)


def _parsed(text: str, kind: Callable[[str], N], what: str) -> N:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None


def _probability(text: str) -> float:
    value = _parsed(text, float, "a number")
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


def _unsure_below(text: str) -> float:
    """--unsure-below's score: above 0 (nothing scores below 0) and at most 1."""
    value = _parsed(text, float, "a number")
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not above 0 and at most 1")
    return value


def _class_confidence(text: str) -> tuple[str, float]:
    """`person=0.6` -> ("person", 0.6): a class's own minimum score (ADR 0050)."""
    name, equals, value = text.rpartition("=")
    if not equals or not name.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not CLASS=X, e.g. person=0.6")
    score = _parsed(value, float, "a number")
    if not 0.0 < score <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} is not above 0 and at most 1")
    return name.strip(), score


def _region(text: str) -> list[tuple[float, float]]:
    """`0,0.5 1,0.5 1,1 0,1` -> [(0, 0.5), (1, 0.5), (1, 1), (0, 1)]: a region of interest's
    corners as fractions of the image (ADR 0053)."""
    corners = []
    for pair in text.split():
        x, comma, y = pair.partition(",")
        if not comma:
            raise argparse.ArgumentTypeError(f"{pair!r} is not X,Y, e.g. 0,0.5")
        corner = (_parsed(x, float, "a number"), _parsed(y, float, "a number"))
        if not all(0.0 <= value <= 1.0 for value in corner):
            raise argparse.ArgumentTypeError(
                f"{pair} is outside the image: corners are fractions of its size, 0 to 1"
            )
        corners.append(corner)
    if len(corners) < 3:
        raise argparse.ArgumentTypeError(
            f"{text!r} has {len(corners)} corners; a region has 3 or more"
        )
    return corners


def _tile_size(text: str) -> int:
    return _whole_number(text, at_least=128)


def _tile_overlap(text: str) -> float:
    value = _parsed(text, float, "a number")
    if not 0.0 < value <= 0.5:
        raise argparse.ArgumentTypeError(f"{text} is not above 0 and at most 0.5")
    return value


def _whole_number(text: str, *, at_least: int) -> int:
    value = _parsed(text, int, "a whole number")
    if value < at_least:
        raise argparse.ArgumentTypeError(f"{text} must be {at_least} or more")
    return value


def _positive_int(text: str) -> int:
    return _whole_number(text, at_least=1)


def _non_negative_int(text: str) -> int:
    return _whole_number(text, at_least=0)


def _key_lifetime_days(text: str) -> int:
    value = _whole_number(text, at_least=1)
    if value > MAX_API_KEY_LIFETIME_DAYS:
        raise argparse.ArgumentTypeError(
            f"{text} is more than {MAX_API_KEY_LIFETIME_DAYS} days: leave the option out for "
            "a key that lasts until it is revoked"
        )
    return value


def _share_link_days(text: str) -> int:
    value = _whole_number(text, at_least=1)
    if value > MAX_SHARE_LINK_DAYS:
        raise argparse.ArgumentTypeError(
            f"{text} is more than {MAX_SHARE_LINK_DAYS} days, the longest a link may work"
        )
    return value


def _class_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


LINE_SYNTAX = "NAME:X1,Y1,X2,Y2"
# Corners as comma-separated numbers like a line's ends: no character a shell treats
# specially, so the option needs no quotes (a `;` between points would end the command).
ZONE_SYNTAX = "NAME:X1,Y1,X2,Y2,X3,Y3,..."


def _named_coordinates(
    text: str, *, kind: str, syntax: str, example: str, fits: Callable[[int], bool]
) -> tuple[str, list[float]]:
    """`name:n1,n2,...` -> the name and the numbers, if `fits` takes how many there are. The
    name is what comes before the last colon, so a name may hold colons itself; the API
    judges the rest (name length and uniqueness, how many regions, whether they fit the
    picture)."""
    name, colon, numbers = text.rpartition(":")
    coordinates = numbers.split(",")
    if not colon or not name.strip() or not fits(len(coordinates)):
        raise argparse.ArgumentTypeError(f"{text!r} is not a {kind}: give {syntax}, e.g. {example}")
    values = [_parsed(value.strip(), float, "a number") for value in coordinates]
    if not all(math.isfinite(value) for value in values):
        raise argparse.ArgumentTypeError(f"{text!r}: every coordinate must be a finite number")
    return name.strip(), values


def _counting_line(text: str) -> CountingLine:
    """`gate:0,360,1280,360` -> the line named gate from (0, 360) to (1280, 360)."""
    name, (x1, y1, x2, y2) = _named_coordinates(
        text,
        kind="line",
        syntax=LINE_SYNTAX,
        example="gate:0,360,1280,360",
        fits=lambda count: count == 4,
    )
    return CountingLine(name=name, start=(x1, y1), end=(x2, y2))


def _metadata_pair(text: str) -> tuple[str, str]:
    """`camera=north-gate` -> ('camera', 'north-gate'): one pair of a job's or a detection's
    metadata (the first `=` ends the key; the server judges the rest)."""
    key, equals, value = text.partition("=")
    if not equals or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE, e.g. camera=north-gate")
    return key, value


def _metadata(ctx: "Context") -> dict[str, str] | None:
    """The --meta pairs as one mapping (None without any); a key given twice is a usage
    error, as it could only mean one of its values."""
    pairs: list[tuple[str, str]] = ctx.args.meta or []
    metadata = dict(pairs)
    if len(metadata) < len(pairs):
        repeated = next(key for key, _ in pairs if sum(k == key for k, _ in pairs) > 1)
        raise UsageError(f"--meta {repeated}=... is given twice; give each key once")
    return metadata or None


def _pairs(metadata: Mapping[str, str]) -> str:
    """Metadata as `key=value` pairs, keys sorted, as --meta takes them."""
    return ", ".join(f"{key}={value}" for key, value in sorted(metadata.items()))


def _add_metadata_column(
    headers: list[str], rows: list[list[Any]], metadata: Sequence[Mapping[str, str]]
) -> None:
    """A METADATA column on a table of jobs or detections, when one of its rows has any: a
    page without metadata keeps its width."""
    if any(metadata):
        headers.append("METADATA")
        for row, pairs in zip(rows, metadata, strict=True):
            row.append(_pairs(pairs))


def _add_metadata_option(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument(
        "--meta",
        action="append",
        type=_metadata_pair,
        metavar="KEY=VALUE",
        help=f"{help_text} (repeat for more pairs)",
    )


def _counting_zone(text: str) -> CountingZone:
    """`queue:0,0,640,0,640,200` -> the zone named queue, the triangle with corners (0, 0),
    (640, 0) and (640, 200): x,y pairs, at least three of them."""
    name, values = _named_coordinates(
        text,
        kind="zone",
        syntax=ZONE_SYNTAX,
        example="queue:0,0,640,0,640,200,0,200",
        fits=lambda count: count >= 6 and count % 2 == 0,
    )
    return CountingZone(name=name, polygon=tuple(zip(values[::2], values[1::2], strict=True)))


# Output helpers


def _print_json(value: Any, stream: TextIO) -> None:
    json.dump(value, stream, indent=2, ensure_ascii=False)
    stream.write("\n")


def _page_json(page: HistoryPage | JobsPage | AccountsPage | ShareLinksPage) -> dict[str, Any]:
    """A page for --json as the API sent it: `total`, `limit` and `offset`, and each item's
    own body (`raw`), which keeps fields this version of the client does not know."""
    return {**page.model_dump(exclude={"items"}), "items": [item.raw for item in page.items]}


def _time(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M") if value else "-"


def _class_summary(result: DetectionResult) -> str:
    return ", ".join(
        f"{name} x{count}" if count > 1 else name for name, count in result.class_counts().items()
    )


OBJECT_HEADERS = ["CLASS", "CONFIDENCE", "X1", "Y1", "X2", "Y2"]


def _object_rows(objects: Sequence[DetectedObject]) -> list[list[object]]:
    """One row per object: class, confidence and box corners; `(none)` for no object."""
    if not objects:
        return [["(none)", None, None, None, None, None]]
    return [
        [
            obj.class_name,
            f"{obj.confidence:.2f}",
            f"{obj.bbox.x1:.0f}",
            f"{obj.bbox.y1:.0f}",
            f"{obj.bbox.x2:.0f}",
            f"{obj.bbox.y2:.0f}",
        ]
        for obj in objects
    ]


def detections_table(results: Sequence[tuple[str, DetectionResult]]) -> str:
    """One row per object: the file it is in, class, confidence and box corners."""
    rows = [[file, *row] for file, result in results for row in _object_rows(result.objects)]
    return format_table(["FILE", *OBJECT_HEADERS], rows, right=(2, 3, 4, 5, 6))


def objects_table(objects: Sequence[DetectedObject]) -> str:
    """`detections_table` for objects of no file of the reader's (a shared detection's)."""
    return format_table(OBJECT_HEADERS, _object_rows(objects), right=(1, 2, 3, 4, 5))


def job_table(job: Job) -> str:
    """A job's items; for a video job with counting lines or zones, their counts below."""
    rows = [
        [
            item.filename,
            item.status,
            item.object_count if item.status == "completed" else None,
            item.detection_id or item.error,
        ]
        for item in job.items
    ]
    table = format_table(["FILE", "STATUS", "OBJECTS", "DETECTION / ERROR"], rows, right=(2,))
    return "\n\n".join([table, *counts_tables(job.video)])


def counts_tables(video: VideoFacts | None) -> list[str]:
    """A video job's line counts and zone counts, each table only if it has such regions."""
    if video is None:
        return []
    tables = [line_counts_table(video)] if video.lines else []
    return tables + ([zone_counts_table(video)] if video.zones else [])


def counts_so_far(video: VideoFacts | None) -> str:
    """A video job's counts on one line, each region over every class, as a progress line
    shows them while the job runs: `gate 3 in 1 out, queue 4 visited`; empty without
    regions."""
    if video is None:
        return ""
    parts = []
    for line in video.lines:
        crossed = [count for count in video.line_counts if count.line == line.name]
        went_in = sum(count.crossed_in for count in crossed)
        went_out = sum(count.crossed_out for count in crossed)
        parts.append(f"{line.name} {went_in} in {went_out} out")
    for zone in video.zones:
        visited = sum(count.visited for count in video.zone_counts if count.zone == zone.name)
        parts.append(f"{zone.name} {visited} visited")
    return ", ".join(parts)


Count = TypeVar("Count", bound=LineCount | ZoneCount)


def _rows_by_region(
    names: Sequence[str],
    counts: Sequence[Count],
    region: Callable[[Count], str],
    numbers: Callable[[Count], list[object]],
    nothing: list[object],
) -> list[list[object]]:
    """One row per region and class counted in it, regions in the order they were given and
    classes by name; a region with no count (yet) shows one row of `nothing`, so every region
    is there."""
    rows: list[list[object]] = []
    for name in names:
        found = sorted(
            (count for count in counts if region(count) == name), key=lambda c: c.class_name
        )
        rows.extend([name, count.class_name, *numbers(count)] for count in found)
        if not found:
            rows.append([name, None, *nothing])
    return rows


def line_counts_table(video: VideoFacts) -> str:
    """How many of each class went in and out across each line."""
    rows = _rows_by_region(
        [line.name for line in video.lines],
        video.line_counts,
        lambda count: count.line,
        lambda count: [count.crossed_in, count.crossed_out],
        [0, 0],
    )
    return format_table(["LINE", "CLASS", "IN", "OUT"], rows, right=(2, 3))


def zone_counts_table(video: VideoFacts) -> str:
    """Who of each class was in each zone: how many tracked objects visited it, the most
    inside at once, and how long a visitor stayed on average (none for a zone nobody
    entered)."""
    rows = _rows_by_region(
        [zone.name for zone in video.zones],
        video.zone_counts,
        lambda count: count.zone,
        lambda count: [count.visited, count.peak, f"{count.mean_stay_seconds:.1f} s"],
        [0, 0, None],
    )
    return format_table(["ZONE", "CLASS", "VISITED", "PEAK", "MEAN STAY"], rows, right=(2, 3, 4))


def find_images(directory: Path, *, recursive: bool) -> tuple[list[Path], list[Path]]:
    """The JPEG, PNG, WebP and BMP files in `directory` (by name), sorted, and the other files
    it skipped (so it can say so)."""
    if not directory.exists():
        raise CliError(f"{directory} does not exist")
    if not directory.is_dir():
        raise CliError(f"{directory} is a file: give the folder that holds the images")
    candidates = sorted(p for p in (directory.rglob("*") if recursive else directory.iterdir()))
    files = [path for path in candidates if path.is_file()]
    images = [path for path in files if path.suffix.lower() in IMAGE_SUFFIXES]
    return images, [path for path in files if path.suffix.lower() not in IMAGE_SUFFIXES]


def _chunks(paths: Sequence[Path], size: int) -> list[Sequence[Path]]:
    return [paths[start : start + size] for start in range(0, len(paths), size)]


def source_stem(source: str, default: str) -> str:
    """The stem of a file's name, or of a URL's last path segment (`default` when blank)."""
    return Path(urllib.parse.urlsplit(source).path if is_url(source) else source).stem or default


def annotated_path(outdir: Path, source: str, taken: set[Path]) -> Path:
    """`OUTDIR/<stem>.annotated.jpg`, numbered when two inputs share a stem."""
    stem = source_stem(source, "image")
    candidate = outdir / f"{stem}.annotated.jpg"
    number = 2
    while candidate in taken:
        candidate = outdir / f"{stem}-{number}.annotated.jpg"
        number += 1
    taken.add(candidate)
    return candidate


def describe_error(error: ObjectVisionError, api_url: str, *, credentials: str = "session") -> str:
    """The error in a sentence, with what to do about it where there is something to do.
    `credentials` says what the request was sent with: "session", "api-key" or "none"."""
    if error.status == 0:
        return (
            f"{error.message}. Is the server running? Pick another with --api-url or "
            f"{API_URL_VARIABLE}."
        )
    text = error.message.rstrip(".")
    if error.status == 401 and credentials == "session":
        text += f". Run `objectvision login --api-url {api_url}` to log in again"
    elif error.status == 401 and credentials == "api-key" and error.code == "api_key_expired":
        text += f". Create a new key (`objectvision keys create`) and put it in {API_KEY_VARIABLE}"
    elif error.status == 401 and credentials == "api-key":
        text += f". Check {API_KEY_VARIABLE}: the key may be revoked or mistyped"
    elif error.status == 403 and credentials == "api-key" and error.code == "insufficient_scope":
        text += (
            f". The key in {API_KEY_VARIABLE} lacks the scope this needs: log in and create a "
            "key that has it (`objectvision keys create NAME --scope SCOPE`)"
        )
    elif error.status == 403 and credentials == "api-key" and error.code == "session_required":
        text += (
            f". This needs a logged-in session, not an API key: unset {API_KEY_VARIABLE} and "
            f"run `objectvision login --api-url {api_url}`"
        )
    elif error.status == 429 and error.retry_after and "try again" not in text.lower():
        text += f". Try again in {error.retry_after:.0f} s"
    reference = f" (HTTP {error.status} {error.code}"
    reference += f", request id {error.request_id})" if error.request_id else ")"
    return text + reference


# Commands


@dataclass
class Context:
    args: argparse.Namespace
    api_url: str
    store: CredentialStore
    stdout: TextIO
    stderr: TextIO

    def printed_json(self, value: Any) -> bool:
        """With --json, `value` printed as the answer, and True; False leaves the answer
        for the caller to print for people."""
        if self.args.json:
            _print_json(value, self.stdout)
        return bool(self.args.json)

    def say(self, message: str) -> None:
        """A confirmation or note for the person at the terminal (stderr)."""
        print(message, file=self.stderr)

    def say_shown(
        self, page: HistoryPage | JobsPage | WebhookDeliveriesPage | AccountsPage | ShareLinksPage
    ) -> None:
        """Which rows of a paged list the table showed, and of how many, so the person knows
        whether there is more to ask for with --offset."""
        first = page.offset + 1 if page.items else 0
        self.say(f"Showing {first}-{page.offset + len(page.items)} of {page.total}.")

    def show(
        self,
        answer: Any,
        table: str,
        page: HistoryPage
        | JobsPage
        | WebhookDeliveriesPage
        | AccountsPage
        | ShareLinksPage
        | None = None,
    ) -> int:
        """The end of every listing command: with --json the answer, else the table (after
        it, for a page, which of its rows were shown); EXIT_OK, for the command to return."""
        if not self.printed_json(answer):
            print(table, file=self.stdout)
            if page is not None:
                self.say_shown(page)
        return EXIT_OK

    def public_client(self) -> Client:
        return Client(self.api_url, timeout=self.args.timeout)

    def client(self) -> Client:
        """A client with the saved session (refreshed tokens are saved back) or the API key
        from OBJECTVISION_API_KEY."""
        api_key = os.environ.get(API_KEY_VARIABLE)
        if api_key:
            return Client(self.api_url, api_key=api_key, timeout=self.args.timeout)
        saved = self.store.load(self.api_url)
        if saved is None:
            # A mistyped --api-url has no saved session either: "not logged in" would send
            # the user to log in to a server that is not there.
            self.require_reachable()
            raise CliError(
                f"not logged in to {self.api_url}: run `objectvision login` first "
                f"(or set {API_KEY_VARIABLE})"
            )
        return Client(
            self.api_url,
            tokens=saved.tokens(),
            on_tokens=lambda tokens: self.store.update_tokens(self.api_url, tokens),
            timeout=self.args.timeout,
        )

    def require_reachable(self) -> None:
        """Raise a CliError naming the URL when nothing answers HTTP there."""
        timeout = min(
            self.args.timeout or REACHABILITY_TIMEOUT_SECONDS, REACHABILITY_TIMEOUT_SECONDS
        )
        try:
            httpx.get(f"{self.api_url}/health", timeout=timeout)
        except httpx.TransportError as exc:
            raise CliError(
                f"could not reach the server at {self.api_url} ({exc or type(exc).__name__}). "
                f"Is it running? Pick another with --api-url or {API_URL_VARIABLE}."
            ) from None

    def params(self) -> DetectionParams:
        return DetectionParams(
            confidence=self.args.confidence,
            iou=self.args.iou,
            classes=self.args.classes or (),
            max_detections=self.args.max_detections,
            model=getattr(self.args, "model", None),
            class_confidence=dict(getattr(self.args, "class_confidence", None) or ()),
            tile_size=getattr(self.args, "tile_size", None),
            tile_overlap=getattr(self.args, "tile_overlap", None),
            regions=getattr(self.args, "region", None) or (),
        )


def _read_password(ctx: Context, *, confirm: bool = False) -> str:
    if ctx.args.password is not None:
        given: str = ctx.args.password
        return given
    if ctx.args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise UsageError("no password given: use --password-stdin, --password or a terminal")
    password = getpass.getpass("Password: ")
    if confirm and getpass.getpass("Repeat password: ") != password:
        raise CliError("the passwords do not match")
    return password


def _prompt(value: str | None, label: str) -> str:
    if value:
        return value
    if not sys.stdin.isatty():
        raise UsageError(f"no {label.lower()} given: pass --{label.lower()}")
    return input(f"{label}: ").strip()


def _read_code(ctx: Context, *, why: str) -> str:
    """A code from the authenticator app, or a recovery code: --code, else asked at the
    terminal. Without either, a UsageError that starts with `why`."""
    if ctx.args.code:
        given: str = ctx.args.code
        return given
    if not sys.stdin.isatty():
        raise UsageError(
            f"{why}: pass --code with the code your authenticator app shows (or a recovery code)"
        )
    return input("Authentication code (from the app, or a recovery code): ").strip()


def cmd_signup(ctx: Context) -> int:
    email = _prompt(ctx.args.email, "Email")
    name = _prompt(ctx.args.name, "Name")
    password = _read_password(ctx, confirm=True)
    with ctx.public_client() as client:
        accepted = client.signup(email, password, name)
    ctx.say(f"Sign-up accepted for {accepted.email}. Log in with `objectvision login`.")
    return EXIT_OK


def cmd_login(ctx: Context) -> int:
    email = _prompt(ctx.args.email, "Email")
    password = _read_password(ctx)
    with ctx.public_client() as client:
        try:
            tokens = client.login(email, password, ctx.args.code or None)
        except ObjectVisionError as exc:
            # The password was right; the account also wants a code from its app (ADR 0034).
            if exc.code != "second_factor_required":
                raise
            code = _read_code(ctx, why="this account has two-factor authentication on")
            tokens = client.login(email, password, code)
    ctx.store.save(ctx.api_url, SavedSession(email, tokens.access_token, tokens.refresh_token))
    ctx.say(f"Logged in to {ctx.api_url} as {email}.")
    return EXIT_OK


def cmd_forgot_password(ctx: Context) -> int:
    email = _prompt(ctx.args.email, "Email")
    with ctx.public_client() as client:
        client.forgot_password(email)
    ctx.say(
        f"If an account has the address {email}, a link to choose a new password is on its "
        "way there. Open it, or run `objectvision reset-password --token <the link>`."
    )
    return EXIT_OK


def reset_token(text: str) -> str:
    """The token, given as itself or as the whole link the email carried
    (`…/#/reset-password?token=…`, `…/#/verify-email?token=…`)."""
    text = text.strip()
    _, marker, rest = text.partition("token=")
    return urllib.parse.unquote(rest.split("&")[0]) if marker else text


def cmd_reset_password(ctx: Context) -> int:
    token = reset_token(_prompt(ctx.args.token, "Token"))
    password = _read_password(ctx, confirm=True)
    with ctx.public_client() as client:
        client.reset_password(token, password)
    ctx.say(
        "Password changed. Every session of the account has ended: "
        "log in with `objectvision login`."
    )
    return EXIT_OK


def cmd_verify_email(ctx: Context) -> int:
    token = reset_token(_prompt(ctx.args.token, "Token"))
    with ctx.public_client() as client:
        email = client.verify_email(token)
    ctx.say(f"Email address {email} verified.")
    return EXIT_OK


def cmd_resend_verification(ctx: Context) -> int:
    with ctx.client() as client:
        client.resend_verification()
    ctx.say(
        "A new verification link is on its way to your address; earlier links no longer "
        "work. Open it, or run `objectvision verify-email --token <the link>`."
    )
    return EXIT_OK


def cmd_logout(ctx: Context) -> int:
    saved = ctx.store.load(ctx.api_url)
    if saved is None:
        ctx.say(f"Not logged in to {ctx.api_url}.")
        return EXIT_OK
    try:
        with Client(ctx.api_url, tokens=saved.tokens(), timeout=ctx.args.timeout) as client:
            client.logout()
    except ObjectVisionError as exc:
        if exc.status != 401:  # 401: the session had already ended on the server.
            raise
    finally:
        ctx.store.remove(ctx.api_url)
    ctx.say(f"Logged out of {ctx.api_url}.")
    return EXIT_OK


def cmd_whoami(ctx: Context) -> int:
    with ctx.client() as client:
        user = client.me()
    if not ctx.printed_json(user.raw):
        unverified = "" if user.email_verified else ", email not verified"
        two_factor = ", two-factor on" if user.two_factor_enabled else ""
        print(f"{user.name} <{user.email}> (id {user.id}{unverified}{two_factor})", file=ctx.stdout)
        if user.pending_email:
            print(
                f"Moving to {user.pending_email} once the link mailed there is opened.",
                file=ctx.stdout,
            )
    return EXIT_OK


def cmd_account_email(ctx: Context) -> int:
    """Ask to sign in with another address; it takes the account's password, and the
    change is made only when the link mailed to the new address is opened (ADR 0033)."""
    new_email = _prompt(ctx.args.email, "Email")
    password = _read_password(ctx)
    with ctx.client() as client:
        user = client.change_email(new_email, password)
    if user.pending_email is None:
        ctx.say(f"No change of address is waiting; you sign in with {user.email}.")
    else:
        ctx.say(
            f"A link that makes {user.pending_email} your sign-in address was mailed to it. "
            f"Until it is opened you sign in with {user.email}."
        )
    return EXIT_OK


def _print_qr_code(ctx: Context, uri: str) -> None:
    """`uri` as a QR code an authenticator app can scan off the screen: only on a terminal,
    and only where `segno` is installed (the client does not need it otherwise)."""
    if not ctx.stdout.isatty():
        return
    try:
        import segno
    except ImportError:
        return
    segno.make(uri, micro=False).terminal(out=ctx.stdout, compact=True)


def _print_recovery_codes(ctx: Context, codes: Sequence[str], headline: str) -> None:
    print("\n".join(codes), file=ctx.stdout)
    ctx.say(
        f"{headline} Store these recovery codes now, somewhere other than your phone: each "
        "logs you in once in place of a code from the app, and they are not shown again."
    )


def cmd_two_factor_enable(ctx: Context) -> int:
    """Turn two-factor authentication on (ADR 0034) in its two steps: a new secret for the
    authenticator app, given the password, then the app's first code, which turns it on and
    answers the recovery codes. At a terminal one run does both; without one the run stops
    after the secret, and `enable --code CODE` takes the second step."""
    if ctx.args.code:
        with ctx.client() as client:
            try:
                codes = client.confirm_two_factor(ctx.args.code)
            except ObjectVisionError as exc:
                if exc.code != "no_two_factor_enrollment":
                    raise
                raise CliError(
                    "no secret is waiting for its first code: run `objectvision account "
                    "two-factor enable` without --code first"
                ) from None
    else:
        password = _read_password(ctx)
        with ctx.client() as client:
            enrollment = client.start_two_factor(password)
            print(f"Secret: {enrollment.secret}", file=ctx.stdout)
            print(f"URI: {enrollment.otpauth_uri}", file=ctx.stdout)
            _print_qr_code(ctx, enrollment.otpauth_uri)
            ctx.say("Scan the QR code, or add the secret, in your authenticator app.")
            if not sys.stdin.isatty():
                ctx.say(
                    "Nothing changes until you confirm with the code the app shows: "
                    "`objectvision account two-factor enable --code CODE`."
                )
                return EXIT_OK
            codes = client.confirm_two_factor(_read_code(ctx, why="no code given"))
    _print_recovery_codes(
        ctx, codes, "Two-factor authentication is on: logging in asks for a code from now on."
    )
    return EXIT_OK


def cmd_two_factor_disable(ctx: Context) -> int:
    password = _read_password(ctx)
    code = _read_code(ctx, why="no code given")
    with ctx.client() as client:
        client.disable_two_factor(password, code)
    ctx.say("Two-factor authentication is off: logging in takes the password alone again.")
    return EXIT_OK


def cmd_two_factor_recovery_codes(ctx: Context) -> int:
    password = _read_password(ctx)
    code = _read_code(ctx, why="no code given")
    with ctx.client() as client:
        codes = client.regenerate_recovery_codes(password, code)
    _print_recovery_codes(ctx, codes, "New recovery codes: the earlier ones no longer work.")
    return EXIT_OK


def cmd_account_delete(ctx: Context) -> int:
    """Delete the account this command is signed in as, and everything it stored. Asks for
    its password (as the API does) and, unless --yes, for its email typed out as the
    confirmation; without a terminal to ask on, --yes is required."""
    if not ctx.args.yes and not sys.stdin.isatty():
        raise UsageError("deleting an account cannot be undone: confirm with --yes")
    # With --yes nothing is asked but the password, and a missing one is found before any
    # request is made.
    password = _read_password(ctx) if ctx.args.yes else None
    with ctx.client() as client:
        user = client.me()
        if password is None:
            ctx.say(
                f"This deletes the account {user.email} and everything it stored: images, "
                "detections, batch and video jobs, webhooks and API keys. It cannot be undone."
            )
            typed = input("Type the account's email to confirm: ").strip()
            if typed.lower() != user.email.lower():
                raise CliError("not confirmed: the account was not deleted")
            password = _read_password(ctx)
        client.delete_account(password)
    ctx.say(
        f"Account {user.email} deleted: it can no longer log in, and its sessions and API keys "
        "no longer work. Its data is being erased; a last email to its address confirms it."
    )
    return EXIT_OK


def is_url(name: str) -> bool:
    """An http(s) URL, for the server to fetch, rather than a file to upload."""
    return urllib.parse.urlsplit(name).scheme.lower() in ("http", "https")


def cmd_detect(ctx: Context) -> int:
    """Each IMAGE is a file, uploaded, or an http(s) URL, sent as JSON for the server to fetch."""
    urls = {name for name in ctx.args.images if is_url(name)}
    files = [Path(name) for name in ctx.args.images if name not in urls]
    for path in files:
        if path.is_dir():
            raise CliError(
                f"{path} is a folder, not an image file: name the images, or send the whole "
                f"folder as a batch job with `objectvision batch {path}`"
            )
        if not path.is_file():
            raise CliError(f"{path}: no such file")
    if ctx.args.annotate and Path(ctx.args.annotate).is_file():
        raise CliError(
            f"--annotate {ctx.args.annotate} is a file: give the folder to write the images to"
        )
    redact = ctx.args.redact or []
    if redact and not ctx.args.annotate:
        raise UsageError("--redact says what --annotate's images pixelate: give --annotate too")
    metadata = _metadata(ctx)
    results: list[tuple[str, DetectionResult]] = []
    with ctx.client() as client:
        for name in ctx.args.images:
            if name in urls:
                result = client.detect_url(name, ctx.params(), metadata=metadata)
                results.append((name, result))
            else:
                result = client.detect_image(Path(name), ctx.params(), metadata=metadata)
                results.append((str(Path(name)), result))
        if ctx.args.annotate:
            outdir = Path(ctx.args.annotate)
            outdir.mkdir(parents=True, exist_ok=True)
            taken: set[Path] = set()
            for file, result in results:
                if result.detection_id is None:
                    raise CliError(f"{file}: the detection was not stored, nothing to annotate")
                target = annotated_path(outdir, file, taken)
                target.write_bytes(
                    client.detection_image(result.detection_id, annotated=True, redact=redact)
                )
                ctx.say(f"Wrote {target}" + (f" ({_redacted(redact)})" if redact else ""))
    if not ctx.printed_json([{"file": file, **result.raw} for file, result in results]):
        print(detections_table(results), file=ctx.stdout)
    for file, result in results:
        if result.cached:
            ctx.say(f"{file}: answered from the result cache (this image, model and options)")
    return EXIT_OK


def time_left(seconds: float) -> str:
    """An estimate's time left as a person reads it: "about 40 s", "about 3 min", "about 1 h
    20 min"; rounded, since the estimate is no finer than that."""
    if seconds < 59.5:
        return f"about {max(math.floor(seconds + 0.5), 1)} s"
    minutes = math.floor(seconds / 60 + 0.5)
    if minutes < 60:
        return f"about {minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"about {hours} h" + (f" {minutes} min" if minutes else "")


def job_estimate(job: Job, now: datetime) -> str | None:
    """`about 40 s left (2.1 images/s)` for a processing job with an estimate (frames/s for a
    video job); None for any other."""
    left = job.seconds_left(now)
    if left is None or job.items_per_second is None:
        return None
    unit = "frames" if job.kind == "video" else "images"
    return f"{time_left(left)} left ({job.items_per_second:.3g} {unit}/s)"


def _follow(ctx: Context, client: Client, jobs: Sequence[Job]) -> list[Job]:
    """Wait for every job with one progress bar on stderr (their images added up); one
    video job's bar also shows its line and zone counts so far."""
    label = f"job {jobs[0].job_id[:8]}" if len(jobs) == 1 else f"{len(jobs)} jobs"
    bar = ProgressBar(ctx.stderr, label=label)
    current = {job.job_id: job for job in jobs}

    def show(job: Job) -> None:
        current[job.job_id] = job
        done = sum(j.processed for j in current.values())
        total = sum(j.total for j in current.values())
        if len(current) == 1:
            so_far = counts_so_far(job.video)
            estimate = job_estimate(job, datetime.now(UTC))
            status = ", ".join(filter(None, [job.status, estimate]))
            status = f"{status}: {so_far}" if so_far else status
        else:
            status = f"{job.job_id[:8]} {job.status}"
        bar.update(done, total, status)

    try:
        return [
            client.wait_for_job(job.job_id, poll_seconds=JOB_POLL_SECONDS, on_progress=show)
            for job in jobs
        ]
    finally:
        bar.finish()


def _report_jobs(ctx: Context, jobs: Sequence[Job]) -> int:
    if not ctx.printed_json(jobs[0].raw if len(jobs) == 1 else [job.raw for job in jobs]):
        for job in jobs:
            print(job_table(job), file=ctx.stdout)
    total = sum(job.total for job in jobs)
    failed = sum(job.failed for job in jobs)
    ids = ", ".join(job.job_id for job in jobs)
    cancelled = [job for job in jobs if job.status == "cancelled"]
    if cancelled:
        done = sum(job.processed for job in cancelled)
        of = sum(job.total for job in cancelled)
        names = ", ".join(job.job_id for job in cancelled)
        raise CliError(f"job {names} was cancelled after {done} of {of} images")
    if any(job.status != "completed" for job in jobs):
        raise CliError(f"job {ids} failed: {failed} of {total} images failed")
    if failed:
        raise CliError(f"job {ids} finished, but {failed} of {total} images failed (see ERROR)")
    ctx.say(f"Job {ids} completed: {total} images.")
    return EXIT_OK


def _submit_groups(ctx: Context, client: Client, groups: Sequence[Sequence[Path]]) -> list[Job]:
    """One job per group, in order. A refusal part-way (an account at its limit of
    unfinished jobs, a quota) names the jobs already submitted, which run on, and the first
    image not sent, so that nothing is submitted twice or lost track of."""
    jobs: list[Job] = []
    for group in groups:
        try:
            jobs.append(client.submit_batch(group, ctx.params(), metadata=_metadata(ctx)))
        except ObjectVisionError:
            if jobs:
                sent = sum(job.total for job in jobs)
                ids = ", ".join(job.job_id for job in jobs)
                ctx.say(
                    f"Submitted {sent} images as job{'s' if len(jobs) > 1 else ''} {ids}; "
                    f"the rest, from {group[0]}, were not sent:"
                )
            raise
    return jobs


def cmd_batch(ctx: Context) -> int:
    directory = Path(ctx.args.directory)
    images, skipped = find_images(directory, recursive=ctx.args.recursive)
    for path in skipped:
        ctx.say(f"Skipped {path}: not a JPEG, PNG, WebP or BMP file name")
    if not images:
        raise CliError(f"no JPEG, PNG, WebP or BMP images in {directory}")
    groups = _chunks(images, ctx.args.per_job)
    with ctx.client() as client:
        jobs = _submit_groups(ctx, client, groups)
        noun = "image" if len(images) == 1 else "images"
        names = ", ".join(job.job_id for job in jobs)
        ctx.say(f"Submitted {len(images)} {noun} as job{'s' if len(jobs) > 1 else ''} {names}.")
        if not ctx.args.wait:
            if ctx.args.json:
                raw = [job.raw for job in jobs]
                _print_json(raw[0] if len(raw) == 1 else raw, ctx.stdout)
            else:
                for job in jobs:
                    print(job.job_id, file=ctx.stdout)
            ctx.say(f"Follow it with `objectvision jobs watch {jobs[0].job_id}`.")
            return EXIT_OK
        finished = _follow(ctx, client, jobs)
    return _report_jobs(ctx, finished)


VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".webm"})
FRAMES_PAGE = 1000


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} must be above 0")
    return value


def _frame_objects(frame: VideoFrame) -> str:
    """What a frame shows: each tracked object on its own with its track id and the counting
    zones it stands in (`#3 person [queue]`), by id, then the others counted by class
    (`person x2`)."""
    tracked = sorted(
        (obj.track_id, obj.class_name, obj.zones)
        for obj in frame.detections
        if obj.track_id is not None
    )
    counts: dict[str, int] = {}
    for obj in frame.detections:
        if obj.track_id is None:
            counts[obj.class_name] = counts.get(obj.class_name, 0) + 1
    return ", ".join(
        [
            *(
                f"#{track_id} {name}" + (f" [{', '.join(zones)}]" if zones else "")
                for track_id, name, zones in tracked
            ),
            *(f"{name} x{n}" if n > 1 else name for name, n in counts.items()),
        ]
    )


def video_frames_table(frames: Sequence[VideoFrame]) -> str:
    """One row per sampled frame: its index, its time and what was found in it (a tracked
    object with its track id, `#3 person`)."""
    rows: list[list[object]] = []
    for frame in frames:
        found = _frame_objects(frame)
        rows.append(
            [frame.frame_index, f"{frame.timestamp_seconds:.3f}", frame.error or found or "(none)"]
        )
    return format_table(["FRAME", "TIME (S)", "OBJECTS"], rows, right=(0, 1))


def cmd_detect_video(ctx: Context) -> int:
    """Submit a video as a job: a file, uploaded, or an http(s) URL for the server to fetch;
    with --wait, follow it, print its frames and, with --annotate, save the annotated video
    (through a `.part` file renamed once complete)."""
    source: str = ctx.args.video
    url = source if is_url(source) else None
    path = Path(source)
    if url is None and not path.is_file():
        raise CliError(f"{path}: no such file")
    if url is None and path.suffix.lower() not in VIDEO_SUFFIXES:
        ctx.say(f"Note: {path.name} is not named like an MP4, MOV or WebM file; sending it anyway")
    if ctx.args.annotate and not ctx.args.wait:
        raise UsageError("--annotate needs --wait: the annotated video exists once the job ends")
    if ctx.args.line and not ctx.args.track:
        raise UsageError("--line needs --track: only tracked objects are counted crossing lines")
    if ctx.args.zone and not ctx.args.track:
        raise UsageError("--zone needs --track: a visit and a stay are a tracked object's")
    options: dict[str, Any] = {
        "fps": ctx.args.fps,
        "every": ctx.args.every,
        "track": ctx.args.track,
        "lines": ctx.args.line,
        "zones": ctx.args.zone,
        "metadata": _metadata(ctx),
        "redact": ctx.args.redact or (),
    }
    with ctx.client() as client:
        if url is not None:
            job = client.submit_video_url(url, ctx.params(), **options)
        else:
            job = client.submit_video(path, ctx.params(), **options)
        video = job.video
        if video is not None:
            picked = f"{video.fps:g} frames/s" if video.fps else f"every {video.every}th frame"
            if video.tracked:
                picked += ", objects tracked"
            if video.lines:
                count = len(video.lines)
                picked += f", counted crossing {count} line{'s' if count > 1 else ''}"
            if video.zones:
                count = len(video.zones)
                picked += f", counted in {count} zone{'s' if count > 1 else ''}"
            # A URL's video by the name the server gave it (the URL's last path segment).
            name = (video.filename or url) if url is not None else path.name
            said = (
                f"Submitted {name} ({video.codec} {video.width}x{video.height},"
                f" {video.duration_seconds:.1f} s) as job {job.job_id}:"
                f" {video.sampled_frames} frames ({picked})."
            )
            ctx.say(" ".join(filter(None, [said, _video_redaction(video)])))
        if not ctx.args.wait:
            if not ctx.printed_json(job.raw):
                print(job.job_id, file=ctx.stdout)
            ctx.say(f"Follow it with `objectvision jobs watch {job.job_id}`.")
            return EXIT_OK
        (job,) = _follow(ctx, client, [job])
        frames: list[VideoFrame] = []
        while True:
            page = client.video_frames(job.job_id, limit=FRAMES_PAGE, offset=len(frames))
            frames.extend(page.frames)
            if not page.frames or len(frames) >= page.total:
                break
        if ctx.args.annotate and job.status == "completed":
            target = Path(ctx.args.annotate)
            if target.is_dir():
                target = target / f"{source_stem(source, 'video')}-annotated.mp4"
            partial = target.with_name(target.name + ".part")
            with partial.open("wb") as file:
                size = client.annotated_video(job.job_id, file)
            partial.replace(target)
            ctx.say(f"Wrote {target} ({_size(size)})")
    if not ctx.printed_json(
        {**job.raw, "frames": [frame.model_dump(mode="json", by_alias=True) for frame in frames]}
    ):
        print(video_frames_table(frames), file=ctx.stdout)
        for table in counts_tables(job.video):
            print(f"\n{table}", file=ctx.stdout)
    if job.status != "completed":
        if job.status == "cancelled":
            raise CliError(f"job {job.job_id} was cancelled after {len(frames)} frames")
        raise CliError(f"job {job.job_id} failed: {job.error or 'see its frames'}")
    ctx.say(f"Job {job.job_id} completed: {len(frames)} frames.")
    return EXIT_OK


def live_frame_line(frame: LiveFrame, source: str) -> str:
    """One answer of a live stream as a line: `#3 640x480 12 ms: person 4, bus 1`, then the
    crossings of its counting lines (`; crossed gate: bus #2 in`); a frame that could not be
    detected says why and names its file."""
    if frame.error is not None:
        return f"#{frame.sequence} could not be detected: {frame.error} ({source})"
    found = ", ".join(f"{name} {count}" for name, count in frame.class_counts().items())
    total_ms = frame.timings.total_ms if frame.timings is not None else 0.0
    line = f"#{frame.sequence} {frame.width}x{frame.height} {total_ms:.0f} ms: {found or 'nothing'}"
    crossed = [
        f"crossed {crossing.line}: {crossing.class_name} #{crossing.track_id} {crossing.direction}"
        for crossing in frame.crossings
    ]
    return "; ".join([line, *crossed])


def _live_sources(names: Sequence[str], ctx: Context) -> list[Path]:
    """The files to send as frames, in order: each file as named (the server judges whether
    it is an image), each folder's images by name (extracted video frames, numbered)."""
    sources: list[Path] = []
    for name in names:
        path = Path(name)
        if path.is_dir():
            images, skipped = find_images(path, recursive=False)
            for other in skipped:
                ctx.say(f"Skipped {other}: not a JPEG, PNG, WebP or BMP file name")
            if not images:
                raise CliError(f"no JPEG, PNG, WebP or BMP images in {path}")
            sources.extend(images)
        elif path.is_file():
            sources.append(path)
        else:
            raise CliError(f"{path}: no such file")
    return sources


def cmd_live(ctx: Context) -> int:
    """Send the images as the frames of one live stream (ADR 0059), in order, and print each
    answer as it comes: a line per frame, or with --json the answer's JSON, a line each (with
    `file`), so a pipe reads them while the stream runs. Files are read only as they are
    sent. Frames that could not be detected are listed like the others, and make the
    command fail once every frame has been answered."""
    if ctx.args.line and not ctx.args.track:
        raise UsageError("--line needs --track: only tracked objects are counted crossing lines")
    if ctx.args.zone and not ctx.args.track:
        raise UsageError("--zone needs --track: the zones are named on tracked objects")
    if bool(ctx.args.images) == bool(ctx.args.video):
        raise UsageError("give the images to send, or --video SOURCE, not both")
    if ctx.args.every != 1 and not ctx.args.video:
        raise UsageError("--every needs --video: it picks a video's frames")
    if ctx.args.video:
        return _live_video(ctx)
    sources = _live_sources(ctx.args.images, ctx)
    sent = _live_answers(
        ctx, (source.read_bytes() for source in sources), lambda n: str(sources[n - 1])
    )
    ctx.say(f"Detected {sent} frame{'s' if sent > 1 else ''}.")
    return EXIT_OK


def _live_video(ctx: Context) -> int:
    """`live --video`: the video's frames (every `--every`-th), each named `SOURCE#INDEX` by
    its index in the video; tracking follows the video's own frame rate unless told."""
    try:
        from objectvision_client.video_frames import VideoFrames, VideoUnreadable
    except ImportError:
        raise CliError("--video needs PyAV: pip install 'objectvision-client[video]'") from None
    try:
        with VideoFrames(ctx.args.video, every=ctx.args.every) as video:
            rate = (ctx.args.frame_rate or video.frame_rate) if ctx.args.track else None
            sent = _live_answers(
                ctx, video, lambda n: f"{ctx.args.video}#{video.indices[n - 1]}", frame_rate=rate
            )
    except VideoUnreadable as exc:
        raise CliError(str(exc)) from None
    ctx.say(f"Detected {sent} frame{'s' if sent != 1 else ''} of {ctx.args.video}.")
    return EXIT_OK


def _live_answers(
    ctx: Context,
    frames: Iterable[bytes],
    name_of: Callable[[int], str],
    *,
    frame_rate: float | None = None,
) -> int:
    """Stream `frames` and print each answer as it comes, naming frame n by `name_of(n)`; the
    frames answered. Frames that could not be detected are listed like the others, then
    make the command fail."""
    answered = failed = 0
    with ctx.client() as client:
        answers = client.live(
            frames,
            ctx.params(),
            track=ctx.args.track,
            frame_rate=frame_rate or ctx.args.frame_rate,
            lines=ctx.args.line or (),
            zones=ctx.args.zone or (),
        )
        for frame in answers:
            name = name_of(frame.sequence)
            answered += 1
            failed += frame.error is not None
            if ctx.args.json:
                text = json.dumps({"file": name, **frame.raw}, ensure_ascii=False)
            else:
                text = live_frame_line(frame, name)
            print(text, file=ctx.stdout, flush=True)
    if failed:
        raise CliError(f"{failed} of {answered} frames could not be detected")
    return answered


def cmd_jobs_watch(ctx: Context) -> int:
    with ctx.client() as client:
        jobs = _follow(ctx, client, [client.get_job(ctx.args.job_id)])
    return _report_jobs(ctx, jobs)


def _video_redaction(video: VideoFacts | None) -> str:
    """`Annotated video: person, car pixelated.` for a video job whose annotated video
    pixelates some classes (ADR 0049); empty for one that pixelates none."""
    if video is None or not video.redact:
        return ""
    return f"Annotated video: {_redacted(video.redact)}."


def cmd_jobs_show(ctx: Context) -> int:
    with ctx.client() as client:
        job = client.get_job(ctx.args.job_id)
    if not ctx.printed_json(job.raw):
        estimate = job_estimate(job, datetime.now(UTC))
        ctx.say(
            f"Job {job.job_id}: {job.status}, {job.processed}/{job.total} processed"
            + (f", {estimate}" if estimate else "")
        )
        if redaction := _video_redaction(job.video):
            ctx.say(redaction)
        if job.metadata:
            ctx.say(f"Metadata: {_pairs(job.metadata)}")
        if job.rerun_of:
            ctx.say(f"Ran again from job {job.rerun_of} (`objectvision jobs rerun`).")
        if job.class_counts:
            counted = sorted(job.class_counts.items(), key=lambda item: (-item[1], item[0]))
            ctx.say("Objects: " + ", ".join(f"{name} {count}" for name, count in counted))
        print(job_table(job), file=ctx.stdout)
    return EXIT_OK


def _left(job: Job, now: datetime) -> str | None:
    """A processing job's estimated time left ("about 3 min"), None without one."""
    seconds = job.seconds_left(now)
    return time_left(seconds) if seconds is not None else None


def jobs_table(jobs: Sequence[Job]) -> str:
    """One row per job: its id, kind, status, progress, the time a processing job has left,
    and when it was submitted; a video job's file name; its metadata when a job on the page
    has any."""
    now = datetime.now(UTC)
    rows: list[list[Any]] = [
        [
            job.job_id,
            job.kind,
            job.status,
            f"{job.processed}/{job.total}",
            job.failed,
            _left(job, now),
            _time(job.created_at),
            job.video.filename if job.video is not None else None,
        ]
        for job in jobs
    ]
    headers = ["ID", "KIND", "STATUS", "DONE", "FAILED", "LEFT", "CREATED", "VIDEO"]
    _add_metadata_column(headers, rows, [job.metadata for job in jobs])
    return format_table(headers, rows, right=(3, 4))


def cmd_jobs_list(ctx: Context) -> int:
    with ctx.client() as client:
        page = client.list_jobs(
            limit=ctx.args.limit,
            offset=ctx.args.offset,
            status=ctx.args.status,
            kind=ctx.args.kind,
            metadata=_metadata(ctx),
            rerun_of=ctx.args.rerun_of,
        )
    return ctx.show(_page_json(page), jobs_table(page.items), page)


def cmd_jobs_cancel(ctx: Context) -> int:
    """Cancel a job; cancelling one already cancelled is not an error (the API's answer is
    the same job). A completed or failed job is (HTTP 409)."""
    with ctx.client() as client:
        job = client.cancel_job(ctx.args.job_id)
    noun = "frames" if job.kind == "video" else "images"
    if not ctx.printed_json(job.raw):
        print(job.job_id, file=ctx.stdout)
    ctx.say(
        f"Job {job.job_id} is cancelled: {job.processed} of {job.total} {noun} were processed "
        "and keep their results; the rest will not be processed."
    )
    return EXIT_OK


def cmd_jobs_rerun(ctx: Context) -> int:
    """Run a job's stored images (or video) again as a new job, with what the options change
    (another --model, a --confidence); waits for it with --wait."""
    with ctx.client() as client:
        job = client.rerun_job(ctx.args.job_id, ctx.params(), metadata=_metadata(ctx))
        noun = "frames" if job.kind == "video" else "images"
        ctx.say(
            f"Submitted job {job.job_id}: the {job.total} {noun} of job {ctx.args.job_id} again,"
            f" with {job.model or 'the default model'}."
        )
        if not ctx.args.wait:
            if not ctx.printed_json(job.raw):
                print(job.job_id, file=ctx.stdout)
            ctx.say(
                f"Follow it with `objectvision jobs watch {job.job_id}`; compare the two with"
                f" `objectvision jobs compare {ctx.args.job_id} {job.job_id} LABELS`."
            )
            return EXIT_OK
        finished = _follow(ctx, client, [job])
    return _report_jobs(ctx, finished)


def cmd_history_rerun(ctx: Context) -> int:
    """Run the stored images of the detections the history's filters keep again as one batch
    job (ADR 0058), with the detection options given (--model ...); waits with --wait."""
    filters = _history_filters(ctx)
    with ctx.client() as client:
        job = client.rerun_history(ctx.params(), **filters)
        chosen = (
            f"matching {_filters_described(filters)}"
            if any(filters.values())
            else "of your history"
        )
        ctx.say(
            f"Submitted job {job.job_id}: the {job.total} stored images {chosen},"
            f" with {job.model or 'the default model'}."
        )
        if not ctx.args.wait:
            if not ctx.printed_json(job.raw):
                print(job.job_id, file=ctx.stdout)
            ctx.say(f"Follow it with `objectvision jobs watch {job.job_id}`.")
            return EXIT_OK
        finished = _follow(ctx, client, [job])
    return _report_jobs(ctx, finished)


def cmd_jobs_delete(ctx: Context) -> int:
    """Delete a finished job and what it stored; a pending or processing one is refused
    (HTTP 409) until it is cancelled."""
    with ctx.client() as client:
        client.delete_job(ctx.args.job_id)
    ctx.say(f"Job {ctx.args.job_id} deleted, with its images, results and any video.")
    return EXIT_OK


def _score(value: float | None) -> str | None:
    """A score as the tables show it; None (the API's null: nothing to score) prints "-"."""
    return None if value is None else f"{value:.3f}"


def _threshold(value: float) -> float:
    """A confidence threshold rounded down to 4 decimals, as the server rounds the suggested
    ones: the detections it was reached with still pass it."""
    return math.floor(value * 10_000) / 10_000


def evaluation_summary(evaluation: JobEvaluation) -> str:
    """What was scored, and the job's scores: mAP at the three IoU thresholds, then precision
    and recall at IoU 0.5, then the best F1 and the threshold that reaches it (when there is
    one)."""
    confidence = (
        f", detections at confidence {evaluation.min_confidence:g} or more"
        if evaluation.min_confidence
        else ""
    )
    best = (
        [
            f"Best F1 {_score(evaluation.f1)} at confidence "
            f"{_threshold(evaluation.f1_confidence):g} or more"
        ]
        if evaluation.f1 is not None and evaluation.f1_confidence is not None
        else []
    )
    return "\n".join(
        [
            f"Job {evaluation.job_id}: {evaluation.model or 'unknown model'}, "
            f"{_count(evaluation.images, evaluation.unit)} scored against "
            f"{evaluation.labels_format} labels{confidence}",
            f"Objects: {evaluation.ground_truth} labelled, {evaluation.detections} detected",
            f"mAP50-95 {_score(evaluation.map50_95)}  mAP50 {_score(evaluation.map50)}  "
            f"mAP75 {_score(evaluation.map75)}",
            f"Precision {_score(evaluation.precision) or '-'}  "
            f"Recall {_score(evaluation.recall) or '-'}  (IoU 0.5)",
            *best,
            *_by_size(evaluation),
            *_tracking(evaluation.tracking),
        ]
    )


def _tracking(tracking: TrackingEvaluation | None) -> list[str]:
    """A tracked video job's MOTA, IDF1 and the rest on two lines; none without them."""
    if tracking is None:
        return []
    return [
        f"Tracking: MOTA {_score(tracking.mota)}  IDF1 {_score(tracking.idf1)}  "
        f"MOTP {_score(tracking.motp) or '-'}  ID switches {tracking.id_switches}  "
        f"fragmentations {tracking.fragmentations}",
        f"Identities: {tracking.ground_truth_tracks} labelled, {tracking.mostly_tracked} mostly"
        f" tracked, {tracking.partially_tracked} partly, {tracking.mostly_lost} mostly lost"
        f" ({tracking.misses} missed, {tracking.false_positives} false)",
    ]


def _by_size(evaluation: JobEvaluation) -> list[str]:
    """`mAP50-95 by size: small 0.120 (15), medium 0.451 (70), large -` (labelled objects in
    brackets; "-" for a size nothing labelled is of); none from a server without sizes."""
    if not evaluation.sizes:
        return []
    sizes = ", ".join(
        f"{row.size} {_score(row.map50_95)} ({row.ground_truth})"
        if row.map50_95 is not None
        else f"{row.size} -"
        for row in evaluation.sizes
    )
    return [f"mAP50-95 by size: {sizes}"]


def evaluation_table(evaluation: JobEvaluation) -> str:
    """One row per class with ground truth or detections; `(none)` when there is none. A
    tracked video job's evaluation adds each class's MOTA and IDF1."""
    tracked = evaluation.tracking is not None
    headers = ["CLASS", "GROUND TRUTH", "DETECTIONS", "AP50-95", "AP50", "P", "R", "F1", "CONF"]
    headers += ["MOTA", "IDF1"] if tracked else []
    rows: list[list[object]] = []
    for row in evaluation.classes:
        cells: list[object] = [
            row.class_name,
            row.ground_truth,
            row.detections,
            _score(row.ap50_95),
            _score(row.ap50),
            _score(row.precision),
            _score(row.recall),
            _score(row.f1),
            None if row.f1_confidence is None else f"{_threshold(row.f1_confidence):.4f}",
        ]
        if tracked:
            cells += (
                [_score(row.tracking.mota), _score(row.tracking.idf1)]
                if row.tracking
                else [None, None]
            )
        rows.append(cells)
    return format_table(
        headers,
        rows or [["(none)", *[None] * (len(headers) - 1)]],
        right=tuple(range(1, len(headers))),
    )


# The most mistakes `jobs evaluate` lists; `--json` has every cell.
CONFUSIONS_SHOWN = 10


def evaluation_confusions(evaluation: JobEvaluation) -> str | None:
    """The confusion matrix's mistakes, the cells whose labelled and detected classes differ,
    in the answer's order (most frequent first), at most `CONFUSIONS_SHOWN` of them and then
    how many more; "(nothing)" for a missed object's detection or a detection's missing label.
    None when there is no mistake (or the server sent no cells)."""
    mistakes = [cell for cell in evaluation.confusions if cell.actual != cell.predicted]
    if not mistakes:
        return None
    table = format_table(
        ["LABELLED", "DETECTED", "COUNT"],
        [
            [cell.actual or "(nothing)", cell.predicted or "(nothing)", cell.count]
            for cell in mistakes[:CONFUSIONS_SHOWN]
        ],
        right=(2,),
    )
    more = len(mistakes) - CONFUSIONS_SHOWN
    return "\n".join(["Confusions", table, *([f"(+{more} more)"] if more > 0 else [])])


def evaluation_suggestion(evaluation: JobEvaluation) -> str | None:
    """The per-class thresholds for the best F1 as `detect`, `batch` and `video` take them
    (`--class-confidence CLASS=X`, repeated), quoted for a shell so that the line can be
    pasted; None when no class has one."""
    if not evaluation.suggested_class_confidence:
        return None
    options = " ".join(
        f"--class-confidence {shlex.quote(f'{name}={value:g}')}"
        for name, value in evaluation.suggested_class_confidence.items()
    )
    return f"Suggested: {options}"


def evaluation_curve(evaluation: JobEvaluation, class_name: str | None) -> str:
    """The precision, recall and F1 of each threshold that changes what is kept, over every
    class (`class_name` None) or one class's, the best F1 marked: the trade-off behind the
    suggested threshold, to pick another from."""
    if class_name is None:
        title, curve = "Curve (every class)", evaluation.curve
    else:
        rows = {row.class_name: row for row in evaluation.classes}
        if class_name not in rows:
            known = ", ".join(name for name, row in rows.items() if row.curve) or "none"
            raise CliError(f"no class {class_name!r} in this evaluation; with a curve: {known}")
        title, curve = f"Curve ({class_name})", rows[class_name].curve
    if not curve:
        return f"{title}\n(no curve: nothing of it was both labelled and detected)"
    # On a tie, the higher threshold, as the operating point takes.
    best = max(curve, key=lambda point: (point.f1, point.confidence))
    table = format_table(
        ["CONF", "P", "R", "F1", ""],
        [
            [
                f"{point.confidence:.2f}",
                _score(point.precision),
                _score(point.recall),
                _score(point.f1),
                "best F1" if point is best else "",
            ]
            for point in curve
        ],
        right=(0, 1, 2, 3),
    )
    return f"{title}\n{table}"


def evaluation_warnings(evaluation: JobEvaluation) -> list[str]:
    """What in the labels did not line up with the job: each lowers or skews the scores, so
    the person should know before trusting them."""
    warnings = []
    if evaluation.images_without_labels:
        warnings.append(
            f"{_count(evaluation.images_without_labels, evaluation.unit)} of the job had no"
            " labels: scored as holding no object"
        )
    if evaluation.frames_outside_labels:
        warnings.append(
            f"{_count(evaluation.frames_outside_labels, 'sampled frame')} fell outside the"
            " frames the labels cover: not scored"
        )
    if evaluation.unmatched_label_count:
        listed = ", ".join(evaluation.unmatched_labels)
        more = evaluation.unmatched_label_count - len(evaluation.unmatched_labels)
        listed += f" and {more} more" if more > 0 else ""
        warnings.append(
            f"{evaluation.unmatched_label_count} label "
            f"{'entry' if evaluation.unmatched_label_count == 1 else 'entries'} named no "
            f"{evaluation.unit} of the job: {listed}"
        )
    if evaluation.unknown_classes:
        warnings.append(
            "classes the model does not have, not scored: " + ", ".join(evaluation.unknown_classes)
        )
    return warnings


def _labels_file(argument: str) -> Path:
    labels = Path(argument)
    if labels.is_dir():
        raise CliError(
            f"{labels} is a folder: give a zip of YOLO labels, a COCO JSON file or (for a"
            " video job) MOTChallenge's gt.txt"
        )
    return labels


def cmd_jobs_evaluate(ctx: Context) -> int:
    """Score a finished batch or video job against ground-truth labels (ADR 0054, 0056): the
    scores (a tracked video's MOTA and IDF1 too), the per-class table, the commonest mistakes
    (labelled one class, detected as another or not at all) and the per-class thresholds for
    the best F1 (as options to paste into `detect` or `batch`) on stdout, what did not line
    up with the job as warnings on stderr."""
    labels = _labels_file(ctx.args.labels)
    with ctx.client() as client:
        evaluation = client.evaluate_job(ctx.args.job_id, labels)
    if ctx.printed_json(evaluation.raw):
        return EXIT_OK
    print(evaluation_summary(evaluation), file=ctx.stdout)
    print(f"\n{evaluation_table(evaluation)}", file=ctx.stdout)
    confusions = evaluation_confusions(evaluation)
    if confusions:
        print(f"\n{confusions}", file=ctx.stdout)
    suggestion = evaluation_suggestion(evaluation)
    if suggestion:
        print(f"\n{suggestion}", file=ctx.stdout)
    if ctx.args.curve is not None:
        print(f"\n{evaluation_curve(evaluation, ctx.args.curve or None)}", file=ctx.stdout)
    for warning in evaluation_warnings(evaluation):
        ctx.say(f"Warning: {warning}")
    return EXIT_OK


def _delta(a: float | None, b: float | None) -> str | None:
    """B's score less A's, signed ("+0.012", "-0.100", "0.000"); None where either is."""
    if a is None or b is None:
        return None
    difference = round(b - a, 3)
    return f"{difference:+.3f}" if difference else "0.000"


def evaluations_compared(a: JobEvaluation, b: JobEvaluation) -> str:
    """Two evaluations against the same labels side by side: the overall scores, mAP50-95
    by size, the tracking scores where both tracked (two tracker settings or sampling rates
    on one video) and each class's AP50-95, with B less A; the model of each job in the
    header."""
    overall = [
        ("mAP50-95", a.map50_95, b.map50_95),
        ("mAP50", a.map50, b.map50),
        ("mAP75", a.map75, b.map75),
        ("Precision", a.precision, b.precision),
        ("Recall", a.recall, b.recall),
        ("Best F1", a.f1, b.f1),
    ]
    sizes_b = {row.size: row for row in b.sizes}
    overall += [
        (f"mAP50-95 {row.size}", row.map50_95, sizes_b[row.size].map50_95)
        for row in a.sizes
        if row.size in sizes_b
    ]
    if a.tracking and b.tracking:
        overall += [
            ("MOTA", a.tracking.mota, b.tracking.mota),
            ("IDF1", a.tracking.idf1, b.tracking.idf1),
            ("MOTP", a.tracking.motp, b.tracking.motp),
        ]
        counted = [
            ("ID switches", a.tracking.id_switches, b.tracking.id_switches),
            ("Mostly tracked", a.tracking.mostly_tracked, b.tracking.mostly_tracked),
            ("Mostly lost", a.tracking.mostly_lost, b.tracking.mostly_lost),
        ]
    else:
        counted = []
    classes_a = {row.class_name: row for row in a.classes}
    classes_b = {row.class_name: row for row in b.classes}
    names = sorted(
        classes_a.keys() | classes_b.keys(),
        key=lambda name: (classes_a.get(name) or classes_b[name]).class_id,
    )
    per_class = [
        (
            f"{name} AP50-95",
            classes_a[name].ap50_95 if name in classes_a else None,
            classes_b[name].ap50_95 if name in classes_b else None,
        )
        for name in names
    ]
    table = format_table(
        ["", "A", "B", "B - A"],
        [
            *([label, _score(x), _score(y), _delta(x, y)] for label, x, y in overall),
            *([label, x, y, f"{y - x:+d}" if y != x else "0"] for label, x, y in counted),
            *([label, _score(x), _score(y), _delta(x, y)] for label, x, y in per_class),
        ],
        right=(1, 2, 3),
    )
    header = [
        f"A: job {a.job_id} ({a.model or 'unknown model'}, {a.detections} detections)",
        f"B: job {b.job_id} ({b.model or 'unknown model'}, {b.detections} detections)",
        f"Scored against the same {a.labels_format} labels: {a.ground_truth} objects in"
        f" {_count(a.images, a.unit)}",
    ]
    return "\n".join([*header, "", table])


def cmd_jobs_compare(ctx: Context) -> int:
    """Score two finished jobs against the same labels (ADR 0054, 0056) and show them side
    by side: two models, or two settings, on the same pictures or video. Refused when the two
    were not scored on the same images (frames) and objects: their numbers would not
    compare."""
    labels = _labels_file(ctx.args.labels)
    with ctx.client() as client:
        a = client.evaluate_job(ctx.args.job_a, labels)
        b = client.evaluate_job(ctx.args.job_b, labels)
    if ctx.printed_json({"a": a.raw, "b": b.raw}):
        return EXIT_OK
    if (a.images, a.ground_truth) != (b.images, b.ground_truth):
        raise CliError(
            f"the jobs were scored on different pictures ({_count(a.images, a.unit)} and"
            f" {a.ground_truth} labelled objects, against {_count(b.images, b.unit)} and"
            f" {b.ground_truth}): submit the same {a.unit}s to both (a video at the same"
            " sampling)"
        )
    print(evaluations_compared(a, b), file=ctx.stdout)
    return EXIT_OK


def cmd_models(ctx: Context) -> int:
    """The models the server serves, the default marked: what --model accepts."""
    with ctx.client() as client:
        models = client.models()
    rows = [
        [
            model.name + (" (default)" if model.default else ""),
            model.version,
            model.precision,
            model.device,
            model.input_size,
            len(model.classes),
            "ready" if model.ready else model.state.lower(),
        ]
        for model in models
    ]
    header = ["MODEL", "VERSION", "PRECISION", "DEVICE", "INPUT", "CLASSES", "STATE"]
    return ctx.show(
        [model.__dict__ | {"classes": list(model.classes)} for model in models],
        format_table(header, rows, right=(4, 5)),
    )


def cmd_usage(ctx: Context) -> int:
    """Images detected this month against the quota, then per day."""
    with ctx.client() as client:
        usage = client.usage(days=ctx.args.days)
    if ctx.printed_json(usage.raw):
        return EXIT_OK
    month = usage.month_start.strftime("%Y-%m")
    if usage.monthly_quota is None:
        allowance = "no quota"
    else:
        held = f", {usage.held_images:,} held by unfinished jobs" if usage.held_images else ""
        allowance = f"quota {usage.monthly_quota:,}, {usage.remaining or 0:,} left{held}"
    print(
        f"{month}: {usage.month_images:,} images ({allowance}); the count starts again on"
        f" {usage.renews_on.isoformat()} (UTC)",
        file=ctx.stdout,
    )
    if usage.days:
        rows = [[day.date.isoformat(), day.calls, day.jobs, day.images] for day in usage.days]
        print(
            format_table(["DATE", "CALLS", "JOBS", "IMAGES"], rows, right=(1, 2, 3)),
            file=ctx.stdout,
        )
    return EXIT_OK


def cmd_retention(ctx: Context) -> int:
    """How long the account's finished jobs and detections outside jobs are kept."""
    with ctx.client() as client:
        retention = client.retention()
    if ctx.printed_json(retention.raw):
        return EXIT_OK
    if retention.days:
        period = f"deleted once older than {retention.days:,} days"
    else:
        period = "kept until deleted"
    source = "set for this account" if retention.custom else "the deployment's default"
    print(
        f"Finished jobs and detections outside jobs are {period} ({source})",
        file=ctx.stdout,
    )
    return EXIT_OK


def _history_filters(ctx: Context) -> dict[str, Any]:
    """--class, --since, --until, --meta, --name and --unsure-below as the client's history
    filters (`history`, `export`)."""
    args = ctx.args
    return {
        "class_name": args.class_name,
        "since": args.since,
        "until": args.until,
        "metadata": _metadata(ctx),
        "filename": args.name,
        "confidence_below": getattr(args, "unsure_below", None),
    }


def summary_line(summary: HistorySummary) -> str:
    """`12 detections, 40 objects: person 30, bus 10` (classes as the server orders them)."""
    line = f"{summary.detections} detection{'' if summary.detections == 1 else 's'}, "
    line += f"{summary.objects} object{'' if summary.objects == 1 else 's'}"
    classes = ", ".join(f"{name} {count}" for name, count in summary.class_counts.items())
    return f"{line}: {classes}" if classes else line


def cmd_history(ctx: Context) -> int:
    """The history page as a table, a METADATA column when a detection on it has any; with
    --summary, what the filters keep counted instead."""
    if ctx.args.summary:
        with ctx.client() as client:
            summary = client.history_summary(**_history_filters(ctx))
        return ctx.show(summary.raw, summary_line(summary))
    with ctx.client() as client:
        page = client.history(limit=ctx.args.limit, offset=ctx.args.offset, **_history_filters(ctx))
    headers = ["ID", "CREATED", "FILE", "OBJECTS", "CLASSES"]
    rows: list[list[Any]] = [
        [
            item.detection_id,
            _time(item.created_at),
            item.filename,
            len(item.objects),
            _class_summary(item),
        ]
        for item in page.items
    ]
    _add_metadata_column(headers, rows, [item.metadata for item in page.items])
    table = format_table(headers, rows, right=(3,))
    return ctx.show(_page_json(page), table, page)


def _count(number: int, word: str) -> str:
    return f"{number} {word}{'' if number == 1 else 's'}"


def _filters_described(filters: Mapping[str, Any]) -> str:
    """`metadata camera=test-rig, until 2026-12-01 00:00:00`: the history filters given, in
    words, for a question about what they keep."""
    parts = []
    if filters["class_name"]:
        parts.append(f"class {filters['class_name']}")
    if filters["filename"]:
        parts.append(f"file name containing {filters['filename']!r}")
    if filters["confidence_below"] is not None:
        parts.append(f"an object scoring below {filters['confidence_below']:g}")
    if filters["metadata"]:
        parts.append(f"metadata {_pairs(filters['metadata'])}")
    parts += [f"{bound} {filters[bound]}" for bound in ("since", "until") if filters[bound]]
    return ", ".join(parts)


def cmd_history_image(ctx: Context) -> int:
    """`history image ID -o FILE`: a stored detection's image, its boxes drawn, or with
    --original as it was uploaded; --redact pixelates those classes (ADR 0049), and the file
    is then a JPEG either way."""
    args = ctx.args
    target = Path(args.output)
    if target.is_dir():
        raise CliError(f"-o {target} is a folder: give the file to write")
    redact = tuple(args.redact or ())
    with ctx.client() as client:
        image = client.detection_image(
            args.detection_id, annotated=not args.original, redact=redact
        )
    target.write_bytes(image)
    which = "the upload without boxes" if args.original else "the image with its boxes"
    pixelated = f", {', '.join(redact)} pixelated" if redact else ""
    ctx.say(f"Wrote {which} to {target} ({_size(len(image))}{pixelated}).")
    return EXIT_OK


def cmd_history_delete(ctx: Context) -> int:
    """`history delete ID` deletes that detection; `history delete` with filters (or --all)
    deletes every detection they keep, a call at a time while the API says there are more.
    The filtered form asks first, with the count, unless --yes; without a terminal to ask on,
    --yes is required (as `account delete` does)."""
    args = ctx.args
    filters = _history_filters(ctx)
    filtered = any(filters.values())
    if args.detection_id is not None:
        if filtered or args.everything:
            raise UsageError(
                "give a detection's ID or filters (--class, --since, --until, --meta, --name,"
                " --unsure-below, --all), not both"
            )
        with ctx.client() as client:
            client.delete_detection(args.detection_id)
        ctx.say(f"Detection {args.detection_id} deleted, with its image.")
        return EXIT_OK
    if filtered and args.everything:
        raise UsageError("--all deletes the whole history: leave out the filters, or --all")
    if not filtered and not args.everything:
        raise UsageError(
            "give a detection's ID, or filters (--class, --since, --until, --meta, --name) to "
            "delete every detection they keep; --all deletes the whole history"
        )
    if not args.yes and not sys.stdin.isatty():
        raise UsageError("deleting detections cannot be undone: confirm with --yes")
    what = "in your history" if args.everything else f"matching {_filters_described(filters)}"
    with ctx.client() as client:
        if not args.yes:
            matching = client.history_summary(**filters).detections
            if matching == 0:
                ctx.say(f"No detections {what}: nothing to delete.")
                return EXIT_OK
            typed = input(
                f"Delete {'all ' if args.everything else ''}{_count(matching, 'detection')} "
                f"{what}, with their images? This cannot be undone. [y/N] "
            )
            if typed.strip().lower() not in ("y", "yes"):
                raise CliError("not confirmed: nothing was deleted")
        deleted = 0
        while True:
            deletion = client.delete_history(everything=args.everything, **filters)
            deleted += deletion.deleted
            # A call that deleted nothing cannot be followed by one that does better.
            if not deletion.more or not deletion.deleted:
                break
            if ctx.stderr.isatty():
                ctx.say(f"Deleted {deleted} so far; deleting the rest...")
    kept = deletion.kept_in_unfinished_jobs
    ctx.printed_json({"deleted": deleted, "kept_in_unfinished_jobs": kept, "more": deletion.more})
    if deleted == 1:
        ctx.say("Deleted 1 detection with its image.")
    elif deleted or kept:
        ctx.say(f"Deleted {deleted} detections{' with their images' if deleted else ''}.")
    else:
        ctx.say(f"No detections {what}: nothing deleted.")
    if kept == 1:
        ctx.say(
            f"Kept 1 detection {what}: its job is still pending or processing. Cancel the job "
            "or wait for it to finish, then delete again."
        )
    elif kept:
        ctx.say(
            f"Kept {kept} detections {what}: their jobs are still pending or processing. Cancel "
            "the jobs or wait for them to finish, then delete again."
        )
    if deletion.more:
        ctx.say("More detections match than were deleted: run the command again.")
    return EXIT_OK


def _key_scopes(scopes: Sequence[str]) -> str:
    return "all" if set(scopes) == set(API_KEY_SCOPES) else ", ".join(scopes)


def _key_status(revoked_at: datetime | None, expires_at: datetime | None) -> str:
    if revoked_at:
        return "revoked"
    if expires_at and expires_at <= datetime.now(UTC):
        return "expired"
    return "active"


# `objectvision accounts ACTION USER_ID`: what each action changes (ADR 0032).
ACCOUNT_ACTIONS: dict[str, dict[str, bool]] = {
    "suspend": {"active": False},
    "restore": {"active": True},
    "promote": {"admin": True},
    "demote": {"admin": False},
}


def cmd_accounts_list(ctx: Context) -> int:
    """An admin looks accounts up by part of their email, or by id."""
    with ctx.client() as client:
        page = client.list_accounts(ctx.args.query, limit=ctx.args.limit, offset=ctx.args.offset)
    rows = [
        [
            account.id,
            account.email,
            "active" if account.is_active else "suspended",
            "admin" if account.is_admin else "-",
            _time(account.created_at),
        ]
        for account in page.items
    ]
    table = format_table(["ID", "EMAIL", "STATE", "ROLE", "CREATED"], rows)
    return ctx.show(_page_json(page), table, page)


def cmd_accounts(ctx: Context) -> int:
    """An admin suspends, restores, promotes or demotes an account."""
    with ctx.client() as client:
        account = client.set_account_status(
            ctx.args.user_id, **ACCOUNT_ACTIONS[ctx.args.accounts_command]
        )
    if not ctx.printed_json(account.raw):
        state = "active" if account.is_active else "suspended"
        role = "an admin" if account.is_admin else "not an admin"
        ctx.say(f"Account {account.email} ({account.id}) is {state}, {role}.")
    return EXIT_OK


def cmd_keys_create(ctx: Context) -> int:
    with ctx.client() as client:
        key = client.create_api_key(
            ctx.args.name, scopes=ctx.args.scope, expires_in_days=ctx.args.expires_in_days
        )
    if not ctx.printed_json(key.raw):
        expiry = f"expires {_time(key.expires_at)}" if key.expires_at else "never expires"
        ctx.say(
            f"API key {key.name!r} created (id {key.id}; scopes: {_key_scopes(key.scopes)}; "
            f"{expiry}). Copy it now; it is not shown again:"
        )
        print(key.secret, file=ctx.stdout)
    return EXIT_OK


def cmd_keys_list(ctx: Context) -> int:
    with ctx.client() as client:
        keys = client.list_api_keys()
    rows = [
        [
            key.id,
            key.name,
            f"{key.prefix}...",
            _key_scopes(key.scopes),
            _time(key.created_at),
            _time(key.last_used_at),
            _time(key.expires_at) if key.expires_at else "never",
            _key_status(key.revoked_at, key.expires_at),
        ]
        for key in keys
    ]
    headers = ["ID", "NAME", "PREFIX", "SCOPES", "CREATED", "LAST USED", "EXPIRES", "STATUS"]
    return ctx.show([key.raw for key in keys], format_table(headers, rows))


def cmd_keys_revoke(ctx: Context) -> int:
    with ctx.client() as client:
        client.revoke_api_key(ctx.args.key_id)
    ctx.say(f"API key {ctx.args.key_id} revoked.")
    return EXIT_OK


# How much of a session's id `sessions list` shows; `sessions end` takes it back.
SESSION_ID_SHOWN = 8
# Where a long User-Agent is cut in the table (--json has it whole).
USER_AGENT_SHOWN = 40


def _shortened(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 3] + "..."


def sessions_table(sessions: Sequence[Session]) -> str:
    """One row per signed-in session: the start of its id (enough for `sessions end`), when
    and where the login was, and which one this command is using."""
    rows = [
        [
            session.id[:SESSION_ID_SHOWN],
            _time(session.started_at),
            _time(session.last_active_at),
            session.client_ip or None,
            _shortened(session.user_agent, USER_AGENT_SHOWN) or None,
            "yes" if session.second_factor else "no",
            "this one" if session.current else "",
        ]
        for session in sessions
    ]
    headers = ["ID", "STARTED", "LAST ACTIVE", "IP", "USER AGENT", "2FA", "CURRENT"]
    return format_table(headers, rows)


def cmd_sessions_list(ctx: Context) -> int:
    with ctx.client() as client:
        sessions = client.sessions()
    return ctx.show([session.raw for session in sessions], sessions_table(sessions))


def listed_session(sessions: Sequence[Session], wanted: str) -> Session:
    """The session whose id is `wanted` or starts with it, as `sessions list` shows them."""
    prefix = wanted.strip().lower()
    matches = [session for session in sessions if prefix and session.id.startswith(prefix)]
    if len(matches) > 1:
        raise CliError(
            f"{len(matches)} sessions have ids starting with {wanted!r}: give more of it"
        )
    if not matches:
        raise CliError(
            f"none of your signed-in sessions has the id {wanted!r}: `objectvision sessions "
            "list` shows them"
        )
    return matches[0]


def cmd_sessions_end(ctx: Context) -> int:
    """Ends a session given by its id or the start of it, as `sessions list` shows it. Ending
    the one this command uses is a logout: the client forgets the tokens, and so the saved
    session goes."""
    with ctx.client() as client:
        session = listed_session(client.sessions(), ctx.args.session_id)
        client.end_session(session)
    if session.current:
        ctx.say(f"Session {session.id} ended. It was this one: logged out of {ctx.api_url}.")
    else:
        ctx.say(f"Session {session.id} ended: its tokens no longer work.")
    return EXIT_OK


def cmd_sessions_end_others(ctx: Context) -> int:
    with ctx.client() as client:
        ended = client.end_other_sessions()
    others = "session" if ended == 1 else "sessions"
    ctx.say(f"Ended {ended} other {others}; this one stays logged in.")
    return EXIT_OK


def webhook_state(hook: Webhook) -> str:
    """Whether events are delivered to the webhook, who stopped them if not (its owner, or
    the service because its deliveries kept failing), and its deliveries dead-lettered in a
    row when there are any."""
    state = "enabled" if hook.enabled else f"disabled ({hook.disabled_reason or 'unknown'})"
    if hook.consecutive_failures:
        state += f", {hook.consecutive_failures} failed in a row"
    return state


def _webhook_events(hook: Webhook) -> str:
    return ", ".join(hook.events) or "all job events"


def webhooks_table(hooks: Sequence[Webhook]) -> str:
    """One row per webhook: its URL, events and state, when it was made and with what."""
    rows = [
        [
            hook.id,
            hook.url,
            _webhook_events(hook),
            webhook_state(hook),
            _time(hook.created_at),
            # A webhook made with an API key goes when the key is revoked or expires.
            f"API key {hook.api_key_id}" if hook.api_key_id else "session",
        ]
        for hook in hooks
    ]
    return format_table(["ID", "URL", "EVENTS", "STATE", "CREATED", "MADE WITH"], rows)


def cmd_webhooks_list(ctx: Context) -> int:
    with ctx.client() as client:
        hooks = client.list_webhooks()
    return ctx.show([hook.raw for hook in hooks], webhooks_table(hooks))


def cmd_webhooks_update(ctx: Context) -> int:
    """Change a webhook's URL or events, or disable or enable it; what is not given stays."""
    events: list[str] | None = [] if ctx.args.all_events else ctx.args.event
    if ctx.args.url is None and events is None and ctx.args.enabled is None:
        raise UsageError(
            "nothing to change: give --url, --event, --all-events, --enable or --disable"
        )
    with ctx.client() as client:
        hook = client.update_webhook(
            ctx.args.webhook_id, url=ctx.args.url, events=events, enabled=ctx.args.enabled
        )
    if not ctx.printed_json(hook.raw):
        ctx.say(
            f"Webhook {hook.id} for {hook.url}: {webhook_state(hook)}; "
            f"events: {_webhook_events(hook)}."
        )
    if ctx.args.enabled is False:
        ctx.say(
            "Its events are recorded as dead deliveries, and not sent, until it is enabled "
            f"again (`objectvision webhooks update {hook.id} --enable`)."
        )
    elif ctx.args.enabled:
        ctx.say(
            "Events missed while it was disabled can be sent now: `objectvision webhooks "
            f"deliveries {hook.id} --state dead` lists them, `objectvision webhooks redeliver "
            f"{hook.id} DELIVERY_ID` sends one."
        )
    return EXIT_OK


def webhook_deliveries_table(deliveries: Sequence[WebhookDelivery]) -> str:
    """One row per delivery: its event, where it stands, the last attempt's HTTP status and
    error, and when a pending one is tried next."""
    rows = [
        [
            delivery.id,
            _time(delivery.created_at),
            delivery.event_type,
            delivery.state,
            delivery.attempts,
            delivery.last_status_code,
            delivery.last_error,
            _time(delivery.next_attempt_at) if delivery.state == "pending" else None,
        ]
        for delivery in deliveries
    ]
    headers = ["ID", "CREATED", "EVENT", "STATE", "ATTEMPTS", "HTTP", "LAST ERROR", "NEXT ATTEMPT"]
    return format_table(headers, rows, right=(4, 5))


def cmd_webhooks_deliveries(ctx: Context) -> int:
    with ctx.client() as client:
        page = client.list_webhook_deliveries(
            ctx.args.webhook_id, state=ctx.args.state, limit=ctx.args.limit, offset=ctx.args.offset
        )
    return ctx.show(page.raw, webhook_deliveries_table(page.items), page)


def cmd_webhooks_rotate_secret(ctx: Context) -> int:
    keep_hours: float = ctx.args.keep_previous_hours
    with ctx.client() as client:
        rotated = client.rotate_webhook_secret(
            ctx.args.webhook_id, keep_previous_seconds=round(keep_hours * 3600)
        )
    if not ctx.printed_json(rotated.raw):
        kept = (
            f"the old one also signs until {rotated.previous_secret_expires_at:%Y-%m-%d %H:%M} UTC"
            if rotated.previous_secret_expires_at
            else "the old one no longer signs"
        )
        ctx.say(f"New signing secret for webhook {rotated.id} (shown only now); {kept}.")
        print(rotated.secret, file=ctx.stdout)
    return EXIT_OK


def find_delivery(client: Client, webhook_id: str, delivery_id: str) -> WebhookDelivery:
    """One of the webhook's deliveries, looked for newest first, page by page."""
    offset = 0
    while True:
        page = client.list_webhook_deliveries(webhook_id, limit=DELIVERIES_PER_LOOK, offset=offset)
        for delivery in page.items:
            if delivery.id == delivery_id:
                return delivery
        offset += len(page.items)
        if not page.items or offset >= page.total:
            raise CliError(f"webhook {webhook_id} has no delivery {delivery_id} any more")


def delivery_outcome(delivery: WebhookDelivery) -> str:
    """How a delivery went, or goes so far, in a sentence."""
    code = delivery.last_status_code
    tries = "attempt" if delivery.attempts == 1 else "attempts"
    if delivery.state == "delivered":
        answered = f"HTTP {code}" if code is not None else "a success"
        return f"delivered: the receiver answered {answered} ({delivery.attempts} {tries})"
    why = delivery.last_error or (f"HTTP {code}" if code is not None else "no answer")
    if delivery.state == "dead":
        return f"not delivered, given up after {delivery.attempts} {tries}: {why}"
    if delivery.attempts == 0:
        return "not tried yet"
    return f"{delivery.attempts} {tries} so far, the last failed: {why}"


def _wait_for_delivery(
    client: Client, delivery: WebhookDelivery, seconds: float
) -> WebhookDelivery:
    """Poll until `delivery` is delivered or dead; a CliError after `seconds`."""
    deadline = time.monotonic() + seconds
    while delivery.state == "pending":
        if time.monotonic() >= deadline:
            raise CliError(
                f"the test event's delivery {delivery.id} is still pending after {seconds:g} s "
                f"({delivery_outcome(delivery)}); it is retried for a while yet: `objectvision "
                f"webhooks deliveries {delivery.webhook_id}` shows how it goes"
            )
        time.sleep(DELIVERY_POLL_SECONDS)
        delivery = find_delivery(client, delivery.webhook_id, delivery.id)
    return delivery


def cmd_webhooks_ping(ctx: Context) -> int:
    """Send the webhook a test event; with --wait, say how its delivery went (exit 1 when it
    was given up, or still pending when the wait ends)."""
    with ctx.client() as client:
        queued = client.ping_webhook(ctx.args.webhook_id)
        wait_seconds: float | None = ctx.args.wait_seconds
        if not ctx.args.wait and wait_seconds is None:
            if not ctx.printed_json(queued.raw):
                ctx.say(f"Test event queued for webhook {queued.webhook_id}: delivery {queued.id}.")
                print(queued.id, file=ctx.stdout)
            return EXIT_OK
        ctx.say(f"Test event queued as delivery {queued.id}; waiting for the receiver...")
        delivery = _wait_for_delivery(client, queued, wait_seconds or PING_WAIT_SECONDS)
    if not ctx.printed_json(delivery.raw):
        print(delivery.id, file=ctx.stdout)
    if delivery.state == "dead":
        raise CliError(f"test event {delivery_outcome(delivery)}")
    ctx.say(f"Test event {delivery_outcome(delivery)}.")
    return EXIT_OK


def cmd_webhooks_redeliver(ctx: Context) -> int:
    with ctx.client() as client:
        try:
            queued = client.redeliver(ctx.args.webhook_id, ctx.args.delivery_id)
        except ObjectVisionError as exc:
            if exc.code != "webhook_disabled":
                raise
            raise CliError(
                f"webhook {ctx.args.webhook_id} is disabled: enable it with `objectvision "
                f"webhooks update {ctx.args.webhook_id} --enable`, then redeliver"
            ) from exc
    if not ctx.printed_json(queued.raw):
        ctx.say(
            f"Event {queued.event_id} ({queued.event_type}) queued for redelivery "
            f"as delivery {queued.id}."
        )
        print(queued.id, file=ctx.stdout)
    return EXIT_OK


def share_link_state(link: ShareLink) -> str:
    """Whether the link shows what it shares: revoked, expired, active, or unavailable (the
    server says it is not active for another reason, such as a suspended account)."""
    if link.revoked_at:
        return "revoked"
    if link.expires_at <= datetime.now(UTC):
        return "expired"
    return "active" if link.active else "unavailable"


def share_links_table(links: Sequence[ShareLink]) -> str:
    """One row per link: its id (for `share revoke`), the detection it shows, whether it
    works, how often it was read, when it ends, the classes its image pixelates (`-`: none)
    and the start of its token. A JOB column after DETECTION when a link on the page shows a
    video job (ADR 0052; its DETECTION is `-`, as a detection's link's JOB is): a page of
    detections' links keeps its width."""
    rows: list[list[Any]] = [
        [
            link.id,
            link.detection_id,
            share_link_state(link),
            link.views,
            _time(link.expires_at),
            ",".join(link.redact) or "-",
            f"{link.token_prefix}...",
        ]
        for link in links
    ]
    headers = ["ID", "DETECTION", "STATE", "VIEWS", "EXPIRES", "REDACT", "PREFIX"]
    if any(link.job_id for link in links):
        headers.insert(2, "JOB")
        for row, link in zip(rows, links, strict=True):
            row.insert(2, link.job_id)
    return format_table(headers, rows, right=(headers.index("VIEWS"),))


def _shown_by(link: ShareLink) -> str:
    """`video job 7f3e...` or `detection 3f6c...`: what a link shows, for a message."""
    return f"video job {link.job_id}" if link.job_id else f"detection {link.detection_id}"


def _redacted(classes: Sequence[str]) -> str:
    """`person, car pixelated`: what a redacted image hides, for a message."""
    return f"{', '.join(classes)} pixelated"


def cmd_share_create(ctx: Context) -> int:
    """Share a stored detection, or a completed video job with --job: the link's URL and
    token on stdout, shown only this once. With --redact, a detection's link's image always
    shows those classes' objects pixelated."""
    args = ctx.args
    if args.detection_id and args.job_id:
        raise UsageError("a link shows one thing: give DETECTION_ID or --job JOB_ID, not both")
    if not (args.detection_id or args.job_id):
        raise UsageError("give the DETECTION_ID to share, or --job JOB_ID for a video job")
    if args.job_id and args.redact:
        raise UsageError(
            "--redact is for a detection's link: a video job's annotated video is shown as the "
            "job drew it (submit the video with `detect-video --redact` to pixelate classes)"
        )
    with ctx.client() as client:
        created = client.create_share_link(
            args.detection_id,
            job_id=args.job_id,
            expires_in_days=args.days,
            redact=args.redact or (),
        )
    if not ctx.printed_json(created.raw):
        if created.job_id:
            shown = "the job's annotated video and what it counted"
        elif created.redact:
            shown = (
                f"the detection's objects and image ({_redacted(created.redact)}, boxed or not; "
                "only the objects the model found are covered)"
            )
        else:
            shown = "the detection's objects and image"
        ctx.say(
            f"Share link {created.id} created for {_shown_by(created)}: anyone holding it sees "
            f"{shown} until {_time(created.expires_at)} unless you revoke it first. The token "
            "is shown only this once; copy it now:"
        )
        print(f"URL: {created.url}", file=ctx.stdout)
        print(f"Token: {created.token}", file=ctx.stdout)
    ctx.say(f"Stop it at any time with `objectvision share revoke {created.id}`.")
    return EXIT_OK


def cmd_share_list(ctx: Context) -> int:
    with ctx.client() as client:
        page = client.list_share_links(
            detection_id=ctx.args.detection_id,
            job_id=ctx.args.job_id,
            limit=ctx.args.limit,
            offset=ctx.args.offset,
        )
    return ctx.show(_page_json(page), share_links_table(page.items), page)


def cmd_share_revoke(ctx: Context) -> int:
    """Revoke a link; revoking one already revoked is not an error (the API answers the same
    link)."""
    with ctx.client() as client:
        link = client.revoke_share_link(ctx.args.link_id)
    if not ctx.printed_json(link.raw):
        print(link.id, file=ctx.stdout)
    ctx.say(
        f"Share link {link.id} is revoked: it no longer shows {_shown_by(link)} "
        f"(viewed {_count(link.views, 'time')})."
    )
    return EXIT_OK


def _found(counts: Mapping[str, int], total: int) -> str:
    """`5 objects (person x4, bus)`: how many were found and of which classes."""
    classes = ", ".join(f"{name} x{count}" if count > 1 else name for name, count in counts.items())
    return _count(total, "object") + (f" ({classes})" if classes else "")


def _by_model(model: str | None, version: str | None) -> str:
    """` by yolov8n 1`, or nothing when the answer names no model."""
    named = " ".join(part for part in (model, version) if part)
    return f" by {named}" if named else ""


def shared_summary(shared: SharedDetection) -> str:
    """`810x1080 image, 5 objects (person x4, bus), found by yolov8n 1 on 2026-12-06 17:40;
    the link works until 2026-12-13 17:40`."""
    found = _found(shared.class_counts(), len(shared.objects))
    by = _by_model(shared.model, shared.model_version)
    return (
        f"{shared.width}x{shared.height} image, {found}, found{by} on {_time(shared.detected_at)};"
        f" the link works until {_time(shared.expires_at)}"
    )


def shared_video_summary(shared: SharedVideo) -> str:
    """`1280x720 mp4 video (h264), 12.5 s, 375 frames at 30 frames/s; 75 sampled (6 frames/s,
    objects tracked), 14 objects (person x10, car x4) found by yolov8n 1, completed on
    2026-12-06 17:40; the link works until 2026-12-13 17:40`."""
    video = shared.video
    if video.fps:
        picked = [f"{video.fps:g} frames/s"]
    else:
        picked = [f"every {video.every}th frame"] if video.every else []
    if video.tracked:
        picked.append("objects tracked")
    sampling = f" ({', '.join(picked)})" if picked else ""
    counts = shared.class_counts()
    found = _found(counts, sum(counts.values()))
    by = _by_model(shared.model, shared.model_version)
    completed = f", completed on {_time(shared.completed_at)}" if shared.completed_at else ""
    return (
        f"{video.width}x{video.height} {video.container} video ({video.codec}), "
        f"{video.duration_seconds:.1f} s, {_count(video.frame_count, 'frame')} at "
        f"{video.frame_rate:g} frames/s; {video.sampled_frames} sampled{sampling}, {found}"
        f"{f' found{by}' if by else ''}{completed}; the link works until "
        f"{_time(shared.expires_at)}"
    )


def shared_counts_table(shared: SharedVideo) -> str:
    """The objects a shared video job found per class, most first; `(none)` for none."""
    rows: list[list[object]] = [[name, count] for name, count in shared.class_counts().items()]
    return format_table(["CLASS", "OBJECTS"], rows or [["(none)", None]], right=(1,))


def _save_shared_video(ctx: Context, client: Client, token: str, target: Path) -> None:
    """The link's annotated video to `target`, through a `.part` file renamed once complete,
    so a broken download never looks like a whole one."""
    partial = target.with_name(target.name + ".part")
    try:
        with partial.open("wb") as file:
            size = client.shared_video(token, file)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    ctx.say(f"Wrote the annotated video to {target} ({_size(size)}).")


def cmd_share_show(ctx: Context) -> int:
    """What a share link shows, read with its token alone: no saved session or API key is
    needed, nor sent. A detection's objects, and with --image (or -o) its image too (boxes
    drawn, or --original); a video job's facts and counts (ADR 0052), and with --video (or
    -o) its annotated video."""
    args = ctx.args
    try:
        token = share_token(args.token)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.original and not (args.image or args.output):
        raise UsageError(
            "--original says which image --image writes: give --image FILE (or -o FILE) too"
        )
    # One of them at most (argparse's group): where to write the image or the video.
    chosen = args.image or args.video or args.output
    target = Path(chosen) if chosen else None
    if target is not None and target.is_dir():
        option = "--image" if args.image else "--video" if args.video else "--output"
        raise CliError(f"{option} {target} is a folder: give the file to write")
    with ctx.public_client() as client:
        shown = client.shared(token)
        if isinstance(shown, SharedVideo):
            if args.image:
                raise CliError(
                    "this share link shows a video job, which has no image: write its annotated "
                    "video with --video FILE (or -o FILE)"
                )
            if args.original:
                raise CliError(
                    "--original is for a detection's image: this share link shows a video job, "
                    "whose annotated video is shown only as the job drew it"
                )
            if not ctx.printed_json(shown.raw):
                ctx.say(f"Shared video: {shared_video_summary(shown)}.")
                if redaction := _video_redaction(shown.video):
                    ctx.say(redaction)
                print(shared_counts_table(shown), file=ctx.stdout)
                for table in counts_tables(shown.video):
                    print(f"\n{table}", file=ctx.stdout)
            if target is not None:
                _save_shared_video(ctx, client, token, target)
            return EXIT_OK
        if args.video:
            raise CliError(
                "this share link shows a detection, which has no video: write its image with "
                "--image FILE (or -o FILE)"
            )
        if not ctx.printed_json(shown.raw):
            ctx.say(f"Shared detection: {shared_summary(shown)}.")
            print(objects_table(shown.objects), file=ctx.stdout)
        if target is not None:
            image = client.shared_image(token, annotated=not args.original)
            target.write_bytes(image)
            # A link made with `redact` pixelates the image without boxes too (ADR 0049), and
            # what it shares does not say so: "without boxes", never "as uploaded".
            which = "the image without boxes" if args.original else "the image with its boxes"
            ctx.say(f"Wrote {which} to {target} ({_size(len(image))}).")
    return EXIT_OK


def _when(text: str) -> datetime:
    """An ISO 8601 time for --since/--until; without a zone the API takes it as UTC."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time (e.g. 2026-12-04 or 2026-12-04T18:30:00Z)"
        ) from None


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / 1024 / 1024:.1f} MiB"


def cmd_export(ctx: Context) -> int:
    """Download an export to --output (default: the server's file name, here), through a
    `.part` file renamed once complete, so a broken download never looks like a whole one."""
    args = ctx.args
    filters = _history_filters(ctx)
    if args.job_id and any(filters.values()):
        raise UsageError(
            "--job exports the whole job: leave out --class, --since, --until, --meta, --name"
            " and --unsure-below"
        )
    if args.wait and not args.job_id:
        raise UsageError("--wait waits for a job: give it with --job")
    what = f"job {args.job_id}" if args.job_id else "history"
    with ctx.client() as client:
        if args.wait:
            job = _follow(ctx, client, [client.get_job(args.job_id)])[0]
            if job.status == "failed" and not any(item.detection_id for item in job.items):
                ctx.say(f"Job {job.job_id} failed: every image failed; the export is empty.")
        if args.output == "-":
            exported = client.export(
                sys.stdout.buffer,
                format=args.format,
                job_id=args.job_id,
                **filters,
            )
            sys.stdout.buffer.flush()
            ctx.say(f"Wrote the {args.format} export of {what} ({_size(exported.size)}).")
            return EXIT_OK
        target = Path(args.output) if args.output else None
        if target is not None and target.is_dir():
            raise CliError(f"--output {target} is a folder: give the file to write")
        folder = target.parent if target is not None else Path.cwd()
        partial = folder / f".objectvision-export-{os.getpid()}.part"
        interactive = ctx.stderr.isatty()

        def progress(size: int) -> None:
            if interactive:
                ctx.stderr.write(f"\rDownloading the {args.format} export: {_size(size)}   ")
                ctx.stderr.flush()

        try:
            with partial.open("wb") as file:
                exported = client.export(
                    file,
                    format=args.format,
                    job_id=args.job_id,
                    on_progress=progress,
                    **filters,
                )
            if interactive:
                ctx.stderr.write("\n")
            if target is None:
                target = folder / (exported.filename or f"objectvision-export.{args.format}")
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
    ctx.say(f"Saved the {args.format} export of {what} to {target} ({_size(exported.size)}).")
    if args.json:
        _print_json(
            {"file": str(target), "content_type": exported.content_type, "size": exported.size},
            ctx.stdout,
        )
    else:
        print(target, file=ctx.stdout)
    return EXIT_OK


# Parser


def _add_output_choice(parser: argparse.ArgumentParser, *, table: bool = False) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--json", action="store_true", help="print the API's JSON")
    if table:
        group.add_argument("--table", action="store_true", help="print a table (the default)")


def _add_detection_params(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--confidence", type=_probability, metavar="X", help="minimum score, 0 to 1"
    )
    parser.add_argument("--iou", type=_probability, metavar="X", help="NMS overlap, 0 to 1")
    parser.add_argument(
        "--classes", type=_class_list, metavar="A,B", help="only these classes (names or ids)"
    )
    parser.add_argument(
        "--max-detections", type=_positive_int, metavar="N", help="at most N objects per image"
    )
    parser.add_argument(
        "--class-confidence",
        action="append",
        type=_class_confidence,
        metavar="CLASS=X",
        help="this class's own minimum score, above 0 and at most 1, in place of --confidence "
        "(repeat for more classes)",
    )
    parser.add_argument(
        "--tile-size",
        type=_tile_size,
        metavar="PIXELS",
        help="also detect in overlapping tiles of this side (128 to 4096), for small objects "
        "in large images; each tile is one more inference",
    )
    parser.add_argument(
        "--tile-overlap",
        type=_tile_overlap,
        metavar="X",
        help="the share of a tile's side its neighbours cover, above 0 and at most 0.5 "
        "(default 0.2; with --tile-size)",
    )
    parser.add_argument(
        "--region",
        action="append",
        type=_region,
        metavar="'X,Y X,Y X,Y ...'",
        help="keep only objects standing in this polygon, corners as fractions of the image "
        "(e.g. '0,0.5 1,0.5 1,1 0,1', the lower half); repeat for more regions",
    )
    parser.add_argument(
        "--model",
        metavar="NAME",
        help="the model to run (`objectvision models`; default: the server's)",
    )


def _add_redact_option(parser: argparse.ArgumentParser, what: str) -> None:
    """--redact CLASS, repeatable (ADR 0049): the classes whose objects an image pixelates."""
    parser.add_argument("--redact", action="append", metavar="CLASS", help=what)


def _add_credentials(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--email", help="the account's email (prompted when left out)")
    _add_password_options(parser)


def _add_password_options(parser: argparse.ArgumentParser) -> None:
    secret = parser.add_mutually_exclusive_group()
    secret.add_argument(
        "--password", help="the password (visible to other local users; prefer the prompt)"
    )
    secret.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )


def _add_code_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--code", help=f"{what} (prompted for at a terminal when left out)", metavar="CODE"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="objectvision",
        description="Detect objects in images with the ObjectVision API.",
        epilog="Exit status: 0 success, 1 the request or job failed, 2 wrong usage. "
        f"Sessions are saved in $XDG_CONFIG_HOME/objectvision/credentials.json; "
        f"{API_KEY_VARIABLE} uses an API key instead.",
    )
    parser.add_argument(
        "--api-url",
        default=os.environ.get(API_URL_VARIABLE) or DEFAULT_API_URL,
        help=f"the API's base URL (default: ${API_URL_VARIABLE} or {DEFAULT_API_URL})",
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, metavar="SECONDS", help="per-request timeout"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    signup = commands.add_parser("signup", help="create an account")
    _add_credentials(signup)
    signup.add_argument("--name", help="your name (prompted when left out)")
    signup.set_defaults(handler=cmd_signup)

    login = commands.add_parser("login", help="log in and save the session")
    _add_credentials(login)
    _add_code_option(
        login,
        "for an account with two-factor authentication: the code its authenticator app "
        "shows, or a recovery code",
    )
    login.set_defaults(handler=cmd_login)

    forgot = commands.add_parser(
        "forgot-password", help="email yourself a link to choose a new password"
    )
    forgot.add_argument("--email", help="the account's email (prompted when left out)")
    forgot.set_defaults(handler=cmd_forgot_password)

    reset = commands.add_parser(
        "reset-password", help="choose a new password with the emailed link's token"
    )
    reset.add_argument(
        "--token", help="the token, or the whole link, from the email (prompted when left out)"
    )
    _add_password_options(reset)
    reset.set_defaults(handler=cmd_reset_password)

    verify = commands.add_parser(
        "verify-email", help="confirm your email address with the emailed link's token"
    )
    verify.add_argument(
        "--token", help="the token, or the whole link, from the email (prompted when left out)"
    )
    verify.set_defaults(handler=cmd_verify_email)

    commands.add_parser(
        "resend-verification", help="email yourself a new link that confirms your address"
    ).set_defaults(handler=cmd_resend_verification)

    commands.add_parser("logout", help="end the saved session").set_defaults(handler=cmd_logout)

    whoami = commands.add_parser("whoami", help="show the logged-in account")
    _add_output_choice(whoami)
    whoami.set_defaults(handler=cmd_whoami)

    account = commands.add_parser("account", help="manage the logged-in account")
    account_commands = account.add_subparsers(
        dest="account_command", required=True, metavar="ACTION"
    )
    delete_account = account_commands.add_parser(
        "delete", help="delete the account and everything it stored (cannot be undone)"
    )
    delete_account.add_argument(
        "--yes", action="store_true", help="do not ask for confirmation (the password still is)"
    )
    _add_password_options(delete_account)
    delete_account.set_defaults(handler=cmd_account_delete)
    change_email = account_commands.add_parser(
        "email",
        help="sign in with another address, once the link mailed to it is opened "
        "(your own address withdraws a waiting change)",
    )
    change_email.add_argument("--email", help="the new address (prompted when left out)")
    _add_password_options(change_email)
    change_email.set_defaults(handler=cmd_account_email)
    two_factor = account_commands.add_parser(
        "two-factor",
        help="turn two-factor authentication (a code from an authenticator app at every "
        "login) on or off, or renew its recovery codes",
    )
    two_factor_commands = two_factor.add_subparsers(
        dest="two_factor_command", required=True, metavar="ACTION"
    )
    enable = two_factor_commands.add_parser(
        "enable",
        help="print a secret (and its QR code) for your authenticator app, then turn it on "
        "with the app's first code",
    )
    _add_password_options(enable)
    _add_code_option(
        enable,
        "the app's first code for the secret an earlier `enable` printed: turns it on, "
        "with no password asked",
    )
    enable.set_defaults(handler=cmd_two_factor_enable)
    for action, summary, handler in (
        ("disable", "turn it off (with the password and a code)", cmd_two_factor_disable),
        (
            "recovery-codes",
            "print new recovery codes; the earlier ones stop working",
            cmd_two_factor_recovery_codes,
        ),
    ):
        command = two_factor_commands.add_parser(action, help=summary)
        _add_password_options(command)
        _add_code_option(command, "a code from the authenticator app, or a recovery code")
        command.set_defaults(handler=handler)

    detect = commands.add_parser("detect", help="detect objects in one or more images")
    detect.add_argument(
        "images",
        nargs="+",
        metavar="IMAGE",
        help="an image file, or an http(s) URL the server fetches the image from",
    )
    _add_output_choice(detect, table=True)
    detect.add_argument(
        "--annotate", metavar="OUTDIR", help="also save each image with its boxes drawn (JPEG)"
    )
    _add_redact_option(
        detect,
        "with --annotate: pixelate this class's objects in the saved images (a name or id; "
        "repeat for more). Only the objects found are covered",
    )
    _add_detection_params(detect)
    _add_metadata_option(detect, "keep this pair with each stored detection (its `metadata`)")
    detect.set_defaults(handler=cmd_detect)

    batch = commands.add_parser("batch", help="detect every image in a folder as one job")
    batch.add_argument("directory", metavar="DIR")
    batch.add_argument("-r", "--recursive", action="store_true", help="include subfolders")
    batch.add_argument("--wait", action="store_true", help="wait for the job, showing progress")
    batch.add_argument(
        "--per-job",
        type=_positive_int,
        default=MAX_FILES_PER_JOB,
        help=f"images per job; larger folders become several jobs (default {MAX_FILES_PER_JOB})",
    )
    _add_metadata_option(batch, "keep this pair with the job (its `metadata`)")
    _add_output_choice(batch)
    _add_detection_params(batch)
    batch.set_defaults(handler=cmd_batch)

    video = commands.add_parser(
        "detect-video",
        help="detect objects in a video (MP4, MOV, WebM), a file or an http(s) URL, as a job",
    )
    video.add_argument(
        "video",
        metavar="VIDEO",
        help="a video file, or an http(s) URL the server fetches the video from",
    )
    sampling = video.add_mutually_exclusive_group()
    sampling.add_argument(
        "--fps", type=_positive_float, metavar="X", help="sample X frames per second (default 1)"
    )
    sampling.add_argument(
        "--every", type=_positive_int, metavar="N", help="sample every N-th frame instead"
    )
    video.add_argument(
        "--track",
        action="store_true",
        help="follow objects from frame to frame: each gets a track id (`#3 person`); "
        "sample fast (e.g. --every 1) to track well",
    )
    video.add_argument(
        "--line",
        action="append",
        type=_counting_line,
        metavar=LINE_SYNTAX,
        help="with --track: count the objects crossing the line from (X1,Y1) to (X2,Y2), in "
        "video pixels (repeat for more lines); seen from the start looking to the end, "
        "crossing from right to left is `in`, the other way `out`",
    )
    video.add_argument(
        "--zone",
        action="append",
        type=_counting_zone,
        metavar=ZONE_SYNTAX,
        help="with --track: name the zone each object stands in (the bottom centre of its box "
        "is inside) and count who was in it: a polygon of 3 to 32 corners, X,Y pairs in video "
        "pixels in drawing order, all comma-separated, e.g. queue:0,0,640,0,640,200,0,200 "
        "(repeat for more zones); prints how many visited, the peak at once and the mean stay",
    )
    video.add_argument(
        "--wait", action="store_true", help="wait for the job, then print every sampled frame"
    )
    video.add_argument(
        "--annotate",
        metavar="PATH",
        help="with --wait: save the annotated video (MP4) to PATH (a file, or a folder)",
    )
    _add_redact_option(
        video,
        "pixelate this class's objects in every frame of the job's annotated video (a name or "
        "id; repeat for more). Only the objects found are covered",
    )
    _add_metadata_option(video, "keep this pair with the job (its `metadata`)")
    _add_output_choice(video)
    _add_detection_params(video)
    video.set_defaults(handler=cmd_detect_video)

    live = commands.add_parser(
        "live",
        help="detect images as the frames of one live stream (a folder of a video's frames, a "
        "camera's snapshots), answered in order over a WebSocket",
    )
    live.add_argument(
        "images",
        nargs="*",
        metavar="IMAGE",
        help="an image file, or a folder whose images are sent in name order",
    )
    live.add_argument(
        "--video",
        metavar="SOURCE",
        help="instead of images: a video file (or any input FFmpeg opens), each frame sent "
        "as a JPEG in order; needs PyAV (pip install 'objectvision-client[video]')",
    )
    live.add_argument(
        "--every",
        type=_positive_int,
        default=1,
        metavar="N",
        help="with --video: send every N-th frame from the first (default 1: all of them)",
    )
    live.add_argument(
        "--track",
        action="store_true",
        help="follow objects from frame to frame: each gets a track id from its second frame",
    )
    live.add_argument(
        "--frame-rate",
        type=_positive_float,
        metavar="X",
        help="with --track: the frames a second they were taken at, which sets how long an "
        "object out of sight keeps its id (default 30)",
    )
    live.add_argument(
        "--line",
        action="append",
        type=_counting_line,
        metavar=LINE_SYNTAX,
        help="with --track: list the objects crossing the line from (X1,Y1) to (X2,Y2), in "
        "the frames' pixels, on the frame they cross it in (repeat for more lines)",
    )
    live.add_argument(
        "--zone",
        action="append",
        type=_counting_zone,
        metavar=ZONE_SYNTAX,
        help="with --track: name the zone each object stands in, a polygon of X,Y pairs in the "
        "frames' pixels (repeat for more zones; --json shows them on each object)",
    )
    _add_output_choice(live)
    _add_detection_params(live)
    live.set_defaults(handler=cmd_live)

    jobs = commands.add_parser(
        "jobs", help="list, follow, cancel, rerun, delete and evaluate batch and video jobs"
    )
    job_commands = jobs.add_subparsers(dest="jobs_command", required=True, metavar="ACTION")
    job_list = job_commands.add_parser("list", help="list your jobs, newest first")
    job_list.add_argument("--status", choices=JOB_STATUSES, help="only jobs in this status")
    job_list.add_argument("--kind", choices=JOB_KINDS, help="only batch jobs or video jobs")
    job_list.add_argument(
        "--rerun-of", metavar="ID", help="only the jobs that ran job ID again (`jobs rerun`)"
    )
    job_list.add_argument("--limit", type=_positive_int, default=20, help="rows (default 20)")
    job_list.add_argument("--offset", type=_non_negative_int, default=0, help="rows to skip")
    _add_metadata_option(job_list, "only jobs whose metadata holds this pair")
    _add_output_choice(job_list, table=True)
    job_list.set_defaults(handler=cmd_jobs_list)
    cancel = job_commands.add_parser(
        "cancel", help="stop a pending or processing job (what is done keeps its results)"
    )
    cancel.add_argument("job_id", metavar="ID")
    _add_output_choice(cancel)
    cancel.set_defaults(handler=cmd_jobs_cancel)
    rerun = job_commands.add_parser(
        "rerun",
        help="run a job's stored images or video again as a new job, nothing uploaded again:"
        " the options given (e.g. --model) replace the job's, the rest are kept",
    )
    rerun.add_argument("job_id", metavar="ID")
    rerun.add_argument("--wait", action="store_true", help="wait for the job, showing progress")
    _add_metadata_option(rerun, "the new job's metadata pair (default: the job's own)")
    _add_output_choice(rerun)
    _add_detection_params(rerun)
    rerun.set_defaults(handler=cmd_jobs_rerun)
    delete_job = job_commands.add_parser(
        "delete", help="delete a finished job with its images, results and video"
    )
    delete_job.add_argument("job_id", metavar="ID")
    delete_job.set_defaults(handler=cmd_jobs_delete)
    watch = job_commands.add_parser("watch", help="show progress until the job ends")
    watch.add_argument("job_id", metavar="ID")
    _add_output_choice(watch)
    watch.set_defaults(handler=cmd_jobs_watch)
    show = job_commands.add_parser("show", help="show the job once")
    show.add_argument("job_id", metavar="ID")
    _add_output_choice(show)
    show.set_defaults(handler=cmd_jobs_show)
    evaluate = job_commands.add_parser(
        "evaluate",
        help="score a finished job's detections against ground-truth labels (mAP; a tracked"
        " video job's MOTA and IDF1 too)",
    )
    evaluate.add_argument("job_id", metavar="ID")
    evaluate.add_argument(
        "labels",
        metavar="LABELS",
        help="a zip of YOLO label files (as `export --format yolo` writes) or a COCO JSON file;"
        " for a video job, those named by frame (frame_000042.txt) or MOTChallenge's gt.txt",
    )
    evaluate.add_argument(
        "--curve",
        nargs="?",
        const="",
        metavar="CLASS",
        help="also print precision, recall and F1 at each threshold, over every class or of CLASS",
    )
    _add_output_choice(evaluate)
    evaluate.set_defaults(handler=cmd_jobs_evaluate)
    compare = job_commands.add_parser(
        "compare",
        help="score two finished jobs against the same labels, side by side (two models on"
        " the same pictures, or two tracker settings on one video)",
    )
    compare.add_argument("job_a", metavar="A")
    compare.add_argument("job_b", metavar="B")
    compare.add_argument(
        "labels",
        metavar="LABELS",
        help="a zip of YOLO label files or a COCO JSON file; for video jobs, those named by"
        " frame or MOTChallenge's gt.txt",
    )
    _add_output_choice(compare)
    compare.set_defaults(handler=cmd_jobs_compare)

    models = commands.add_parser("models", help="list the models the server serves")
    _add_output_choice(models)
    models.set_defaults(handler=cmd_models)

    usage = commands.add_parser(
        "usage", help="show the images detected this month against the quota, and per day"
    )
    usage.add_argument(
        "--days", type=int, default=31, help="days to list, today the last (1 to 366; 31)"
    )
    _add_output_choice(usage)
    usage.set_defaults(handler=cmd_usage)

    retention = commands.add_parser(
        "retention", help="show how long finished jobs and detections outside jobs are kept"
    )
    _add_output_choice(retention)
    retention.set_defaults(handler=cmd_retention)

    history = commands.add_parser(
        "history",
        help="list past detections, newest first (or `history delete` one, or those the "
        "filters keep)",
    )
    history.add_argument("--limit", type=_positive_int, default=20, help="rows (default 20)")
    history.add_argument("--offset", type=_non_negative_int, default=0, help="rows to skip")
    history.add_argument("--class", dest="class_name", metavar="NAME", help="only with this class")
    history.add_argument("--since", type=_when, metavar="TIME", help="only at or after")
    history.add_argument("--until", type=_when, metavar="TIME", help="only before")
    _add_metadata_option(history, "only detections whose metadata holds this pair")
    history.add_argument(
        "--summary",
        action="store_true",
        help="count what the filters keep (detections, objects per class) instead of listing it",
    )
    history.add_argument(
        "--name", metavar="TEXT", help="only files whose name contains TEXT (any case)"
    )
    history.add_argument(
        "--unsure-below",
        type=_unsure_below,
        metavar="X",
        help="only detections with an object scoring below X (of --class's class, when given):"
        " the images the model was unsure of, to label",
    )
    _add_output_choice(history, table=True)
    history.set_defaults(handler=cmd_history)
    # Without an action, `history` lists; `history delete` removes one detection by its ID, or
    # those the filters keep.
    history_commands = history.add_subparsers(
        dest="history_command", required=False, metavar="ACTION"
    )
    delete_detection = history_commands.add_parser(
        "delete",
        help="delete a detection and its stored image, or every detection the filters keep",
        description="With an ID, that detection. With filters instead (they combine, as for "
        "`history`), every detection they keep, after a question with their count unless "
        "--yes; detections of jobs still pending or processing are kept. --all, without "
        "filters, deletes the whole history.",
    )
    delete_detection.add_argument(
        "detection_id", metavar="ID", nargs="?", help="the detection to delete (or give filters)"
    )
    # The filters may also come before `delete`: SUPPRESS keeps those when not given here.
    delete_detection.add_argument(
        "--class",
        dest="class_name",
        metavar="NAME",
        default=argparse.SUPPRESS,
        help="those with an object of this class",
    )
    delete_detection.add_argument(
        "--since", type=_when, metavar="TIME", default=argparse.SUPPRESS, help="made at or after"
    )
    delete_detection.add_argument(
        "--until", type=_when, metavar="TIME", default=argparse.SUPPRESS, help="made before"
    )
    delete_detection.add_argument(
        "--meta",
        action="append",
        type=_metadata_pair,
        metavar="KEY=VALUE",
        default=argparse.SUPPRESS,
        help="those whose metadata holds this pair (repeat for more pairs)",
    )
    delete_detection.add_argument(
        "--name",
        metavar="TEXT",
        default=argparse.SUPPRESS,
        help="those whose file name contains TEXT (any case)",
    )
    delete_detection.add_argument(
        "--unsure-below",
        type=_unsure_below,
        metavar="X",
        default=argparse.SUPPRESS,
        help="those with an object scoring below X",
    )
    delete_detection.add_argument(
        "--all",
        dest="everything",
        action="store_true",
        help="no filters: delete the whole history",
    )
    delete_detection.add_argument(
        "--yes", action="store_true", help="do not ask for confirmation (needed without a terminal)"
    )
    delete_detection.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print what was deleted as JSON (deleted, kept_in_unfinished_jobs, more)",
    )
    delete_detection.set_defaults(handler=cmd_history_delete)
    rerun_history = history_commands.add_parser(
        "rerun",
        help="run the stored images of the detections the filters keep again as one job",
        description="The filters of `history` (--class, --since, --until, --meta, --name,"
        " --unsure-below) choose the detections, given before `rerun`; their stored images,"
        " oldest first, become one batch job with the detection options given here (e.g."
        " --model), nothing uploaded again. At most one batch's worth: narrow the filters"
        " if the server says they keep more.",
    )
    rerun_history.add_argument(
        "--wait", action="store_true", help="wait for the job, showing progress"
    )
    _add_output_choice(rerun_history)
    _add_detection_params(rerun_history)
    rerun_history.set_defaults(handler=cmd_history_rerun)
    detection_image = history_commands.add_parser(
        "image",
        help="save a stored detection's image, with its boxes or as uploaded",
        description="The image a detection was made from: JPEG with its boxes drawn, or with "
        "--original as it was uploaded. --redact pixelates a class's objects (only those the "
        "model found).",
    )
    detection_image.add_argument("detection_id", metavar="ID", help="the detection")
    detection_image.add_argument(
        "-o", "--output", required=True, metavar="FILE", help="the file to write"
    )
    detection_image.add_argument(
        "--original", action="store_true", help="no boxes: the upload as it was"
    )
    _add_redact_option(
        detection_image, "pixelate this class's objects (a name or id; repeat for more)"
    )
    detection_image.set_defaults(handler=cmd_history_image)

    export = commands.add_parser(
        "export",
        help="download a job's or the history's detections as COCO JSON, YOLO (zip) or CSV",
    )
    export.add_argument("--job", dest="job_id", metavar="ID", help="a finished batch job")
    export.add_argument(
        "--format",
        choices=EXPORT_FORMATS,
        default="coco",
        help="coco: COCO JSON; yolo: a zip of YOLO labels with data.yaml and image sizes; "
        "csv: one row per object (default coco)",
    )
    export.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="where to write it; - for stdout (default: the server's file name, here)",
    )
    export.add_argument(
        "--class", dest="class_name", metavar="NAME", help="history: only with this class"
    )
    export.add_argument("--since", type=_when, metavar="TIME", help="history: at or after")
    export.add_argument("--until", type=_when, metavar="TIME", help="history: before")
    _add_metadata_option(export, "history: only detections whose metadata holds this pair")
    export.add_argument(
        "--name", metavar="TEXT", help="history: only files whose name contains TEXT (any case)"
    )
    export.add_argument(
        "--unsure-below",
        type=_unsure_below,
        metavar="X",
        help="history: only detections with an object scoring below X (images to label)",
    )
    export.add_argument(
        "--wait", action="store_true", help="with --job: wait for the job to finish first"
    )
    _add_output_choice(export)
    export.set_defaults(handler=cmd_export)

    accounts = commands.add_parser(
        "accounts",
        help="suspend, restore, promote or demote an account (admins)",
        description="Admins only, from a logged-in session. Suspending or demoting ends the "
        "account's sessions at once; a suspended account cannot log in and its API keys stop "
        "working until it is restored.",
    )
    account_commands = accounts.add_subparsers(
        dest="accounts_command", required=True, metavar="ACTION"
    )
    listing_accounts = account_commands.add_parser(
        "list", help="look accounts up by part of their email, or by id; newest first"
    )
    listing_accounts.add_argument("query", nargs="?", default="", help="empty: every account")
    listing_accounts.add_argument(
        "--limit", type=_positive_int, default=20, help="rows (default 20)"
    )
    listing_accounts.add_argument(
        "--offset", type=_non_negative_int, default=0, help="rows to skip"
    )
    _add_output_choice(listing_accounts, table=True)
    listing_accounts.set_defaults(handler=cmd_accounts_list)
    for action, summary in (
        ("suspend", "suspend the account: its sessions end, its keys stop working"),
        ("restore", "let a suspended account log in and use its keys again"),
        ("promote", "give the account admin rights"),
        ("demote", "take the account's admin rights away; its sessions end"),
    ):
        command = account_commands.add_parser(action, help=summary)
        command.add_argument("user_id", metavar="USER_ID")
        _add_output_choice(command)
        command.set_defaults(handler=cmd_accounts)

    keys = commands.add_parser("keys", help="manage API keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = key_commands.add_parser(
        "create",
        help="create a key and print its secret (needs a logged-in session)",
        description="Create an API key and print its secret, shown only this once. Managing "
        "the account and its keys needs a logged-in session whatever a key's scopes.",
    )
    create.add_argument("name")
    create.add_argument(
        "--scope",
        action="append",
        choices=API_KEY_SCOPES,
        help="what the key may do; repeat for several (default: every scope)",
    )
    create.add_argument(
        "--expires-in-days",
        type=_key_lifetime_days,
        metavar="DAYS",
        help=f"the key stops working after DAYS (1-{MAX_API_KEY_LIFETIME_DAYS}; "
        "default: when it is revoked)",
    )
    _add_output_choice(create)
    create.set_defaults(handler=cmd_keys_create)
    listing = key_commands.add_parser("list", help="list keys, revoked ones included")
    _add_output_choice(listing, table=True)
    listing.set_defaults(handler=cmd_keys_list)
    revoke = key_commands.add_parser("revoke", help="revoke a key")
    revoke.add_argument("key_id", metavar="ID")
    revoke.set_defaults(handler=cmd_keys_revoke)

    sessions = commands.add_parser(
        "sessions",
        help="list where the account is logged in, and log sessions out",
        description="The account's signed-in sessions: where and when each login was. Needs "
        "a logged-in session, not an API key.",
    )
    session_commands = sessions.add_subparsers(
        dest="sessions_command", required=True, metavar="ACTION"
    )
    session_list = session_commands.add_parser(
        "list", help="list signed-in sessions, most recently active first"
    )
    _add_output_choice(session_list, table=True)
    session_list.set_defaults(handler=cmd_sessions_list)
    end_session = session_commands.add_parser(
        "end", help="log one session out (this one too: that is a logout)"
    )
    end_session.add_argument(
        "session_id", metavar="ID", help="its id, or the start of it as `sessions list` shows"
    )
    end_session.set_defaults(handler=cmd_sessions_end)
    session_commands.add_parser(
        "end-others", help="log out every session but this one"
    ).set_defaults(handler=cmd_sessions_end_others)

    webhooks = commands.add_parser(
        "webhooks",
        help="list, change, disable, enable and test webhooks; see deliveries and redeliver",
        description="Your webhooks and their deliveries. A disabled webhook is sent nothing: "
        "its events are recorded as dead deliveries, to redeliver once it is enabled again. "
        "The service disables a webhook itself when its deliveries keep failing.",
    )
    hook_commands = webhooks.add_subparsers(
        dest="webhooks_command", required=True, metavar="ACTION"
    )
    hooks = hook_commands.add_parser("list", help="list your webhooks and whether each is enabled")
    _add_output_choice(hooks, table=True)
    hooks.set_defaults(handler=cmd_webhooks_list)
    update = hook_commands.add_parser(
        "update",
        help="change a webhook's URL or events, or disable or enable it",
        description="Change what is given; the rest stays. Enabling a webhook clears its "
        "failure count; what it missed while disabled is in its dead deliveries.",
    )
    update.add_argument("webhook_id", metavar="ID")
    update.add_argument("--url", help="deliver to this URL from now on")
    events = update.add_mutually_exclusive_group()
    events.add_argument(
        "--event",
        action="append",
        choices=WEBHOOK_EVENTS,
        help="deliver only these events; repeat for several (replaces the webhook's list)",
    )
    events.add_argument(
        "--all-events", action="store_true", help="deliver every job event from now on"
    )
    switch = update.add_mutually_exclusive_group()
    switch.add_argument(
        "--enable", dest="enabled", action="store_const", const=True, help="deliver again"
    )
    switch.add_argument(
        "--disable",
        dest="enabled",
        action="store_const",
        const=False,
        help="send nothing until enabled again (events are kept as dead deliveries)",
    )
    _add_output_choice(update)
    update.set_defaults(handler=cmd_webhooks_update)
    ping = hook_commands.add_parser(
        "ping",
        help="send a webhook a signed test event (webhook.ping), even while it is disabled",
    )
    ping.add_argument("webhook_id", metavar="ID")
    ping.add_argument(
        "--wait",
        action="store_true",
        help="wait for the receiver's answer and say how it went (exit 1 if not delivered)",
    )
    ping.add_argument(
        "--wait-seconds",
        type=_positive_float,
        metavar="SECONDS",
        help=f"wait at most this long (implies --wait; default {PING_WAIT_SECONDS:g})",
    )
    _add_output_choice(ping)
    ping.set_defaults(handler=cmd_webhooks_ping)
    deliveries = hook_commands.add_parser(
        "deliveries", help="list a webhook's deliveries, newest first"
    )
    deliveries.add_argument("webhook_id", metavar="ID")
    deliveries.add_argument("--state", choices=DELIVERY_STATES, help="only in this state")
    deliveries.add_argument("--limit", type=_positive_int, default=20, help="rows (default 20)")
    deliveries.add_argument("--offset", type=_non_negative_int, default=0, help="rows to skip")
    _add_output_choice(deliveries, table=True)
    deliveries.set_defaults(handler=cmd_webhooks_deliveries)
    rotate = hook_commands.add_parser(
        "rotate-secret",
        help="a new signing secret; the old one keeps signing beside it for a while",
    )
    rotate.add_argument("webhook_id", metavar="ID")
    rotate.add_argument(
        "--keep-previous-hours",
        type=float,
        default=24.0,
        help="how long the old secret still signs (default 24; 0 stops it now; at most 168)",
    )
    _add_output_choice(rotate)
    rotate.set_defaults(handler=cmd_webhooks_rotate_secret)
    redeliver = hook_commands.add_parser(
        "redeliver", help="send a delivered or dead delivery's event again, now"
    )
    redeliver.add_argument("webhook_id", metavar="ID")
    redeliver.add_argument("delivery_id", metavar="DELIVERY_ID")
    _add_output_choice(redeliver)
    redeliver.set_defaults(handler=cmd_webhooks_redeliver)

    share = commands.add_parser(
        "share",
        help="share a stored detection or a video job by link; list and revoke links; show a "
        "shared one",
        description="A share link shows one stored detection (its objects and image), or one "
        "completed video job (its annotated video and what it counted), to whoever holds it, "
        "with no account, until it expires or is revoked. `share show` reads one shared with "
        "you, with no login.",
    )
    share_commands = share.add_subparsers(dest="share_command", required=True, metavar="ACTION")
    share_create = share_commands.add_parser(
        "create",
        help="make a link to a stored detection or (--job) a completed video job; prints its "
        "URL and token, once",
    )
    share_create.add_argument(
        "detection_id", metavar="DETECTION_ID", nargs="?", help="the detection to share"
    )
    share_create.add_argument(
        "--job",
        dest="job_id",
        metavar="JOB_ID",
        help="share this completed video job (its annotated video and counts) in place of a "
        "detection",
    )
    share_create.add_argument(
        "--days",
        type=_share_link_days,
        metavar="N",
        help=f"the link works N days (1-{MAX_SHARE_LINK_DAYS}; default: the server's, 7)",
    )
    _add_redact_option(
        share_create,
        "the link's image always shows this class's objects pixelated, with or without boxes "
        "(a name or id; repeat for more; a detection's link only). Only the objects found are "
        "covered: a person the model missed is shown",
    )
    _add_output_choice(share_create)
    share_create.set_defaults(handler=cmd_share_create)
    share_list = share_commands.add_parser(
        "list", help="list your share links, newest first, revoked and expired ones included"
    )
    shown_by = share_list.add_mutually_exclusive_group()
    shown_by.add_argument(
        "--detection", dest="detection_id", metavar="ID", help="only this detection's links"
    )
    shown_by.add_argument(
        "--job", dest="job_id", metavar="JOB_ID", help="only this video job's links"
    )
    share_list.add_argument("--limit", type=_positive_int, default=20, help="rows (default 20)")
    share_list.add_argument("--offset", type=_non_negative_int, default=0, help="rows to skip")
    _add_output_choice(share_list, table=True)
    share_list.set_defaults(handler=cmd_share_list)
    share_revoke = share_commands.add_parser("revoke", help="stop a share link at once")
    share_revoke.add_argument("link_id", metavar="LINK_ID")
    _add_output_choice(share_revoke)
    share_revoke.set_defaults(handler=cmd_share_revoke)
    share_show = share_commands.add_parser(
        "show",
        help="show what a share link shows (no login needed)",
        description="Reads a shared detection or video job with the link's token alone: no "
        f"saved session or {API_KEY_VARIABLE} is needed, and none is sent.",
    )
    share_show.add_argument(
        "token", metavar="TOKEN_OR_URL", help="the link's token (ovs_...), or the whole link"
    )
    saved = share_show.add_mutually_exclusive_group()
    saved.add_argument(
        "--image",
        metavar="FILE",
        help="a detection's link: also write the image to FILE (JPEG, boxes drawn)",
    )
    saved.add_argument(
        "--video",
        metavar="FILE",
        help="a video job's link: also write its annotated video to FILE (MP4)",
    )
    saved.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="also write what the link shows to FILE: a detection's image or a video job's "
        "annotated video",
    )
    share_show.add_argument(
        "--original",
        action="store_true",
        help="with --image (or -o, for a detection): the image without the boxes (as "
        "uploaded, unless the link pixelates some classes)",
    )
    _add_output_choice(share_show, table=True)
    share_show.set_defaults(handler=cmd_share_show)
    return parser


def _credentials(ctx: Context) -> str:
    if ctx.args.command in PUBLIC_COMMANDS or (
        ctx.args.command == "share" and ctx.args.share_command == "show"
    ):
        return "none"
    return "api-key" if os.environ.get(API_KEY_VARIABLE) else "session"


def run(ctx: Context) -> int:
    """Run the chosen command; expected failures become a one-line message and a status."""
    handler: Callable[[Context], int] = ctx.args.handler
    try:
        return handler(ctx)
    except ObjectVisionError as exc:
        ctx.say(f"error: {describe_error(exc, ctx.api_url, credentials=_credentials(ctx))}")
    except UsageError as exc:
        ctx.say(f"error: {exc}")
        return EXIT_USAGE
    except CliError as exc:
        ctx.say(f"error: {exc}")
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        ctx.say(f"error: {exc.strerror or exc}{where}")
    except KeyboardInterrupt:
        ctx.say("interrupted")
        return EXIT_INTERRUPTED
    return EXIT_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run(
        Context(
            args=args,
            api_url=args.api_url.rstrip("/"),
            store=CredentialStore(),
            stdout=sys.stdout,
            stderr=sys.stderr,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
