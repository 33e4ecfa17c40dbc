import datetime

from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from objectvision.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CrossingDirection(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CROSSING_DIRECTION_UNSPECIFIED: _ClassVar[CrossingDirection]
    CROSSING_DIRECTION_IN: _ClassVar[CrossingDirection]
    CROSSING_DIRECTION_OUT: _ClassVar[CrossingDirection]

class JobStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATUS_UNSPECIFIED: _ClassVar[JobStatus]
    JOB_STATUS_PENDING: _ClassVar[JobStatus]
    JOB_STATUS_PROCESSING: _ClassVar[JobStatus]
    JOB_STATUS_COMPLETED: _ClassVar[JobStatus]
    JOB_STATUS_FAILED: _ClassVar[JobStatus]
    JOB_STATUS_CANCELLED: _ClassVar[JobStatus]

class DetectionStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DETECTION_STATUS_UNSPECIFIED: _ClassVar[DetectionStatus]
    DETECTION_STATUS_PENDING: _ClassVar[DetectionStatus]
    DETECTION_STATUS_COMPLETED: _ClassVar[DetectionStatus]
    DETECTION_STATUS_FAILED: _ClassVar[DetectionStatus]

class ExportFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXPORT_FORMAT_UNSPECIFIED: _ClassVar[ExportFormat]
    EXPORT_FORMAT_COCO: _ClassVar[ExportFormat]
    EXPORT_FORMAT_YOLO: _ClassVar[ExportFormat]
    EXPORT_FORMAT_CSV: _ClassVar[ExportFormat]
CROSSING_DIRECTION_UNSPECIFIED: CrossingDirection
CROSSING_DIRECTION_IN: CrossingDirection
CROSSING_DIRECTION_OUT: CrossingDirection
JOB_STATUS_UNSPECIFIED: JobStatus
JOB_STATUS_PENDING: JobStatus
JOB_STATUS_PROCESSING: JobStatus
JOB_STATUS_COMPLETED: JobStatus
JOB_STATUS_FAILED: JobStatus
JOB_STATUS_CANCELLED: JobStatus
DETECTION_STATUS_UNSPECIFIED: DetectionStatus
DETECTION_STATUS_PENDING: DetectionStatus
DETECTION_STATUS_COMPLETED: DetectionStatus
DETECTION_STATUS_FAILED: DetectionStatus
EXPORT_FORMAT_UNSPECIFIED: ExportFormat
EXPORT_FORMAT_COCO: ExportFormat
EXPORT_FORMAT_YOLO: ExportFormat
EXPORT_FORMAT_CSV: ExportFormat

class DetectionParams(_message.Message):
    __slots__ = ("confidence", "iou", "classes", "max_detections", "class_confidence", "tile_size", "tile_overlap", "regions", "model")
    class ClassConfidenceEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    IOU_FIELD_NUMBER: _ClassVar[int]
    CLASSES_FIELD_NUMBER: _ClassVar[int]
    MAX_DETECTIONS_FIELD_NUMBER: _ClassVar[int]
    CLASS_CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    TILE_SIZE_FIELD_NUMBER: _ClassVar[int]
    TILE_OVERLAP_FIELD_NUMBER: _ClassVar[int]
    REGIONS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    confidence: float
    iou: float
    classes: _containers.RepeatedScalarFieldContainer[str]
    max_detections: int
    class_confidence: _containers.ScalarMap[str, float]
    tile_size: int
    tile_overlap: float
    regions: _containers.RepeatedCompositeFieldContainer[Region]
    model: str
    def __init__(self, confidence: _Optional[float] = ..., iou: _Optional[float] = ..., classes: _Optional[_Iterable[str]] = ..., max_detections: _Optional[int] = ..., class_confidence: _Optional[_Mapping[str, float]] = ..., tile_size: _Optional[int] = ..., tile_overlap: _Optional[float] = ..., regions: _Optional[_Iterable[_Union[Region, _Mapping]]] = ..., model: _Optional[str] = ...) -> None: ...

class ImageInput(_message.Message):
    __slots__ = ("data", "filename", "content_type")
    DATA_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    filename: str
    content_type: str
    def __init__(self, data: _Optional[bytes] = ..., filename: _Optional[str] = ..., content_type: _Optional[str] = ...) -> None: ...

class BoundingBox(_message.Message):
    __slots__ = ("x1", "y1", "x2", "y2")
    X1_FIELD_NUMBER: _ClassVar[int]
    Y1_FIELD_NUMBER: _ClassVar[int]
    X2_FIELD_NUMBER: _ClassVar[int]
    Y2_FIELD_NUMBER: _ClassVar[int]
    x1: float
    y1: float
    x2: float
    y2: float
    def __init__(self, x1: _Optional[float] = ..., y1: _Optional[float] = ..., x2: _Optional[float] = ..., y2: _Optional[float] = ...) -> None: ...

class DetectedObject(_message.Message):
    __slots__ = ("class_name", "class_id", "confidence", "box", "track_id", "zones")
    CLASS_NAME_FIELD_NUMBER: _ClassVar[int]
    CLASS_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    TRACK_ID_FIELD_NUMBER: _ClassVar[int]
    ZONES_FIELD_NUMBER: _ClassVar[int]
    class_name: str
    class_id: int
    confidence: float
    box: BoundingBox
    track_id: int
    zones: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, class_name: _Optional[str] = ..., class_id: _Optional[int] = ..., confidence: _Optional[float] = ..., box: _Optional[_Union[BoundingBox, _Mapping]] = ..., track_id: _Optional[int] = ..., zones: _Optional[_Iterable[str]] = ...) -> None: ...

class Timings(_message.Message):
    __slots__ = ("decode_ms", "queue_ms", "inference_ms", "postprocess_ms", "total_ms")
    DECODE_MS_FIELD_NUMBER: _ClassVar[int]
    QUEUE_MS_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_MS_FIELD_NUMBER: _ClassVar[int]
    POSTPROCESS_MS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MS_FIELD_NUMBER: _ClassVar[int]
    decode_ms: float
    queue_ms: float
    inference_ms: float
    postprocess_ms: float
    total_ms: float
    def __init__(self, decode_ms: _Optional[float] = ..., queue_ms: _Optional[float] = ..., inference_ms: _Optional[float] = ..., postprocess_ms: _Optional[float] = ..., total_ms: _Optional[float] = ...) -> None: ...

