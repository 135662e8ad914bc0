"""Search: the query string and the answer."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from chatapp.schemas.base import QueryBoolean, QuerySchema
from chatapp.schemas.sessions import USER_ID_LENGTH
from chatapp.storage.search_engine import ENGINES
from chatapp.storage.search_text import searchable_pattern

QUERY_MAX_LENGTH = 200  # characters of `q`; longer is a 400 (services/search.py says why)


class SearchQuerySchema(QuerySchema):
    # Checked by services/search.py, which answers 400 for a query it cannot search; the
    # document states the same limits (minLength, maxLength, pattern).
    q = fields.String(
        required=True,
        metadata={
            "description": "Words to find, case and accents aside; all must be in a session (its title, "
            'name, description or messages). `"a phrase"` in a row, `proj*` any word it begins. '
            f"At most {QUERY_MAX_LENGTH} characters; an empty query, unbalanced quotes or a query of "
            "no letters or digits (only `*`) is a 400.",
            "minLength": 1,
            "maxLength": QUERY_MAX_LENGTH,
            "pattern": searchable_pattern(),
        },
    )
    persona = fields.String(validate=validate.Length(min=1, max=64), metadata={"description": "Only this persona's."})
    archived = QueryBoolean(
        load_default=None,
        metadata={"description": "true: only archived sessions; false: only live ones; both if absent."},
    )
    from_ = fields.Date(data_key="from", metadata={"description": "Last activity on or after this day (UTC)."})
    to = fields.Date(metadata={"description": "Last activity on or before this day (UTC)."})
    user_id = fields.String(
        validate=USER_ID_LENGTH, metadata={"description": "Operators: only this user's (everyone's if absent)."}
    )
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=50))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=1000))


class SnippetSchema(Schema):
    message_index = fields.Integer(required=True, metadata={"description": "The message's index in the session."})
    role = fields.String(required=True)
    text = fields.String(
        required=True, metadata={"description": "About 160 characters around a hit; … where it was cut. Plain text."}
    )
    highlights = fields.List(
        fields.List(fields.Integer(), validate=validate.Length(equal=2)),
        required=True,
        metadata={"description": "[start, end) of each hit in `text`, counted in Unicode code points."},
    )


class SearchResultSchema(Schema):
    session_id = fields.String(required=True)
    title = fields.String(
        required=True, allow_none=True, metadata={"description": "The session's name, or its title; null if neither."}
    )
    description = fields.String(required=True, allow_none=True)
    persona = fields.String(required=True)
    archived = fields.Boolean(required=True)
    last_activity = fields.String(required=True, metadata={"format": "date-time", "description": "Last write (UTC)."})
    message_count = fields.Integer(required=True)
    user_id = fields.String(required=True)
    snippets = fields.List(
        fields.Nested(SnippetSchema),
        required=True,
        metadata={"description": "Up to 3 messages holding the most of the words (none for a title-only hit)."},
    )


class SearchSchema(Schema):
    results = fields.List(fields.Nested(SearchResultSchema), required=True, metadata={"description": "Best first."})
    count = fields.Integer(required=True, metadata={"description": "How many sessions match in all."})
    limit = fields.Integer(required=True)
    offset = fields.Integer(required=True)
    next_offset = fields.Integer(required=True, allow_none=True, metadata={"description": "null on the last page."})
    engine = fields.String(
        required=True,
        validate=validate.OneOf(ENGINES),
        metadata={"description": "The engine that answered: the app's own index, or the Redis Query Engine (FT.*)"},
    )


search_query_schema = SearchQuerySchema()
search_schema = SearchSchema()
