"""The keywords of each type, by which Everit's loader sorts an object's keywords into schema classes,
and the keywords whose meaning depends on where a schema sits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

__all__ = [
    "ARRAY_KEYWORDS",
    "KEYWORDS_OF_TYPE",
    "NUMBER_KEYWORDS",
    "OBJECT_KEYWORDS",
    "POSITIONAL",
    "STRING_KEYWORDS",
]

# Keywords whose meaning depends on the document and position of the schema holding them.
POSITIONAL: Final = frozenset({"$ref", "$dynamicRef", "$recursiveRef", "$dynamicAnchor", "$recursiveAnchor"})
OBJECT_KEYWORDS: Final = frozenset(
    {
        "properties",
        "required",
        "minProperties",
        "maxProperties",
        "dependencies",
        "dependentRequired",
        "dependentSchemas",
        "patternProperties",
        "additionalProperties",
        "propertyNames",
        "unevaluatedProperties",
    }
)
ARRAY_KEYWORDS: Final = frozenset(
    {
        "items",
        "prefixItems",
        "additionalItems",
        "minItems",
        "maxItems",
        "uniqueItems",
        "contains",
        "minContains",
        "maxContains",
        "unevaluatedItems",
    }
)
NUMBER_KEYWORDS: Final = frozenset(
    {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}
)
STRING_KEYWORDS: Final = frozenset({"minLength", "maxLength", "pattern", "format"})
KEYWORDS_OF_TYPE: Final[Mapping[str, set[str]]] = {
    "object": set(OBJECT_KEYWORDS),
    "array": set(ARRAY_KEYWORDS),
    "integer": set(NUMBER_KEYWORDS),
    "number": set(NUMBER_KEYWORDS),
    "string": set(STRING_KEYWORDS),
}