class ImageResult(_message.Message):
    __slots__ = ("detection_id", "width", "height", "objects", "timings", "filename", "cached", "model", "model_version")
    DETECTION_ID_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    detection_id: str
    width: int
    height: int
    objects: _containers.RepeatedCompositeFieldContainer[DetectedObject]
    timings: Timings
    filename: str
    cached: bool
    model: str
    model_version: str
    def __init__(self, detection_id: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., objects: _Optional[_Iterable[_Union[DetectedObject, _Mapping]]] = ..., timings: _Optional[_Union[Timings, _Mapping]] = ..., filename: _Optional[str] = ..., cached: _Optional[bool] = ..., model: _Optional[str] = ..., model_version: _Optional[str] = ...) -> None: ...

class DetectRequest(_message.Message):
    __slots__ = ("images", "params", "store", "metadata", "idempotency_key")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    STORE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedCompositeFieldContainer[ImageInput]
    params: DetectionParams
    store: bool
    metadata: _containers.ScalarMap[str, str]
    idempotency_key: str
    def __init__(self, images: _Optional[_Iterable[_Union[ImageInput, _Mapping]]] = ..., params: _Optional[_Union[DetectionParams, _Mapping]] = ..., store: _Optional[bool] = ..., metadata: _Optional[_Mapping[str, str]] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class DetectResponse(_message.Message):
    __slots__ = ("results", "replayed")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ImageResult]
    replayed: bool
    def __init__(self, results: _Optional[_Iterable[_Union[ImageResult, _Mapping]]] = ..., replayed: _Optional[bool] = ...) -> None: ...

class Frame(_message.Message):
    __slots__ = ("sequence", "image", "params", "track", "frame_rate", "lines", "zones")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    TRACK_FIELD_NUMBER: _ClassVar[int]
    FRAME_RATE_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    ZONES_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    image: ImageInput
    params: DetectionParams
    track: bool
    frame_rate: float
    lines: _containers.RepeatedCompositeFieldContainer[CountingLine]
    zones: _containers.RepeatedCompositeFieldContainer[CountingZone]
    def __init__(self, sequence: _Optional[int] = ..., image: _Optional[_Union[ImageInput, _Mapping]] = ..., params: _Optional[_Union[DetectionParams, _Mapping]] = ..., track: _Optional[bool] = ..., frame_rate: _Optional[float] = ..., lines: _Optional[_Iterable[_Union[CountingLine, _Mapping]]] = ..., zones: _Optional[_Iterable[_Union[CountingZone, _Mapping]]] = ...) -> None: ...

class FrameDetections(_message.Message):
    __slots__ = ("sequence", "result", "error", "crossings", "ready")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CROSSINGS_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    result: ImageResult
    error: str
    crossings: _containers.RepeatedCompositeFieldContainer[LineCrossing]
    ready: bool
    def __init__(self, sequence: _Optional[int] = ..., result: _Optional[_Union[ImageResult, _Mapping]] = ..., error: _Optional[str] = ..., crossings: _Optional[_Iterable[_Union[LineCrossing, _Mapping]]] = ..., ready: _Optional[bool] = ...) -> None: ...

class CountingLine(_message.Message):
    __slots__ = ("name", "start", "end")
    NAME_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    name: str
    start: Point
    end: Point
    def __init__(self, name: _Optional[str] = ..., start: _Optional[_Union[Point, _Mapping]] = ..., end: _Optional[_Union[Point, _Mapping]] = ...) -> None: ...

class Point(_message.Message):
    __slots__ = ("x", "y")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    x: float
    y: float
    def __init__(self, x: _Optional[float] = ..., y: _Optional[float] = ...) -> None: ...

class Region(_message.Message):
    __slots__ = ("polygon",)
    POLYGON_FIELD_NUMBER: _ClassVar[int]
    polygon: _containers.RepeatedCompositeFieldContainer[Point]
    def __init__(self, polygon: _Optional[_Iterable[_Union[Point, _Mapping]]] = ...) -> None: ...

class LineCrossing(_message.Message):
    __slots__ = ("line", "track_id", "class_id", "class_name", "direction")
    LINE_FIELD_NUMBER: _ClassVar[int]
    TRACK_ID_FIELD_NUMBER: _ClassVar[int]
    CLASS_ID_FIELD_NUMBER: _ClassVar[int]
    CLASS_NAME_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    line: str
    track_id: int
    class_id: int
    class_name: str
    direction: CrossingDirection
    def __init__(self, line: _Optional[str] = ..., track_id: _Optional[int] = ..., class_id: _Optional[int] = ..., class_name: _Optional[str] = ..., direction: _Optional[_Union[CrossingDirection, str]] = ...) -> None: ...

class LineCount(_message.Message):
    __slots__ = ("line", "class_id", "class_name", "crossed_in", "crossed_out")
    LINE_FIELD_NUMBER: _ClassVar[int]
    CLASS_ID_FIELD_NUMBER: _ClassVar[int]
    CLASS_NAME_FIELD_NUMBER: _ClassVar[int]
    CROSSED_IN_FIELD_NUMBER: _ClassVar[int]
    CROSSED_OUT_FIELD_NUMBER: _ClassVar[int]
    line: str
    class_id: int
    class_name: str
    crossed_in: int
    crossed_out: int
    def __init__(self, line: _Optional[str] = ..., class_id: _Optional[int] = ..., class_name: _Optional[str] = ..., crossed_in: _Optional[int] = ..., crossed_out: _Optional[int] = ...) -> None: ...

class CountingZone(_message.Message):
    __slots__ = ("name", "polygon")
    NAME_FIELD_NUMBER: _ClassVar[int]
    POLYGON_FIELD_NUMBER: _ClassVar[int]
    name: str
    polygon: _containers.RepeatedCompositeFieldContainer[Point]
    def __init__(self, name: _Optional[str] = ..., polygon: _Optional[_Iterable[_Union[Point, _Mapping]]] = ...) -> None: ...

