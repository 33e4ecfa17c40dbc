"""Python client for the ObjectVision REST API, and the `objectvision` command line.

from objectvision_client import Client

with Client("http://127.0.0.1:8000") as client:
    client.login("me@example.com", "secret password")
    result = client.detect_image("bus.jpg")
    print(result.class_counts())
"""

from objectvision_client.client import DEFAULT_API_URL, AsyncClient, Client
from objectvision_client.errors import ObjectVisionConnectionError, ObjectVisionError
from objectvision_client.models import (
    AccountsPage,
    AccountStatus,
    ApiKey,
    BoundingBox,
    CountingLine,
    CountingZone,
    CreatedApiKey,
    CreatedWebhook,
    DetectedObject,
    DetectionResult,
    ExportedFile,
    HistoryDeletion,
    HistoryPage,
    HistorySummary,
    Job,
    JobItem,
    JobsPage,
    LineCount,
    LineCrossing,
    Retention,
    ServedModel,
    Session,
    SignUpAccepted,
    StoredDetection,
    TokenPair,
    TwoFactorEnrollment,
    Usage,
    UsageDay,
    User,
    VideoFrame,
    VideoFramesPage,
    VideoInfo,
    Webhook,
    WebhookDeliveriesPage,
    WebhookDelivery,
    ZoneCount,
)
from objectvision_client.operations import DetectionParams
from objectvision_client.retry import RetryPolicy

__all__ = [
    "DEFAULT_API_URL",
    "AccountStatus",
    "AccountsPage",
    "ApiKey",
    "AsyncClient",
    "BoundingBox",
    "Client",
    "CountingLine",
    "CountingZone",
    "CreatedApiKey",
    "CreatedWebhook",
    "DetectedObject",
    "DetectionParams",
    "DetectionResult",
    "ExportedFile",
    "HistoryDeletion",
    "HistoryPage",
    "HistorySummary",
    "Job",
    "JobItem",
    "JobsPage",
    "LineCount",
    "LineCrossing",
    "ObjectVisionConnectionError",
    "ObjectVisionError",
    "Retention",
    "RetryPolicy",
    "ServedModel",
    "Session",
    "SignUpAccepted",
    "StoredDetection",
    "TokenPair",
    "TwoFactorEnrollment",
    "Usage",
    "UsageDay",
    "User",
    "VideoFrame",
    "VideoFramesPage",
    "VideoInfo",
    "Webhook",
    "WebhookDeliveriesPage",
    "WebhookDelivery",
    "ZoneCount",
]
