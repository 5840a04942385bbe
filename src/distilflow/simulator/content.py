"""Deterministic answer generation and the word-based token count.

Everything here is a pure function of a sha256 digest so that the same request
always yields byte-identical answers, independent of Python's hash seed or
``random`` implementation details.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

# Plain, whitespace-free words: a token is exactly one vocabulary word.
VOCABULARY = (
    "the a data model answer question example result value system process method "
    "simple clear useful small large quick careful general specific common important "
    "first second final main other new good better best short long "
    "text image task step idea point reason detail summary list table record "
    "is are was can will should may must often usually "
    "and or but because so while when where which that "
    "shows explains describes contains provides suggests improves requires supports returns "
    "user input output sample batch score label topic context source"
).split()

MALFORMED_TEXT = "<<malformed>>"
#: The longest plain answer, in words (tokens); answers have 3..MAX_ANSWER_WORDS words.
MAX_ANSWER_WORDS = 40
_WORD_RE = re.compile(r"\S+")
_MAX_SCHEMA_DEPTH = 12


def count_tokens(text: str) -> int:
    """Tokens are whitespace-separated words; this is the contract for usage numbers."""
    return len(text.split())


def truncate_words(text: str, max_words: int | None) -> tuple[str, bool]:
    """Cut ``text`` after its ``max_words``-th word, keeping the original spacing."""
    if max_words is None:
        return text, False
    for position, match in enumerate(_WORD_RE.finditer(text), start=1):
        if position == max_words:
            end = match.end()
            return text[:end], end < len(text.rstrip())
    return text, False


def answer_digest(model: str, prompt: Any, index: int, seed: int | None) -> bytes:
    """Digest identifying one choice: model, the prompt JSON, choice index and seed."""
    key: dict[str, Any] = {"model": model, "input": prompt, "index": index}
    if seed is not None:
        key["seed"] = seed
    blob = json.dumps(key, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).digest()


class HashStream:
    """An endless, reproducible stream of choices derived from one digest."""

    def __init__(self, digest: bytes) -> None:
        self._digest = digest
        self._counter = 0
        self._buffer = b""

    def _take(self, count: int) -> bytes:
        while len(self._buffer) < count:
            block = self._digest + self._counter.to_bytes(8, "big")
            self._buffer += hashlib.sha256(block).digest()
            self._counter += 1
        taken, self._buffer = self._buffer[:count], self._buffer[count:]
        return taken

    def below(self, bound: int) -> int:
        """An int in [0, bound); the tiny modulo bias is irrelevant here."""
        return int.from_bytes(self._take(4), "big") % max(bound, 1)

    def between(self, low: int, high: int) -> int:
        return low + self.below(high - low + 1)

    def unit(self) -> float:
        return int.from_bytes(self._take(4), "big") / 2**32

    def words(self, count: int) -> list[str]:
        return [VOCABULARY[self.below(len(VOCABULARY))] for _ in range(count)]


def answer_text(digest: bytes) -> str:
    """A 3..MAX_ANSWER_WORDS word sentence; the length is taken from the digest itself."""
    stream = HashStream(digest)
    words = stream.words(stream.between(3, MAX_ANSWER_WORDS))
    words[0] = words[0].capitalize()
    return " ".join(words) + "."


def json_object_answer(digest: bytes) -> str:
    return json.dumps({"response": answer_text(digest)}, ensure_ascii=False)


def json_schema_answer(digest: bytes, schema: Any) -> str:
    value = _SchemaFaker(schema, HashStream(digest)).value(schema, 0)
    # Default separators keep "key": value pairs as separate words for counting.
    return json.dumps(value, ensure_ascii=False)


def malformed_json(content: str) -> str:
    """A truncated prefix of ``content`` that no JSON parser accepts."""
    prefix = content[: max(1, len(content) // 2)]
    try:
        json.loads(prefix)
    except ValueError:
        return prefix
    return '{"response": "'


class _SchemaFaker:
    """Builds a value satisfying the common subset of JSON Schema used for structured output."""

    def __init__(self, root: Any, stream: HashStream) -> None:
        self.root = root
        self.stream = stream

    def value(self, schema: Any, depth: int) -> Any:
        if not isinstance(schema, dict) or depth > _MAX_SCHEMA_DEPTH:
            return {}
        if "$ref" in schema:
            return self.value(self._resolve(schema["$ref"]), depth + 1)
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return schema["enum"][self.stream.below(len(schema["enum"]))]
        for keyword in ("anyOf", "oneOf"):
            if isinstance(schema.get(keyword), list) and schema[keyword]:
                return self.value(schema[keyword][0], depth + 1)
        if isinstance(schema.get("allOf"), list) and schema["allOf"]:
            return self.value(self._merge_all_of(schema), depth + 1)

        kind = schema.get("type")
        if isinstance(kind, list):
            non_null = [k for k in kind if k != "null"]
            kind = non_null[0] if non_null else "null"
        if kind is None:
            kind = "object" if "properties" in schema else "array" if "items" in schema else None
        generator = {
            "object": self._object,
            "array": self._array,
            "integer": self._integer,
            "number": self._number,
            "string": self._string,
        }.get(kind)
        if generator is not None:
            return generator(schema, depth)
        if kind == "boolean":
            return self.stream.below(2) == 1
        if kind == "null":
            return None
        return {}

    def _resolve(self, ref: Any) -> Any:
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return {}
        node: Any = self.root
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                return {}
            node = node[part]
        return node

    def _merge_all_of(self, schema: dict) -> dict:
        # Resolve refs first so object parts from $defs merge with local ones.
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            part = self._resolve(part["$ref"]) if isinstance(part, dict) and "$ref" in part else part
            if not isinstance(part, dict):
                continue
            for key, value in part.items():
                if key == "properties":
                    merged["properties"] = {**merged.get("properties", {}), **value}
                elif key == "required":
                    merged["required"] = [*merged.get("required", []), *value]
                else:
                    merged.setdefault(key, value)
        return merged

    def _object(self, schema: dict, depth: int) -> dict:
        properties = schema.get("properties")
        if not isinstance(properties, dict):
            return {}
        return {name: self.value(sub, depth + 1) for name, sub in properties.items()}

    def _array(self, schema: dict, depth: int) -> list:
        prefix = schema.get("prefixItems")
        if isinstance(prefix, list):
            return [self.value(sub, depth + 1) for sub in prefix]
        min_items, max_items = schema.get("minItems"), schema.get("maxItems")
        length = min_items if isinstance(min_items, int) else self.stream.between(1, 3)
        if isinstance(max_items, int):
            length = min(length, max_items)
        items = schema.get("items", {})
        if not schema.get("uniqueItems"):
            return [self.value(items, depth + 1) for _ in range(length)]
        unique: list = []
        for _ in range(length * 8):
            candidate = self.value(items, depth + 1)
            if candidate not in unique:
                unique.append(candidate)
            if len(unique) == length:
                break
        return unique

    def _integer(self, schema: dict, _depth: int) -> int:
        low, high = _bounds(schema, integer=True)
        if low is None and high is None:
            low, high = 1, 5
        elif low is None:
            low = high - 4
        elif high is None:
            high = low + 4
        value = self.stream.between(int(low), max(int(low), int(high)))
        step = schema.get("multipleOf")
        if isinstance(step, int) and step > 0:
            rounded = -(-value // step) * step
            value = rounded if rounded <= high else (value // step) * step
        return value

    def _number(self, schema: dict, _depth: int) -> float:
        low, high = _bounds(schema, integer=False)
        low = 0.0 if low is None else low
        high = low + 100.0 if high is None else high
        value = round(low + (high - low) * self.stream.unit(), 2)
        return min(max(value, low), high)

    def _string(self, schema: dict, _depth: int) -> str:
        fixed = _FORMATTED.get(schema.get("format", ""))
        if fixed is not None:
            return fixed(self.stream)
        text = " ".join(self.stream.words(self.stream.between(1, 6)))
        min_length, max_length = schema.get("minLength"), schema.get("maxLength")
        while isinstance(min_length, int) and len(text) < min_length:
            text += " " + self.stream.words(1)[0]
        if isinstance(max_length, int):
            text = text[:max_length].rstrip() or text[:max_length]
        return text


def _bounds(schema: dict, *, integer: bool) -> tuple[float | None, float | None]:
    """Inclusive bounds; exclusive ones are nudged inwards."""
    nudge = 1 if integer else 0.01
    low, high = schema.get("minimum"), schema.get("maximum")
    if isinstance(schema.get("exclusiveMinimum"), (int, float)):
        low = schema["exclusiveMinimum"] + nudge
    if isinstance(schema.get("exclusiveMaximum"), (int, float)):
        high = schema["exclusiveMaximum"] - nudge
    if integer:
        low = None if low is None else -int(-low // 1)  # ceil
        high = None if high is None else int(high // 1)  # floor
    return low, high


def _uuid(stream: HashStream) -> str:
    h = "".join(f"{stream.below(256):02x}" for _ in range(16))
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


_FORMATTED = {
    "date": lambda s: f"2024-{s.between(1, 12):02d}-{s.between(1, 28):02d}",
    "date-time": lambda s: f"2024-{s.between(1, 12):02d}-{s.between(1, 28):02d}T12:00:00Z",
    "time": lambda s: f"{s.between(0, 23):02d}:{s.between(0, 59):02d}:00",
    "email": lambda s: f"{s.words(1)[0]}@example.com",
    "uri": lambda s: f"https://example.com/{s.words(1)[0]}",
    "url": lambda s: f"https://example.com/{s.words(1)[0]}",
    "uuid": _uuid,
}