class ZoneCount(_message.Message):
    __slots__ = ("zone", "class_id", "class_name", "visited", "peak", "mean_stay_seconds")
    ZONE_FIELD_NUMBER: _ClassVar[int]
    CLASS_ID_FIELD_NUMBER: _ClassVar[int]
    CLASS_NAME_FIELD_NUMBER: _ClassVar[int]
    VISITED_FIELD_NUMBER: _ClassVar[int]
    PEAK_FIELD_NUMBER: _ClassVar[int]
    MEAN_STAY_SECONDS_FIELD_NUMBER: _ClassVar[int]
    zone: str
    class_id: int
    class_name: str
    visited: int
    peak: int
    mean_stay_seconds: float
    def __init__(self, zone: _Optional[str] = ..., class_id: _Optional[int] = ..., class_name: _Optional[str] = ..., visited: _Optional[int] = ..., peak: _Optional[int] = ..., mean_stay_seconds: _Optional[float] = ...) -> None: ...

class JobItem(_message.Message):
    __slots__ = ("filename", "status", "detection_id", "error", "object_count")
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DETECTION_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    OBJECT_COUNT_FIELD_NUMBER: _ClassVar[int]
    filename: str
    status: JobStatus
    detection_id: str
    error: str
    object_count: int
    def __init__(self, filename: _Optional[str] = ..., status: _Optional[_Union[JobStatus, str]] = ..., detection_id: _Optional[str] = ..., error: _Optional[str] = ..., object_count: _Optional[int] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("id", "status", "total", "processed", "failed", "items", "created_at", "updated_at", "completed_at", "model", "model_version", "kind", "video", "error", "metadata", "class_counts", "items_per_second", "estimated_completion_at", "rerun_of")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    PROCESSED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    CLASS_COUNTS_FIELD_NUMBER: _ClassVar[int]
    ITEMS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_COMPLETION_AT_FIELD_NUMBER: _ClassVar[int]
    RERUN_OF_FIELD_NUMBER: _ClassVar[int]
    id: str
    status: JobStatus
    total: int
    processed: int
    failed: int
    items: _containers.RepeatedCompositeFieldContainer[JobItem]
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    completed_at: _timestamp_pb2.Timestamp
    model: str
    model_version: str
    kind: str
    video: VideoInfo
    error: str
    metadata: _containers.ScalarMap[str, str]
    class_counts: ClassCounts
    items_per_second: float
    estimated_completion_at: _timestamp_pb2.Timestamp
    rerun_of: str
    def __init__(self, id: _Optional[str] = ..., status: _Optional[_Union[JobStatus, str]] = ..., total: _Optional[int] = ..., processed: _Optional[int] = ..., failed: _Optional[int] = ..., items: _Optional[_Iterable[_Union[JobItem, _Mapping]]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., completed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., model: _Optional[str] = ..., model_version: _Optional[str] = ..., kind: _Optional[str] = ..., video: _Optional[_Union[VideoInfo, _Mapping]] = ..., error: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., class_counts: _Optional[_Union[ClassCounts, _Mapping]] = ..., items_per_second: _Optional[float] = ..., estimated_completion_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., rerun_of: _Optional[str] = ...) -> None: ...

class ClassCounts(_message.Message):
    __slots__ = ("counts",)
    class CountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    counts: _containers.ScalarMap[str, int]
    def __init__(self, counts: _Optional[_Mapping[str, int]] = ...) -> None: ...

class SubmitJobRequest(_message.Message):
    __slots__ = ("images", "params", "idempotency_key", "refused", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedCompositeFieldContainer[ImageInput]
    params: DetectionParams
    idempotency_key: str
    refused: _containers.RepeatedCompositeFieldContainer[RefusedImage]
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, images: _Optional[_Iterable[_Union[ImageInput, _Mapping]]] = ..., params: _Optional[_Union[DetectionParams, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., refused: _Optional[_Iterable[_Union[RefusedImage, _Mapping]]] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class RefusedImage(_message.Message):
    __slots__ = ("filename", "reason")
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    filename: str
    reason: str
    def __init__(self, filename: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RerunHistoryRequest(_message.Message):
    __slots__ = ("class_filter", "since", "until", "metadata", "filename_contains", "confidence_below", "params", "idempotency_key", "job_metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class JobMetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CLASS_FILTER_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    FILENAME_CONTAINS_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_BELOW_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    JOB_METADATA_FIELD_NUMBER: _ClassVar[int]
    class_filter: str
    since: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    metadata: _containers.ScalarMap[str, str]
    filename_contains: str
    confidence_below: float
    params: DetectionParams
    idempotency_key: str
    job_metadata: _containers.ScalarMap[str, str]
    def __init__(self, class_filter: _Optional[str] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., metadata: _Optional[_Mapping[str, str]] = ..., filename_contains: _Optional[str] = ..., confidence_below: _Optional[float] = ..., params: _Optional[_Union[DetectionParams, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., job_metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class RerunJobRequest(_message.Message):
    __slots__ = ("job_id", "params", "idempotency_key", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    params: DetectionParams
    idempotency_key: str
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, job_id: _Optional[str] = ..., params: _Optional[_Union[DetectionParams, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("page", "status", "kind", "metadata", "rerun_of")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PAGE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    RERUN_OF_FIELD_NUMBER: _ClassVar[int]
    page: _common_pb2.Page
    status: JobStatus
    kind: str
    metadata: _containers.ScalarMap[str, str]
    rerun_of: str
    def __init__(self, page: _Optional[_Union[_common_pb2.Page, _Mapping]] = ..., status: _Optional[_Union[JobStatus, str]] = ..., kind: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., rerun_of: _Optional[str] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs", "total", "limit", "offset")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[Job]
    total: int
    limit: int
    offset: int
    def __init__(self, jobs: _Optional[_Iterable[_Union[Job, _Mapping]]] = ..., total: _Optional[int] = ..., limit: _Optional[int] = ..., offset: _Optional[int] = ...) -> None: ...

class CancelJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class DeleteJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class ListDetectionsRequest(_message.Message):
    __slots__ = ("page", "class_filter", "since", "until", "metadata", "filename_contains", "confidence_below")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PAGE_FIELD_NUMBER: _ClassVar[int]
    CLASS_FILTER_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    FILENAME_CONTAINS_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_BELOW_FIELD_NUMBER: _ClassVar[int]
    page: _common_pb2.Page
    class_filter: str
    since: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    metadata: _containers.ScalarMap[str, str]
    filename_contains: str
    confidence_below: float
    def __init__(self, page: _Optional[_Union[_common_pb2.Page, _Mapping]] = ..., class_filter: _Optional[str] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., metadata: _Optional[_Mapping[str, str]] = ..., filename_contains: _Optional[str] = ..., confidence_below: _Optional[float] = ...) -> None: ...

class Detection(_message.Message):
    __slots__ = ("id", "status", "job_id", "result", "created_at", "updated_at", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    id: str
    status: DetectionStatus
    job_id: str
    result: ImageResult
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, id: _Optional[str] = ..., status: _Optional[_Union[DetectionStatus, str]] = ..., job_id: _Optional[str] = ..., result: _Optional[_Union[ImageResult, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class SummarizeDetectionsRequest(_message.Message):
    __slots__ = ("class_filter", "since", "until", "metadata", "filename_contains", "confidence_below")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CLASS_FILTER_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    FILENAME_CONTAINS_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_BELOW_FIELD_NUMBER: _ClassVar[int]
    class_filter: str
    since: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    metadata: _containers.ScalarMap[str, str]
    filename_contains: str
    confidence_below: float
    def __init__(self, class_filter: _Optional[str] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., metadata: _Optional[_Mapping[str, str]] = ..., filename_contains: _Optional[str] = ..., confidence_below: _Optional[float] = ...) -> None: ...

class DeleteDetectionsRequest(_message.Message):
    __slots__ = ("class_filter", "since", "until", "metadata", "filename_contains", "everything", "confidence_below")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CLASS_FILTER_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    FILENAME_CONTAINS_FIELD_NUMBER: _ClassVar[int]
    EVERYTHING_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_BELOW_FIELD_NUMBER: _ClassVar[int]
    class_filter: str
    since: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    metadata: _containers.ScalarMap[str, str]
    filename_contains: str
    everything: bool
    confidence_below: float
    def __init__(self, class_filter: _Optional[str] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., metadata: _Optional[_Mapping[str, str]] = ..., filename_contains: _Optional[str] = ..., everything: _Optional[bool] = ..., confidence_below: _Optional[float] = ...) -> None: ...

class DeleteDetectionsResponse(_message.Message):
    __slots__ = ("deleted", "kept_in_unfinished_jobs", "more")
    DELETED_FIELD_NUMBER: _ClassVar[int]
    KEPT_IN_UNFINISHED_JOBS_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    deleted: int
    kept_in_unfinished_jobs: int
    more: bool
    def __init__(self, deleted: _Optional[int] = ..., kept_in_unfinished_jobs: _Optional[int] = ..., more: _Optional[bool] = ...) -> None: ...

class DetectionSummary(_message.Message):
    __slots__ = ("detections", "objects", "class_counts")
    class ClassCountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    DETECTIONS_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    CLASS_COUNTS_FIELD_NUMBER: _ClassVar[int]
    detections: int
    objects: int
    class_counts: _containers.ScalarMap[str, int]
    def __init__(self, detections: _Optional[int] = ..., objects: _Optional[int] = ..., class_counts: _Optional[_Mapping[str, int]] = ...) -> None: ...

class ListDetectionsResponse(_message.Message):
    __slots__ = ("items", "total", "limit", "offset")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Detection]
    total: int
    limit: int
    offset: int
    def __init__(self, items: _Optional[_Iterable[_Union[Detection, _Mapping]]] = ..., total: _Optional[int] = ..., limit: _Optional[int] = ..., offset: _Optional[int] = ...) -> None: ...

class GetDetectionRequest(_message.Message):
    __slots__ = ("detection_id",)
    DETECTION_ID_FIELD_NUMBER: _ClassVar[int]
    detection_id: str
    def __init__(self, detection_id: _Optional[str] = ...) -> None: ...

class DeleteDetectionRequest(_message.Message):
    __slots__ = ("detection_id",)
    DETECTION_ID_FIELD_NUMBER: _ClassVar[int]
    detection_id: str
    def __init__(self, detection_id: _Optional[str] = ...) -> None: ...

class GetAnnotatedImageRequest(_message.Message):
    __slots__ = ("detection_id", "annotated", "redact")
    DETECTION_ID_FIELD_NUMBER: _ClassVar[int]
    ANNOTATED_FIELD_NUMBER: _ClassVar[int]
    REDACT_FIELD_NUMBER: _ClassVar[int]
    detection_id: str
    annotated: bool
    redact: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, detection_id: _Optional[str] = ..., annotated: _Optional[bool] = ..., redact: _Optional[_Iterable[str]] = ...) -> None: ...

class ImageChunk(_message.Message):
    __slots__ = ("data", "content_type")
    DATA_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    content_type: str
    def __init__(self, data: _Optional[bytes] = ..., content_type: _Optional[str] = ...) -> None: ...

class ExportDetectionsRequest(_message.Message):
    __slots__ = ("format", "job_id", "class_filter", "since", "until", "metadata", "filename_contains", "confidence_below")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    CLASS_FILTER_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    FILENAME_CONTAINS_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_BELOW_FIELD_NUMBER: _ClassVar[int]
    format: ExportFormat
    job_id: str
    class_filter: str
    since: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    metadata: _containers.ScalarMap[str, str]
    filename_contains: str
    confidence_below: float
    def __init__(self, format: _Optional[_Union[ExportFormat, str]] = ..., job_id: _Optional[str] = ..., class_filter: _Optional[str] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., metadata: _Optional[_Mapping[str, str]] = ..., filename_contains: _Optional[str] = ..., confidence_below: _Optional[float] = ...) -> None: ...

class ExportChunk(_message.Message):
    __slots__ = ("data", "content_type", "filename")
    DATA_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    content_type: str
    filename: str
    def __init__(self, data: _Optional[bytes] = ..., content_type: _Optional[str] = ..., filename: _Optional[str] = ...) -> None: ...

class EvaluateJobRequest(_message.Message):
    __slots__ = ("job_id", "labels")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    labels: bytes
    def __init__(self, job_id: _Optional[str] = ..., labels: _Optional[bytes] = ...) -> None: ...

class ClassEvaluation(_message.Message):
    __slots__ = ("class_id", "class_name", "ground_truth", "detections", "ap50_95", "ap50", "precision", "recall", "f1", "f1_confidence", "curve", "tracking")
    CLASS_ID_FIELD_NUMBER: _ClassVar[int]
    CLASS_NAME_FIELD_NUMBER: _ClassVar[int]
    GROUND_TRUTH_FIELD_NUMBER: _ClassVar[int]
    DETECTIONS_FIELD_NUMBER: _ClassVar[int]
    AP50_95_FIELD_NUMBER: _ClassVar[int]
    AP50_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    RECALL_FIELD_NUMBER: _ClassVar[int]
    F1_FIELD_NUMBER: _ClassVar[int]
    F1_CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    CURVE_FIELD_NUMBER: _ClassVar[int]
    TRACKING_FIELD_NUMBER: _ClassVar[int]
    class_id: int
    class_name: str
    ground_truth: int
    detections: int
    ap50_95: float
    ap50: float
    precision: float
    recall: float
    f1: float
    f1_confidence: float
    curve: _containers.RepeatedCompositeFieldContainer[CurvePoint]
    tracking: TrackingEvaluation
    def __init__(self, class_id: _Optional[int] = ..., class_name: _Optional[str] = ..., ground_truth: _Optional[int] = ..., detections: _Optional[int] = ..., ap50_95: _Optional[float] = ..., ap50: _Optional[float] = ..., precision: _Optional[float] = ..., recall: _Optional[float] = ..., f1: _Optional[float] = ..., f1_confidence: _Optional[float] = ..., curve: _Optional[_Iterable[_Union[CurvePoint, _Mapping]]] = ..., tracking: _Optional[_Union[TrackingEvaluation, _Mapping]] = ...) -> None: ...

class CurvePoint(_message.Message):
    __slots__ = ("confidence", "precision", "recall", "f1")
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    RECALL_FIELD_NUMBER: _ClassVar[int]
    F1_FIELD_NUMBER: _ClassVar[int]
    confidence: float
    precision: float
    recall: float
    f1: float
    def __init__(self, confidence: _Optional[float] = ..., precision: _Optional[float] = ..., recall: _Optional[float] = ..., f1: _Optional[float] = ...) -> None: ...

class JobEvaluation(_message.Message):
    __slots__ = ("job_id", "model", "labels_format", "min_confidence", "images", "images_without_labels", "unmatched_labels", "unmatched_label_count", "unknown_classes", "ground_truth", "detections", "map50_95", "map50", "map75", "precision", "recall", "classes", "f1", "f1_confidence", "suggested_class_confidence", "confusions", "curve", "sizes", "job_kind", "frames_outside_labels", "tracking")
    class SuggestedClassConfidenceEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    LABELS_FORMAT_FIELD_NUMBER: _ClassVar[int]
    MIN_CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    IMAGES_WITHOUT_LABELS_FIELD_NUMBER: _ClassVar[int]
    UNMATCHED_LABELS_FIELD_NUMBER: _ClassVar[int]
    UNMATCHED_LABEL_COUNT_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_CLASSES_FIELD_NUMBER: _ClassVar[int]
    GROUND_TRUTH_FIELD_NUMBER: _ClassVar[int]
    DETECTIONS_FIELD_NUMBER: _ClassVar[int]
    MAP50_95_FIELD_NUMBER: _ClassVar[int]
    MAP50_FIELD_NUMBER: _ClassVar[int]
    MAP75_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    RECALL_FIELD_NUMBER: _ClassVar[int]
    CLASSES_FIELD_NUMBER: _ClassVar[int]
    F1_FIELD_NUMBER: _ClassVar[int]
    F1_CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    SUGGESTED_CLASS_CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    CONFUSIONS_FIELD_NUMBER: _ClassVar[int]
    CURVE_FIELD_NUMBER: _ClassVar[int]
    SIZES_FIELD_NUMBER: _ClassVar[int]
    JOB_KIND_FIELD_NUMBER: _ClassVar[int]
    FRAMES_OUTSIDE_LABELS_FIELD_NUMBER: _ClassVar[int]
    TRACKING_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    model: str
    labels_format: str
    min_confidence: float
    images: int
    images_without_labels: int
    unmatched_labels: _containers.RepeatedScalarFieldContainer[str]
    unmatched_label_count: int
    unknown_classes: _containers.RepeatedScalarFieldContainer[str]
    ground_truth: int
    detections: int
    map50_95: float
    map50: float
    map75: float
    precision: float
    recall: float
    classes: _containers.RepeatedCompositeFieldContainer[ClassEvaluation]
    f1: float
    f1_confidence: float
    suggested_class_confidence: _containers.ScalarMap[str, float]
    confusions: _containers.RepeatedCompositeFieldContainer[Confusion]
    curve: _containers.RepeatedCompositeFieldContainer[CurvePoint]
    sizes: _containers.RepeatedCompositeFieldContainer[SizeEvaluation]
    job_kind: str
    frames_outside_labels: int
    tracking: TrackingEvaluation
    def __init__(self, job_id: _Optional[str] = ..., model: _Optional[str] = ..., labels_format: _Optional[str] = ..., min_confidence: _Optional[float] = ..., images: _Optional[int] = ..., images_without_labels: _Optional[int] = ..., unmatched_labels: _Optional[_Iterable[str]] = ..., unmatched_label_count: _Optional[int] = ..., unknown_classes: _Optional[_Iterable[str]] = ..., ground_truth: _Optional[int] = ..., detections: _Optional[int] = ..., map50_95: _Optional[float] = ..., map50: _Optional[float] = ..., map75: _Optional[float] = ..., precision: _Optional[float] = ..., recall: _Optional[float] = ..., classes: _Optional[_Iterable[_Union[ClassEvaluation, _Mapping]]] = ..., f1: _Optional[float] = ..., f1_confidence: _Optional[float] = ..., suggested_class_confidence: _Optional[_Mapping[str, float]] = ..., confusions: _Optional[_Iterable[_Union[Confusion, _Mapping]]] = ..., curve: _Optional[_Iterable[_Union[CurvePoint, _Mapping]]] = ..., sizes: _Optional[_Iterable[_Union[SizeEvaluation, _Mapping]]] = ..., job_kind: _Optional[str] = ..., frames_outside_labels: _Optional[int] = ..., tracking: _Optional[_Union[TrackingEvaluation, _Mapping]] = ...) -> None: ...

class TrackingEvaluation(_message.Message):
    __slots__ = ("mota", "motp", "idf1", "id_precision", "id_recall", "id_switches", "fragmentations", "ground_truth_tracks", "mostly_tracked", "partially_tracked", "mostly_lost", "false_positives", "misses")
    MOTA_FIELD_NUMBER: _ClassVar[int]
    MOTP_FIELD_NUMBER: _ClassVar[int]
    IDF1_FIELD_NUMBER: _ClassVar[int]
    ID_PRECISION_FIELD_NUMBER: _ClassVar[int]
    ID_RECALL_FIELD_NUMBER: _ClassVar[int]
    ID_SWITCHES_FIELD_NUMBER: _ClassVar[int]
    FRAGMENTATIONS_FIELD_NUMBER: _ClassVar[int]
    GROUND_TRUTH_TRACKS_FIELD_NUMBER: _ClassVar[int]
    MOSTLY_TRACKED_FIELD_NUMBER: _ClassVar[int]
    PARTIALLY_TRACKED_FIELD_NUMBER: _ClassVar[int]
    MOSTLY_LOST_FIELD_NUMBER: _ClassVar[int]
    FALSE_POSITIVES_FIELD_NUMBER: _ClassVar[int]
    MISSES_FIELD_NUMBER: _ClassVar[int]
    mota: float
    motp: float
    idf1: float
    id_precision: float
    id_recall: float
    id_switches: int
    fragmentations: int
    ground_truth_tracks: int
    mostly_tracked: int
    partially_tracked: int
    mostly_lost: int
    false_positives: int
    misses: int
    def __init__(self, mota: _Optional[float] = ..., motp: _Optional[float] = ..., idf1: _Optional[float] = ..., id_precision: _Optional[float] = ..., id_recall: _Optional[float] = ..., id_switches: _Optional[int] = ..., fragmentations: _Optional[int] = ..., ground_truth_tracks: _Optional[int] = ..., mostly_tracked: _Optional[int] = ..., partially_tracked: _Optional[int] = ..., mostly_lost: _Optional[int] = ..., false_positives: _Optional[int] = ..., misses: _Optional[int] = ...) -> None: ...

class SizeEvaluation(_message.Message):
    __slots__ = ("size", "ground_truth", "map50_95")
    SIZE_FIELD_NUMBER: _ClassVar[int]
    GROUND_TRUTH_FIELD_NUMBER: _ClassVar[int]
    MAP50_95_FIELD_NUMBER: _ClassVar[int]
    size: str
    ground_truth: int
    map50_95: float
    def __init__(self, size: _Optional[str] = ..., ground_truth: _Optional[int] = ..., map50_95: _Optional[float] = ...) -> None: ...

class Confusion(_message.Message):
    __slots__ = ("actual", "predicted", "count")
    ACTUAL_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    actual: str
    predicted: str
    count: int
    def __init__(self, actual: _Optional[str] = ..., predicted: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class VideoSampling(_message.Message):
    __slots__ = ("fps", "every")
    FPS_FIELD_NUMBER: _ClassVar[int]
    EVERY_FIELD_NUMBER: _ClassVar[int]
    fps: float
    every: int
    def __init__(self, fps: _Optional[float] = ..., every: _Optional[int] = ...) -> None: ...

class VideoUploadHeader(_message.Message):
    __slots__ = ("filename", "params", "sampling", "idempotency_key", "size_bytes", "track", "lines", "zones", "metadata", "redact")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    TRACK_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    ZONES_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    REDACT_FIELD_NUMBER: _ClassVar[int]
    filename: str
    params: DetectionParams
    sampling: VideoSampling
    idempotency_key: str
    size_bytes: int
    track: bool
    lines: _containers.RepeatedCompositeFieldContainer[CountingLine]
    zones: _containers.RepeatedCompositeFieldContainer[CountingZone]
    metadata: _containers.ScalarMap[str, str]
    redact: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, filename: _Optional[str] = ..., params: _Optional[_Union[DetectionParams, _Mapping]] = ..., sampling: _Optional[_Union[VideoSampling, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., size_bytes: _Optional[int] = ..., track: _Optional[bool] = ..., lines: _Optional[_Iterable[_Union[CountingLine, _Mapping]]] = ..., zones: _Optional[_Iterable[_Union[CountingZone, _Mapping]]] = ..., metadata: _Optional[_Mapping[str, str]] = ..., redact: _Optional[_Iterable[str]] = ...) -> None: ...

class VideoUpload(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: VideoUploadHeader
    chunk: bytes
    def __init__(self, header: _Optional[_Union[VideoUploadHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class VideoInfo(_message.Message):
    __slots__ = ("filename", "container", "codec", "width", "height", "duration_seconds", "frame_rate", "frame_count", "sampling", "sampled_frames", "size_bytes", "annotated_available", "tracked", "lines", "line_counts", "zones", "zone_counts", "redact")
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    CODEC_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    FRAME_RATE_FIELD_NUMBER: _ClassVar[int]
    FRAME_COUNT_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_FIELD_NUMBER: _ClassVar[int]
    SAMPLED_FRAMES_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    ANNOTATED_AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    TRACKED_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    LINE_COUNTS_FIELD_NUMBER: _ClassVar[int]
    ZONES_FIELD_NUMBER: _ClassVar[int]
    ZONE_COUNTS_FIELD_NUMBER: _ClassVar[int]
    REDACT_FIELD_NUMBER: _ClassVar[int]
    filename: str
    container: str
    codec: str
    width: int
    height: int
    duration_seconds: float
    frame_rate: float
    frame_count: int
    sampling: VideoSampling
    sampled_frames: int
    size_bytes: int
    annotated_available: bool
    tracked: bool
    lines: _containers.RepeatedCompositeFieldContainer[CountingLine]
    line_counts: _containers.RepeatedCompositeFieldContainer[LineCount]
    zones: _containers.RepeatedCompositeFieldContainer[CountingZone]
    zone_counts: _containers.RepeatedCompositeFieldContainer[ZoneCount]
    redact: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, filename: _Optional[str] = ..., container: _Optional[str] = ..., codec: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., duration_seconds: _Optional[float] = ..., frame_rate: _Optional[float] = ..., frame_count: _Optional[int] = ..., sampling: _Optional[_Union[VideoSampling, _Mapping]] = ..., sampled_frames: _Optional[int] = ..., size_bytes: _Optional[int] = ..., annotated_available: _Optional[bool] = ..., tracked: _Optional[bool] = ..., lines: _Optional[_Iterable[_Union[CountingLine, _Mapping]]] = ..., line_counts: _Optional[_Iterable[_Union[LineCount, _Mapping]]] = ..., zones: _Optional[_Iterable[_Union[CountingZone, _Mapping]]] = ..., zone_counts: _Optional[_Iterable[_Union[ZoneCount, _Mapping]]] = ..., redact: _Optional[_Iterable[str]] = ...) -> None: ...

class VideoFrame(_message.Message):
    __slots__ = ("frame_index", "timestamp_seconds", "objects", "error", "crossings")
    FRAME_INDEX_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_SECONDS_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CROSSINGS_FIELD_NUMBER: _ClassVar[int]
    frame_index: int
    timestamp_seconds: float
    objects: _containers.RepeatedCompositeFieldContainer[DetectedObject]
    error: str
    crossings: _containers.RepeatedCompositeFieldContainer[LineCrossing]
    def __init__(self, frame_index: _Optional[int] = ..., timestamp_seconds: _Optional[float] = ..., objects: _Optional[_Iterable[_Union[DetectedObject, _Mapping]]] = ..., error: _Optional[str] = ..., crossings: _Optional[_Iterable[_Union[LineCrossing, _Mapping]]] = ...) -> None: ...

class ListVideoFramesRequest(_message.Message):
    __slots__ = ("job_id", "page")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    page: _common_pb2.Page
    def __init__(self, job_id: _Optional[str] = ..., page: _Optional[_Union[_common_pb2.Page, _Mapping]] = ...) -> None: ...

class ListVideoFramesResponse(_message.Message):
    __slots__ = ("frames", "total", "limit", "offset", "width", "height")
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    frames: _containers.RepeatedCompositeFieldContainer[VideoFrame]
    total: int
    limit: int
    offset: int
    width: int
    height: int
    def __init__(self, frames: _Optional[_Iterable[_Union[VideoFrame, _Mapping]]] = ..., total: _Optional[int] = ..., limit: _Optional[int] = ..., offset: _Optional[int] = ..., width: _Optional[int] = ..., height: _Optional[int] = ...) -> None: ...

class GetAnnotatedVideoRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class VideoChunk(_message.Message):
    __slots__ = ("data", "content_type")
    DATA_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    content_type: str
    def __init__(self, data: _Optional[bytes] = ..., content_type: _Optional[str] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Model(_message.Message):
    __slots__ = ("name", "version", "task", "input_size", "classes", "precision", "device", "ready", "state", "reason", "default")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    INPUT_SIZE_FIELD_NUMBER: _ClassVar[int]
    CLASSES_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    task: str
    input_size: int
    classes: _containers.RepeatedScalarFieldContainer[str]
    precision: str
    device: str
    ready: bool
    state: str
    reason: str
    default: bool
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., task: _Optional[str] = ..., input_size: _Optional[int] = ..., classes: _Optional[_Iterable[str]] = ..., precision: _Optional[str] = ..., device: _Optional[str] = ..., ready: _Optional[bool] = ..., state: _Optional[str] = ..., reason: _Optional[str] = ..., default: _Optional[bool] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models", "default_model")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_MODEL_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[Model]
    default_model: str
    def __init__(self, models: _Optional[_Iterable[_Union[Model, _Mapping]]] = ..., default_model: _Optional[str] = ...) -> None: ...

class GetUsageRequest(_message.Message):
    __slots__ = ("user_id", "days")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    DAYS_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    days: int
    def __init__(self, user_id: _Optional[str] = ..., days: _Optional[int] = ...) -> None: ...

class UsageDay(_message.Message):
    __slots__ = ("date", "calls", "jobs")
    DATE_FIELD_NUMBER: _ClassVar[int]
    CALLS_FIELD_NUMBER: _ClassVar[int]
    JOBS_FIELD_NUMBER: _ClassVar[int]
    date: str
    calls: int
    jobs: int
    def __init__(self, date: _Optional[str] = ..., calls: _Optional[int] = ..., jobs: _Optional[int] = ...) -> None: ...

class Usage(_message.Message):
    __slots__ = ("user_id", "month_start", "renews_on", "month_images", "monthly_quota", "remaining", "custom_quota", "days", "held_images")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    MONTH_START_FIELD_NUMBER: _ClassVar[int]
    RENEWS_ON_FIELD_NUMBER: _ClassVar[int]
    MONTH_IMAGES_FIELD_NUMBER: _ClassVar[int]
    MONTHLY_QUOTA_FIELD_NUMBER: _ClassVar[int]
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_QUOTA_FIELD_NUMBER: _ClassVar[int]
    DAYS_FIELD_NUMBER: _ClassVar[int]
    HELD_IMAGES_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    month_start: str
    renews_on: str
    month_images: int
    monthly_quota: int
    remaining: int
    custom_quota: bool
    days: _containers.RepeatedCompositeFieldContainer[UsageDay]
    held_images: int
    def __init__(self, user_id: _Optional[str] = ..., month_start: _Optional[str] = ..., renews_on: _Optional[str] = ..., month_images: _Optional[int] = ..., monthly_quota: _Optional[int] = ..., remaining: _Optional[int] = ..., custom_quota: _Optional[bool] = ..., days: _Optional[_Iterable[_Union[UsageDay, _Mapping]]] = ..., held_images: _Optional[int] = ...) -> None: ...

class SetUsageQuotaRequest(_message.Message):
    __slots__ = ("user_id", "monthly_images")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    MONTHLY_IMAGES_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    monthly_images: int
    def __init__(self, user_id: _Optional[str] = ..., monthly_images: _Optional[int] = ...) -> None: ...

class GetRetentionRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class Retention(_message.Message):
    __slots__ = ("user_id", "days", "custom", "default_days")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    DAYS_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_DAYS_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    days: int
    custom: bool
    default_days: int
    def __init__(self, user_id: _Optional[str] = ..., days: _Optional[int] = ..., custom: _Optional[bool] = ..., default_days: _Optional[int] = ...) -> None: ...

class SetRetentionRequest(_message.Message):
    __slots__ = ("user_id", "days")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    DAYS_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    days: int
    def __init__(self, user_id: _Optional[str] = ..., days: _Optional[int] = ...) -> None: ...

class ShareLink(_message.Message):
    __slots__ = ("id", "detection_id", "created_at", "expires_at", "revoked_at", "active", "views", "last_viewed_at", "token_prefix", "redact", "job_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    DETECTION_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    VIEWS_FIELD_NUMBER: _ClassVar[int]
    LAST_VIEWED_AT_FIELD_NUMBER: _ClassVar[int]
    TOKEN_PREFIX_FIELD_NUMBER: _ClassVar[int]
    REDACT_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    detection_id: str
    created_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    revoked_at: _timestamp_pb2.Timestamp
    active: bool
    views: int
    last_viewed_at: _timestamp_pb2.Timestamp
    token_prefix: str
    redact: _containers.RepeatedScalarFieldContainer[str]
    job_id: str
    def __init__(self, id: _Optional[str] = ..., detection_id: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revoked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., active: _Optional[bool] = ..., views: _Optional[int] = ..., last_viewed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., token_prefix: _Optional[str] = ..., redact: _Optional[_Iterable[str]] = ..., job_id: _Optional[str] = ...) -> None: ...

class CreateShareLinkRequest(_message.Message):
    __slots__ = ("detection_id", "job_id", "expires_in_days", "redact")
    DETECTION_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_IN_DAYS_FIELD_NUMBER: _ClassVar[int]
    REDACT_FIELD_NUMBER: _ClassVar[int]
    detection_id: str
    job_id: str
    expires_in_days: int
    redact: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, detection_id: _Optional[str] = ..., job_id: _Optional[str] = ..., expires_in_days: _Optional[int] = ..., redact: _Optional[_Iterable[str]] = ...) -> None: ...

class CreatedShareLink(_message.Message):
    __slots__ = ("link", "token")
    LINK_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    link: ShareLink
    token: str
    def __init__(self, link: _Optional[_Union[ShareLink, _Mapping]] = ..., token: _Optional[str] = ...) -> None: ...

class ListShareLinksRequest(_message.Message):
    __slots__ = ("detection_id", "page", "job_id")
    DETECTION_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    detection_id: str
    page: _common_pb2.Page
    job_id: str
    def __init__(self, detection_id: _Optional[str] = ..., page: _Optional[_Union[_common_pb2.Page, _Mapping]] = ..., job_id: _Optional[str] = ...) -> None: ...

class ListShareLinksResponse(_message.Message):
    __slots__ = ("links", "total", "limit", "offset")
    LINKS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    links: _containers.RepeatedCompositeFieldContainer[ShareLink]
    total: int
    limit: int
    offset: int
    def __init__(self, links: _Optional[_Iterable[_Union[ShareLink, _Mapping]]] = ..., total: _Optional[int] = ..., limit: _Optional[int] = ..., offset: _Optional[int] = ...) -> None: ...

class RevokeShareLinkRequest(_message.Message):
    __slots__ = ("share_link_id",)
    SHARE_LINK_ID_FIELD_NUMBER: _ClassVar[int]
    share_link_id: str
    def __init__(self, share_link_id: _Optional[str] = ...) -> None: ...

class GetSharedRequest(_message.Message):
    __slots__ = ("token",)
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    token: str
    def __init__(self, token: _Optional[str] = ...) -> None: ...

class Shared(_message.Message):
    __slots__ = ("detection", "video")
    DETECTION_FIELD_NUMBER: _ClassVar[int]
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    detection: SharedDetection
    video: SharedVideo
    def __init__(self, detection: _Optional[_Union[SharedDetection, _Mapping]] = ..., video: _Optional[_Union[SharedVideo, _Mapping]] = ...) -> None: ...

class SharedVideo(_message.Message):
    __slots__ = ("video", "class_counts", "model", "model_version", "completed_at", "expires_at")
    class ClassCountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    CLASS_COUNTS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    video: VideoInfo
    class_counts: _containers.ScalarMap[str, int]
    model: str
    model_version: str
    completed_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, video: _Optional[_Union[VideoInfo, _Mapping]] = ..., class_counts: _Optional[_Mapping[str, int]] = ..., model: _Optional[str] = ..., model_version: _Optional[str] = ..., completed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetSharedVideoRequest(_message.Message):
    __slots__ = ("token",)
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    token: str
    def __init__(self, token: _Optional[str] = ...) -> None: ...

class SharedDetection(_message.Message):
    __slots__ = ("width", "height", "objects", "model", "model_version", "detected_at", "expires_at")
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    DETECTED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    width: int
    height: int
    objects: _containers.RepeatedCompositeFieldContainer[DetectedObject]
    model: str
    model_version: str
    detected_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, width: _Optional[int] = ..., height: _Optional[int] = ..., objects: _Optional[_Iterable[_Union[DetectedObject, _Mapping]]] = ..., model: _Optional[str] = ..., model_version: _Optional[str] = ..., detected_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetSharedImageRequest(_message.Message):
    __slots__ = ("token", "annotated")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    ANNOTATED_FIELD_NUMBER: _ClassVar[int]
    token: str
    annotated: bool
    def __init__(self, token: _Optional[str] = ..., annotated: _Optional[bool] = ...) -> None: ...
