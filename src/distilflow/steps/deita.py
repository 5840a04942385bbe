"""`DeitaFiltering`: keep the best-scored rows of the whole dataset that are not near-duplicates (DEITA).

Arguments, columns and the selection follow distilabel 1.5.3's `DeitaFiltering`; what differs is
where the vectors compared for diversity come from when the rows carry no `embedding`: distilabel
needs a model (its DEITA pipeline embeds each conversation with an LLM's hidden states), distilflow
then embeds the row's `conversation` text in-process with hashed character n-grams
(`distilflow.steps.text_embedding`), so the filter runs anywhere without downloading a model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from typing import Any, Literal, Union

from pydantic import Field, PositiveInt

from distilflow.errors import DistilflowUserError
from distilflow.steps.base import GlobalStep, StepInput, StepOutput
from distilflow.steps.text_embedding import hashed_ngram_embeddings, numpy
from distilflow.typing import RuntimeParameter, StepColumns

__all__ = ["DeitaFiltering"]

_logger = logging.getLogger("distilflow.steps.tasks")

_SCORES = ("evol_instruction_score", "evol_response_score")
#: most floats held by one block of the distance matrix (it is computed a block of rows at a time)
_BLOCK_FLOATS = 1 << 24


class DeitaFiltering(GlobalStep):
    """Score every row `evol_instruction_score * evol_response_score` and keep up to `data_budget` of them.

    A global step: it sees the whole dataset at once, so `data_budget` is the size of the result,
    not of each batch. As in distilabel:

    - `deita_score` is the product of the two scores; with one of them missing, the other alone
      (`deita_score_computed_with` names the scores used); with neither, 0.
    - `nearest_neighbor_distance` is each row's distance to the closest other row of the dataset
      (cosine distance `1 - a.b`, or `distance_metric="manhattan"`), on vectors scaled to length 1
      first when `normalize_embeddings` (without it, "cosine" is `1 - a.b` on the raw vectors).
    - Rows are taken best `deita_score` first, skipping any whose nearest-neighbour distance is
      below `diversity_threshold`, until `data_budget` are kept.
      Note that the distance is to the nearest row of the whole dataset, not of the rows kept so
      far: both rows of a near-duplicate pair are skipped.

    Rows with equal scores are taken in an order set by their content (a digest of each row), not
    by the order they arrived in, which differs from run to run as batches finish: the same
    dataset always gives the same selection, with the same distances to the last bit.

    The vectors: the rows' `embedding` column when any row has one (rows without one then get
    `nearest_neighbor_distance` None and are not kept); otherwise each row's `conversation` text
    (its messages' contents; a string is used as it is; a row without any is not kept, like one
    without an embedding) embedded in-process with hashed character
    n-grams (`hashed_ngram_embeddings`): deterministic, model-free, and sensitive to shared wording
    rather than meaning, which suits catching near-duplicate rows. Thresholds mean different
    things for different vectors: those that suit a model's embeddings (distilabel's default 0.9,
    its DEITA example 0.04) are not those that suit the hashed ones. A row with no neighbour to
    compare to (a dataset of one) gets `nearest_neighbor_distance` None and may be kept.

    Input columns: `evol_instruction_score`, `evol_response_score` (float or None), and
    `embedding` (list of float) or `conversation` (chat list or str).
    Output columns: `deita_score`, `nearest_neighbor_distance`, `deita_score_computed_with`.
    Only the kept rows are output, best first.
    """

    data_budget: RuntimeParameter[PositiveInt] = Field(
        default=None, description="How many rows to keep, at most, over the whole dataset."
    )
    diversity_threshold: RuntimeParameter[float] = Field(
        default=0.9,
        description="A row is kept only if its distance to its nearest neighbour is at least this.",
    )
    normalize_embeddings: RuntimeParameter[bool] = Field(
        default=True, description="Scale the vectors to length 1 before computing distances."
    )
    distance_metric: RuntimeParameter[Literal["cosine", "manhattan"]] = Field(
        default="cosine", description="How distances between vectors are measured: 'cosine' or 'manhattan'."
    )

    @property
    def inputs(self) -> StepColumns:
        return {"evol_instruction_score": True, "evol_response_score": True, "embedding": False, "conversation": False}

    @property
    def outputs(self) -> StepColumns:
        return ["deita_score", "nearest_neighbor_distance", "deita_score_computed_with"]

    def process(self, *inputs: StepInput) -> StepOutput:  # type: ignore[override]
        if self.data_budget is None:
            raise DistilflowUserError(
                f"DeitaFiltering '{self.name}' needs `data_budget`, the number of rows to keep: pass data_budget=<n> "
                f"(or set it as a run-time parameter: {{'{self.name}': {{'data_budget': <n>}}}})."
            )
        # rows in an order set by their content, not by the order their batches finished in: the
        # selection among equal scores and the last bits of the distances are then the same every run
        given = sorted(((_content_digest(row), row) for part in inputs for row in part), key=lambda pair: pair[0])
        rows = [_scored(row) for _, row in given]
        self._warn_missing_scores(rows)
        distances, usable = self._nearest_neighbor_distances(rows)
        for i, row in enumerate(rows):
            row["nearest_neighbor_distance"] = distances[i]
        order = sorted(range(len(rows)), key=lambda i: -rows[i]["deita_score"])  # stable: ties in content order
        kept, too_close = [], 0
        for i in order:
            if len(kept) >= self.data_budget:
                break
            distance = distances[i]
            if usable[i] and (distance is None or distance >= self.diversity_threshold):
                kept.append(rows[i])
            elif usable[i]:
                too_close += 1
        _logger.info(
            "DeitaFiltering '%s': kept %d of %d rows (data_budget %d); %d skipped as closer than %g to another row.",
            self.name, len(kept), len(rows), self.data_budget, too_close, self.diversity_threshold,
        )
        yield kept

    def _warn_missing_scores(self, rows: list[dict[str, Any]]) -> None:
        partial = sum(len(row["deita_score_computed_with"]) == 1 for row in rows)
        unscored = sum(not row["deita_score_computed_with"] for row in rows)
        if partial or unscored:
            _logger.warning(
                "DeitaFiltering '%s': %d row(s) have only one of %s (their deita_score is that one), %d have neither "
                "(deita_score 0).", self.name, partial, list(_SCORES), unscored,
            )

    # -- diversity -------------------------------------------------------------------------------

    def _nearest_neighbor_distances(self, rows: list[dict[str, Any]]) -> tuple[list[Union[float, None]], list[bool]]:
        """Each row's distance to its nearest other row (None: it has no vector, or no other row
        has one), and whether the row has a vector at all."""
        np = numpy()
        vectors, usable = self._vectors(rows)
        if self.normalize_embeddings and len(vectors):
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            vectors = vectors / np.where(norms == 0, 1.0, norms)  # a zero vector (an empty text) stays zero
        distances: list[Union[float, None]] = [None] * len(rows)
        where = [i for i, ok in enumerate(usable) if ok]
        if len(where) < 2:
            return distances, usable
        matrix = vectors[where]
        count = len(where)
        per_row = count * (matrix.shape[1] if self.distance_metric == "manhattan" else 1)
        block = max(1, _BLOCK_FLOATS // max(1, per_row))
        for start in range(0, count, block):
            part = matrix[start : start + block]
            if self.distance_metric == "cosine":
                between = np.maximum(1 - np.dot(part, matrix.T), 0.0)  # rounding can leave a copy at -1e-16
            else:
                between = np.abs(part[:, None, :] - matrix[None, :, :]).sum(-1)
            between[np.arange(len(part)), start + np.arange(len(part))] = np.inf  # a row is not its own neighbour
            for offset, nearest in enumerate(between.min(axis=1)):
                distances[where[start + offset]] = float(nearest)
        return distances, usable

    def _vectors(self, rows: list[dict[str, Any]]) -> tuple[Any, list[bool]]:
        """The rows' vectors (a matrix, zero rows where a row has none) and which rows have one."""
        np = numpy()
        embeddings = [row.get("embedding") for row in rows]
        if any(e is not None for e in embeddings):
            lengths = {len(e) for e in embeddings if e is not None}
            if len(lengths) > 1:
                raise DistilflowUserError(
                    f"DeitaFiltering '{self.name}': the rows' embeddings have different lengths {sorted(lengths)}, so "
                    "they cannot be compared; embed every row with the same model."
                )
            width = lengths.pop()
            missing = sum(e is None for e in embeddings)
            if missing:
                _logger.warning(
                    "DeitaFiltering '%s': %d of %d row(s) have no embedding and cannot be kept.",
                    self.name, missing, len(rows),
                )
            matrix = np.array([e if e is not None else [0.0] * width for e in embeddings], dtype=np.float64)
            return matrix, [e is not None for e in embeddings]
        if rows and not any("conversation" in row for row in rows):
            raise DistilflowUserError(
                f"DeitaFiltering '{self.name}' compares rows by their `embedding` column or, without one, by the text "
                f"of their `conversation` column, and the rows have neither (they have {sorted(rows[0])}). Add a "
                "ConversationTemplate step before it, or map a text column: input_mappings={'conversation': '<column>'}."
            )
        texts = [_conversation_text(row.get("conversation")) for row in rows]
        empty = sum(not text.strip() for text in texts)
        if empty:
            _logger.warning(
                "DeitaFiltering '%s': %d of %d row(s) have no conversation text (a step before failed for them) and "
                "cannot be kept.", self.name, empty, len(rows),
            )
        return hashed_ngram_embeddings(texts), [bool(text.strip()) for text in texts]


def _scored(row: dict[str, Any]) -> dict[str, Any]:
    """The row with its `deita_score` and `deita_score_computed_with` (distilabel's rule)."""
    used = [name for name in _SCORES if _is_score(row.get(name))]
    score: float = math.prod(row[name] for name in used) if used else 0
    return {**row, "deita_score": score, "deita_score_computed_with": used}


def _content_digest(row: dict[str, Any]) -> bytes:
    return hashlib.blake2b(json.dumps(row, sort_keys=True, default=str).encode(), digest_size=16).digest()


def _is_score(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


def _conversation_text(conversation: Any) -> str:
    """The words of a conversation: its messages' text contents, one per line (roles left out:
    every row has the same ones, and they would make all rows look alike)."""
    if conversation is None:
        return ""
    if isinstance(conversation, str):
        return conversation
    parts = []
    for message in conversation if isinstance(conversation, (list, tuple)) else [conversation]:
        content = message.get("content") if isinstance(message, dict) else message
        if isinstance(content, list):  # OpenAI content parts: their text
            content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
        if content is not None:
            parts.append(str(content))
    return "\n".join(parts)
