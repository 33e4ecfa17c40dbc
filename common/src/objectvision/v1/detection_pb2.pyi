import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from objectvision.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATUS_UNSPECIFIED: _ClassVar[JobStatus]
    JOB_STATUS_PENDING: _ClassVar[JobStatus]
    JOB_STATUS_PROCESSING: _ClassVar[JobStatus]
    JOB_STATUS_COMPLETED: _ClassVar[JobStatus]
    JOB_STATUS_FAILED: _ClassVar[JobStatus]

class DetectionStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DETECTION_STATUS_UNSPECIFIED: _ClassVar[DetectionStatus]
    DETECTION_STATUS_PENDING: _ClassVar[DetectionStatus]
    DETECTION_STATUS_COMPLETED: _ClassVar[DetectionStatus]
    DETECTION_STATUS_FAILED: _ClassVar[DetectionStatus]
JOB_STATUS_UNSPECIFIED: JobStatus
JOB_STATUS_PENDING: JobStatus
JOB_STATUS_PROCESSING: JobStatus
JOB_STATUS_COMPLETED: JobStatus
JOB_STATUS_FAILED: JobStatus
DETECTION_STATUS_UNSPECIFIED: DetectionStatus
DETECTION_STATUS_PENDING: DetectionStatus
DETECTION_STATUS_COMPLETED: DetectionStatus
DETECTION_STATUS_FAILED: DetectionStatus

class DetectionParams(_message.Message):
    __slots__ = ("confidence", "iou", "classes", "max_detections")
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    IOU_FIELD_NUMBER: _ClassVar[int]
    CLASSES_FIELD_NUMBER: _ClassVar[int]
    MAX_DETECTIONS_FIELD_NUMBER: _ClassVar[int]
    confidence: float
    iou: float
    classes: _containers.RepeatedScalarFieldContainer[str]
    max_detections: int
    def __init__(self, confidence: _Optional[float] = ..., iou: _Optional[float] = ..., classes: _Optional[_Iterable[str]] = ..., max_detections: _Optional[int] = ...) -> None: ...

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
    __slots__ = ("class_name", "class_id", "confidence", "box")
    CLASS_NAME_FIELD_NUMBER: _ClassVar[int]
    CLASS_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    class_name: str
    class_id: int
    confidence: float
    box: BoundingBox
    def __init__(self, class_name: _Optional[str] = ..., class_id: _Optional[int] = ..., confidence: _Optional[float] = ..., box: _Optional[_Union[BoundingBox, _Mapping]] = ...) -> None: ...

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
    __slots__ = ("detection_id", "width", "height", "objects", "timings", "filename", "cached")
    DETECTION_ID_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    detection_id: str
    width: int
    height: int
    objects: _containers.RepeatedCompositeFieldContainer[DetectedObject]
    timings: Timings
    filename: str
    cached: bool
    def __init__(self, detection_id: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., objects: _Optional[_Iterable[_Union[DetectedObject, _Mapping]]] = ..., timings: _Optional[_Union[Timings, _Mapping]] = ..., filename: _Optional[str] = ..., cached: _Optional[bool] = ...) -> None: ...

class DetectRequest(_message.Message):
    __slots__ = ("images", "params", "store")
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    STORE_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedCompositeFieldContainer[ImageInput]
    params: DetectionParams
    store: bool
    def __init__(self, images: _Optional[_Iterable[_Union[ImageInput, _Mapping]]] = ..., params: _Optional[_Union[DetectionParams, _Mapping]] = ..., store: _Optional[bool] = ...) -> None: ...

class DetectResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ImageResult]
    def __init__(self, results: _Optional[_Iterable[_Union[ImageResult, _Mapping]]] = ...) -> None: ...

class Frame(_message.Message):
    __slots__ = ("sequence", "image", "params")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    image: ImageInput
    params: DetectionParams
    def __init__(self, sequence: _Optional[int] = ..., image: _Optional[_Union[ImageInput, _Mapping]] = ..., params: _Optional[_Union[DetectionParams, _Mapping]] = ...) -> None: ...

class FrameDetections(_message.Message):
    __slots__ = ("sequence", "result", "error")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    result: ImageResult
    error: str
    def __init__(self, sequence: _Optional[int] = ..., result: _Optional[_Union[ImageResult, _Mapping]] = ..., error: _Optional[str] = ...) -> None: ...

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
    __slots__ = ("id", "status", "total", "processed", "failed", "items", "created_at", "updated_at", "completed_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    PROCESSED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    status: JobStatus
    total: int
    processed: int
    failed: int
    items: _containers.RepeatedCompositeFieldContainer[JobItem]
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    completed_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., status: _Optional[_Union[JobStatus, str]] = ..., total: _Optional[int] = ..., processed: _Optional[int] = ..., failed: _Optional[int] = ..., items: _Optional[_Iterable[_Union[JobItem, _Mapping]]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., completed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SubmitJobRequest(_message.Message):
    __slots__ = ("images", "params", "idempotency_key", "refused")
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedCompositeFieldContainer[ImageInput]
    params: DetectionParams
    idempotency_key: str
    refused: _containers.RepeatedCompositeFieldContainer[RefusedImage]
    def __init__(self, images: _Optional[_Iterable[_Union[ImageInput, _Mapping]]] = ..., params: _Optional[_Union[DetectionParams, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., refused: _Optional[_Iterable[_Union[RefusedImage, _Mapping]]] = ...) -> None: ...

class RefusedImage(_message.Message):
    __slots__ = ("filename", "reason")
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    filename: str
    reason: str
    def __init__(self, filename: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class ListDetectionsRequest(_message.Message):
    __slots__ = ("page", "class_filter", "since", "until")
    PAGE_FIELD_NUMBER: _ClassVar[int]
    CLASS_FILTER_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    page: _common_pb2.Page
    class_filter: str
    since: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    def __init__(self, page: _Optional[_Union[_common_pb2.Page, _Mapping]] = ..., class_filter: _Optional[str] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Detection(_message.Message):
    __slots__ = ("id", "status", "job_id", "result", "created_at", "updated_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    status: DetectionStatus
    job_id: str
    result: ImageResult
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., status: _Optional[_Union[DetectionStatus, str]] = ..., job_id: _Optional[str] = ..., result: _Optional[_Union[ImageResult, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

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

class GetAnnotatedImageRequest(_message.Message):
    __slots__ = ("detection_id", "annotated")
    DETECTION_ID_FIELD_NUMBER: _ClassVar[int]
    ANNOTATED_FIELD_NUMBER: _ClassVar[int]
    detection_id: str
    annotated: bool
    def __init__(self, detection_id: _Optional[str] = ..., annotated: _Optional[bool] = ...) -> None: ...

class ImageChunk(_message.Message):
    __slots__ = ("data", "content_type")
    DATA_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    content_type: str
    def __init__(self, data: _Optional[bytes] = ..., content_type: _Optional[str] = ...) -> None: ...
