"""AWS helpers for zc-events: S3 helpers, email and other legacy notifications, and the S3
claim-check middleware.

    from zc_events_aws import save_string_contents_to_s3, read_s3_file_as_string, send_email

    key = save_string_contents_to_s3('hello', 'my-bucket')
    read_s3_file_as_string('my-bucket', key, delete=True)   # b'hello'

Large payloads: ``ZC_EVENTS_MIDDLEWARE=["s3_claim_check"]`` with
``ZC_EVENTS_MIDDLEWARE_OPTIONS={"s3_claim_check": {"bucket": "my-bucket"}}`` on every service.
S3 is found through ``AWS_S3_ENDPOINT_URL``, ``AWS_REGION``, ``AWS_ACCESS_KEY_ID`` and
``AWS_SECRET_ACCESS_KEY`` (settings or environment), else boto3's default chain.
"""

from ._claim_check import (
    DEFAULT_PREFIX,
    DEFAULT_THRESHOLD,
    MARKER,
    ClaimCheckError,
    S3ClaimCheck,
    put_claim_check_lifecycle,
)
from ._email import (
    DEFAULT_EMAIL_BUCKET,
    EMAIL_EVENT,
    EMAIL_ROUTING_KEY,
    InvalidEmail,
    email_notification_message,
    send_email,
)
from ._notifications import (
    emit_microservice_email_notification,
    emit_microservice_push_notification,
    emit_microservice_slack_notification,
    emit_microservice_text_notification,
    send_notification,
)
from ._s3 import (
    S3IOException,
    S3Settings,
    read_s3_file_as_string,
    reset_clients,
    s3_client,
    save_file_contents_to_s3,
    save_string_contents_to_s3,
)

__version__ = "1.0.0"

__all__ = [
    "DEFAULT_EMAIL_BUCKET",
    "DEFAULT_PREFIX",
    "DEFAULT_THRESHOLD",
    "EMAIL_EVENT",
    "EMAIL_ROUTING_KEY",
    "MARKER",
    "ClaimCheckError",
    "InvalidEmail",
    "S3ClaimCheck",
    "S3IOException",
    "S3Settings",
    "email_notification_message",
    "emit_microservice_email_notification",
    "emit_microservice_push_notification",
    "emit_microservice_slack_notification",
    "emit_microservice_text_notification",
    "put_claim_check_lifecycle",
    "read_s3_file_as_string",
    "reset_clients",
    "s3_client",
    "save_file_contents_to_s3",
    "save_string_contents_to_s3",
    "send_email",
    "send_notification",
]
