"""Take docs/video-counting.png: a frame of a real video job's annotated video, with its track
ids, a counting line with its running totals and a counting zone with how many stand in it
(ADR 0038, 0039, 0042).

    make counting-frame

Starts a system of its own (the devstack Stack and Triton, as `make run` and the tests do),
makes a video of bus.jpg panned across the picture, finds where the bus's centre passes by
detecting one frame as an image, and submits the video through the REST API with
`track=true`, a vertical counting line there and a zone over the right-hand part of the road.
When the job has finished it downloads the annotated MP4 and writes its last frame, the one
with the most counted, as a PNG; it prints the job's line and zone counts, and fails unless
the bus was counted crossing the line and visiting the zone.
"""

import argparse
import io
import sys
import tempfile
import uuid
from pathlib import Path

import av
import cv2
import numpy as np

from objectvision_client import Client, CountingLine, CountingZone
from objectvision_devstack.api_users import PASSWORD, fresh_network
from objectvision_devstack.stack import stack_with_triton
from objectvision_devstack.videos import panned, write_video

REPOSITORY = Path(__file__).resolve().parents[1]
BUS = REPOSITORY.parent / "shared" / "images" / "bus.jpg"
FRAMES, STEP = 24, 5
WIDTH, HEIGHT = 640, 480


def _bus_centre_x(client: Client, frame: np.ndarray) -> float:
    encoded, jpeg = cv2.imencode(".jpg", frame)
    assert encoded
    result = client.detect_image(("frame.jpg", jpeg.tobytes()))
    (bus,) = [obj for obj in result.objects if obj.class_name == "bus"]
    return (bus.bbox.x1 + bus.bbox.x2) / 2


def _last_frame(mp4: bytes) -> np.ndarray:
    with av.open(io.BytesIO(mp4), mode="r", format="mp4") as container:
        last = None
        for frame in container.decode(video=0):
            last = frame.to_ndarray(format="bgr24")
    assert last is not None, "the annotated video has no frames"
    return last


def take(out: Path, workdir: Path) -> None:
    frames = panned(BUS, FRAMES, step=STEP, width=WIDTH, height=HEIGHT)
    video = write_video(workdir / "panned-bus.mp4", frames, fps=10).read_bytes()
    with (
        stack_with_triton(workdir, extra_env={}) as (stack, _),
        Client(stack.gateway_url, headers=fresh_network()) as client,
    ):
        address = f"counting-frame-{uuid.uuid4().hex}@example.com"
        client.signup(address, PASSWORD, "Counting Example")
        client.login(address, PASSWORD)
        start, end = _bus_centre_x(client, frames[1]), _bus_centre_x(client, frames[-1])
        x = round((start + end) / 2)
        gate = CountingLine(name="gate", start=(x, 40), end=(x, HEIGHT - 40))
        # Where the bus's wheels end up: the lower right of the picture, past the gate.
        bay = CountingZone(
            name="bay",
            polygon=[(x, 300), (WIDTH - 10, 300), (WIDTH - 10, HEIGHT - 10), (x, HEIGHT - 10)],
        )
        job = client.submit_video(
            ("bus.mp4", video), every=1, track=True, lines=[gate], zones=[bay]
        )
        finished = client.wait_for_job(job.job_id, poll_seconds=0.25, timeout=300)
        annotated = io.BytesIO()
        client.annotated_video(job.job_id, annotated)
    assert finished.video is not None
    for count in finished.video.line_counts:
        print(f"{count.line}: {count.class_name} in {count.crossed_in} out {count.crossed_out}")
    for zone in finished.video.zone_counts:
        print(
            f"{zone.zone}: {zone.class_name} visited {zone.visited} peak {zone.peak}"
            f" mean stay {zone.mean_stay_seconds:.1f} s"
        )
    if not any(c.class_name == "bus" for c in finished.video.line_counts):
        raise SystemExit("the bus was not counted crossing the gate; no image written")
    if not any(c.class_name == "bus" for c in finished.video.zone_counts):
        raise SystemExit("the bus was not counted in the bay; no image written")
    cv2.imwrite(str(out), _last_frame(annotated.getvalue()))
    print(f"wrote {out}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPOSITORY / "docs" / "video-counting.png")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="counting-frame-") as workdir:
        take(args.out, Path(workdir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
