"""Every marshmallow schema, by area: request parsing, response shapes and the personas file.

The same classes generate the OpenAPI document, so what is validated is what is documented.
Reusable instances are made once, in the module of their area, and re-exported here.
"""

from __future__ import annotations

from chatapp.schemas.common import (
    ErrorSchema,
    error_schema,
    health_schema,
)
from chatapp.schemas.live import events_query_schema, reply_started_schema, stop_schema
from chatapp.schemas.messages import (
    MessageSchema,
    message_create_schema,
    message_exchange_schema,
    message_page_schema,
    message_schema,
    message_version_schema,
    messages_query_schema,
    reply_schema,
    version_shown_schema,
)
from chatapp.schemas.personas import (
    persona_file_entry_schema,
    persona_list_schema,
)
from chatapp.schemas.search import search_query_schema, search_schema
from chatapp.schemas.sessions import (
    bulk_answer_schema,
    bulk_schema,
    clear_status_schema,
    history_query_schema,
    history_schema,
    session_create_schema,
    session_list_query_schema,
    session_list_schema,
    session_patch_schema,
    session_schema,
    status_schema,
)
from chatapp.schemas.shares import (
    share_copy_schema,
    share_create_schema,
    share_list_schema,
    share_schema,
    shared_conversation_schema,
    shared_query_schema,
)

__all__ = [
    "MessageSchema",
    "ErrorSchema",
    "bulk_answer_schema",
    "bulk_schema",
    "clear_status_schema",
    "error_schema",
    "events_query_schema",
    "health_schema",
    "history_query_schema",
    "history_schema",
    "message_create_schema",
    "message_exchange_schema",
    "message_page_schema",
    "message_schema",
    "message_version_schema",
    "messages_query_schema",
    "persona_file_entry_schema",
    "persona_list_schema",
    "reply_schema",
    "reply_started_schema",
    "search_query_schema",
    "search_schema",
    "session_create_schema",
    "session_list_query_schema",
    "session_list_schema",
    "session_patch_schema",
    "session_schema",
    "share_copy_schema",
    "share_create_schema",
    "share_list_schema",
    "share_schema",
    "shared_conversation_schema",
    "shared_query_schema",
    "status_schema",
    "stop_schema",
    "version_shown_schema",
]
