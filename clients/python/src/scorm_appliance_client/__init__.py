"""A small typed client for the scorm-appliance HTTP API: `Client` (sync) and `AsyncClient` (asyncio).

    from scorm_appliance_client import Client

    with Client("http://127.0.0.1:8080", api_key) as client:
        package = client.wait_until_ready(client.upload_package("course.zip").id)
        session = client.create_session(package.id, "learner-42", learner_name="Ann Learner")
        print(session.launch_url)

See docs/integration.md in the appliance's repository for the full walk-through.
"""

from .client import AsyncClient, Client, __version__, apaginate, paginate
from .errors import (
    ApiError,
    CmiValidationError,
    Forbidden,
    InsufficientStorage,
    InternalError,
    InvalidPackage,
    MethodNotAllowed,
    NotFound,
    PackageFailed,
    PackageNotReady,
    PayloadTooLarge,
    QuotaExceeded,
    RateLimited,
    ScormApplianceError,
    SequencingTooCostly,
    SessionExpired,
    Unauthorized,
    UnsafeArchive,
    ValidationError,
    VersionConflict,
    WaitTimeout,
    WebhookVerificationError,
)
from .models import (
    AnalyticsSummary,
    Delivery,
    Launch,
    Learner,
    Package,
    PackageAnalytics,
    PackageVersion,
    Page,
    RateLimit,
    Score,
    Session,
    Webhook,
    WebhookEvent,
    XapiCredential,
)
from .webhooks import sign_webhook, verify_webhook

__all__ = [
    "AnalyticsSummary",
    "ApiError",
    "AsyncClient",
    "Client",
    "CmiValidationError",
    "Delivery",
    "Forbidden",
    "InsufficientStorage",
    "InternalError",
    "InvalidPackage",
    "Launch",
    "Learner",
    "MethodNotAllowed",
    "NotFound",
    "Package",
    "PackageAnalytics",
    "PackageFailed",
    "PackageNotReady",
    "PackageVersion",
    "Page",
    "PayloadTooLarge",
    "QuotaExceeded",
    "RateLimit",
    "RateLimited",
    "Score",
    "ScormApplianceError",
    "SequencingTooCostly",
    "Session",
    "SessionExpired",
    "Unauthorized",
    "UnsafeArchive",
    "ValidationError",
    "VersionConflict",
    "WaitTimeout",
    "Webhook",
    "WebhookEvent",
    "WebhookVerificationError",
    "XapiCredential",
    "__version__",
    "apaginate",
    "paginate",
    "sign_webhook",
    "verify_webhook",
]
