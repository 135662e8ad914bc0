"""Personas: the catalogue the API answers and the entries of config/personas.yaml."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from chatapp.schemas.base import BaseSchema


class PersonaSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    description = fields.String(required=True)
    greeting = fields.String(required=True)


class PersonaListSchema(Schema):
    personas = fields.List(fields.Nested(PersonaSchema), required=True)
    count = fields.Integer(required=True)


class StrictFloat(fields.Float):
    """A YAML number only: ``temperature: "0.5"`` (a string) is a mistake worth naming."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        if isinstance(value, str):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class PersonaFileEntrySchema(BaseSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    description = fields.String(required=True, validate=validate.Length(min=1, max=500))
    system_prompt = fields.String(required=True, validate=validate.Length(min=1))
    greeting = fields.String(required=True, validate=validate.Length(min=1, max=1000))
    model = fields.String(
        validate=validate.Length(min=1, max=200),
        metadata={"description": "Overrides CHATAPP_LLM_MODEL for this persona."},
    )
    temperature = StrictFloat(validate=validate.Range(min=0, max=2))
    max_tokens = fields.Integer(strict=True, validate=validate.Range(min=1, max=1_000_000))


persona_list_schema = PersonaListSchema()
persona_file_entry_schema = PersonaFileEntrySchema()
