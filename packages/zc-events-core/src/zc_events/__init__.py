"""zc-events: call other services over a message broker with HTTP-style verbs.

import zc_events

@zc_events.handler('add')
def add(request):
    return {'answer': request.data['x'] + request.data['y']}

zc_events.get('add', data={'x': 1, 'y': 1}).data   # {'answer': 2}
"""

from ._api import (
    call,
    call_no_wait,
    configure,
    default_client,
    delete,
    delete_no_wait,
    get,
    get_no_wait,
    get_settings,
    patch,
    patch_no_wait,
    post,
    post_no_wait,
    put,
    put_no_wait,
    reset,
)
from ._async_backend import AsyncBackend, ThreadedAsyncBackend, create_async_backend
from ._async_client import AsyncBatch, AsyncEventClient
from ._backend import Backend, BaseBackend, DeadLetter, batch_error, create_backend
from ._client import BaseClient, Batch, EventClient
from ._context import CAUSED_BY_HEADER, current_request
from ._envelope import Envelope, new_id
from ._exceptions import (
    BackendNotFound,
    ConfigurationError,
    EnvelopeError,
    NoRouteError,
    PublishError,
    RemoteError,
    ReplyError,
    RequestTimeout,
    SignatureError,
    ZcEventsError,
)
from ._handlers import HEALTH_PREFIX, Dispatcher, HandlerRegistry, handler, handlers, health_key
from ._json import dumps as json_dumps
from ._json import loads as json_loads
from ._mask import mask_secrets
from ._middleware import HmacSigning, Middleware
from ._registry import import_string
from ._request import Request
from ._response import Response
from ._settings import Settings
from ._worker import import_modules, serve

__version__ = "1.0.0"

__all__ = [
    "CAUSED_BY_HEADER",
    "HEALTH_PREFIX",
    "AsyncBackend",
    "AsyncBatch",
    "AsyncEventClient",
    "Backend",
    "BackendNotFound",
    "BaseBackend",
    "BaseClient",
    "Batch",
    "ConfigurationError",
    "DeadLetter",
    "Dispatcher",
    "Envelope",
    "EnvelopeError",
    "EventClient",
    "HandlerRegistry",
    "HmacSigning",
    "Middleware",
    "NoRouteError",
    "PublishError",
    "RemoteError",
    "ReplyError",
    "Request",
    "RequestTimeout",
    "Response",
    "Settings",
    "SignatureError",
    "ThreadedAsyncBackend",
    "ZcEventsError",
    "batch_error",
    "call",
    "call_no_wait",
    "configure",
    "create_async_backend",
    "create_backend",
    "current_request",
    "default_client",
    "delete",
    "delete_no_wait",
    "get",
    "get_no_wait",
    "get_settings",
    "handler",
    "handlers",
    "health_key",
    "import_modules",
    "import_string",
    "json_dumps",
    "json_loads",
    "mask_secrets",
    "new_id",
    "patch",
    "patch_no_wait",
    "post",
    "post_no_wait",
    "put",
    "put_no_wait",
    "reset",
    "serve",
]
