"""Detection of one image: header checks before any decoding (header, decode), the
micro-batcher and Triton client per model (batcher, triton, catalog), the result cache, the
`Detector` that ties them together, drawing (annotate), and the core types (types).

OpenCV reads ``OPENCV_IO_MAX_IMAGE_PIXELS`` once, when its library loads, and then refuses from
its own reading of a file's header any image over it, before allocating. The service's limit
(``MAX_IMAGE_PIXELS``) is put there here, before any module of this package imports cv2, so
that a file which our header parser and libjpeg read differently can never decode to more
pixels than the limit (decode.decode also checks the decoded size against the header).
"""

import os

os.environ.setdefault(
    "OPENCV_IO_MAX_IMAGE_PIXELS", os.environ.get("MAX_IMAGE_PIXELS", "40000000").strip()
)
