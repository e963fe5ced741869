"""Intent: one label from a configurable set, chosen by the model from the initial request.

The classifier asks the chat model for structured output constrained to the labels. When the
model fails or answers outside the set it falls back to the label whose description is nearest
to the request by embedding; with no label set configured, intent is skipped (s3 = 0).

Example:
    >>> from seer_langgraph.intent import IntentClassifier, IntentSet
    >>> from seer_langgraph.embeddings import HashingEmbeddings
    >>> intents = IntentSet.from_dict({"refund": "return an item and get money back", "track": "where is my order, shipping status"})
    >>> clf = IntentClassifier(intents, model=None, embeddings=HashingEmbeddings())
    >>> clf.classify("I want my money back for this item").label
    'refund'
"""

from __future__ import annotations

import logging
import re
from typing import Any, Literal, Mapping

import numpy as np
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

from .errors import UnknownIntentError

__all__ = ["IntentClassifier", "IntentLabel", "IntentResult", "IntentSet"]

logger = logging.getLogger(__name__)
_LABEL_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


class IntentLabel(BaseModel):
    """One intent: a short name and a description the classifier can read."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str = ""

    @field_validator("name")
    @classmethod
    def _name_ok(cls, v: str) -> str:
        if not _LABEL_RE.match(v):
            raise ValueError(f"invalid intent label {v!r}: use 1-64 letters, digits and _ . : -")
        return v


class IntentSet(BaseModel):
    """The discrete set of intents (e.g. task domains, or service intents like cancel_order)."""

    model_config = ConfigDict(frozen=True)

    labels: tuple[IntentLabel, ...] = Field(min_length=1)

    @field_validator("labels")
    @classmethod
    def _unique(cls, v: tuple[IntentLabel, ...]) -> tuple[IntentLabel, ...]:
        names = [x.name for x in v]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"duplicate intent labels: {sorted(dup)}")
        return v

    @classmethod
    def from_dict(cls, labels: Mapping[str, str]) -> "IntentSet":
        """Build from ``{name: description}``."""
        return cls(labels=tuple(IntentLabel(name=k, description=v) for k, v in labels.items()))

    @property
    def names(self) -> list[str]:
        return [x.name for x in self.labels]

    def validate_label(self, label: str | None) -> str | None:
        """Return ``label`` if it is in the set (or ``None``); raise :class:`UnknownIntentError`."""
        if label is None or label in self.names:
            return label
        raise UnknownIntentError(f"unknown intent {label!r}; the configured intents are {self.names}")


class IntentResult(BaseModel):
    """The chosen label and how it was chosen."""

    label: str | None
    source: Literal["model", "embedding", "none"]


class IntentClassifier:
    """Pick the intent of a request: structured model output, then nearest description by embedding.

    Args:
        intents: the label set.
        model: a chat model (``None`` skips straight to the embedding fallback).
        embeddings: used by the fallback; without it a failed model call gives no intent.
    """

    def __init__(self, intents: IntentSet, model: BaseChatModel | None = None, embeddings: Embeddings | None = None):
        self.intents = intents
        self.model = model
        self.embeddings = embeddings
        self._label_vectors: np.ndarray | None = None
        self._schema: type[BaseModel] = create_model(  # type: ignore[call-overload]
            "IntentChoice",
            intent=(Literal[tuple(intents.names)], Field(description="The intent of the request.")),
        )

    def _prompt(self, request: str) -> list[Any]:
        lines = "\n".join(f"- {x.name}: {x.description}" for x in self.intents.labels)
        return [
            SystemMessage(f"Classify the user's request into exactly one of these intents:\n{lines}\nAnswer with the label only."),
            HumanMessage(request),
        ]

    def _parse(self, out: Any) -> str | None:
        if isinstance(out, BaseModel) and not isinstance(out, BaseMessage):
            value = getattr(out, "intent", None)
        elif isinstance(out, dict):
            value = out.get("intent")
        else:
            text = getattr(out, "content", out)
            value = str(text).strip().strip("`'\". ").split()[0] if str(text).strip() else None
        return value if value in self.intents.names else None

    def _from_model(self, request: str) -> str | None:
        if self.model is None:
            return None
        try:
            try:
                out = self.model.with_structured_output(self._schema).invoke(self._prompt(request))
            except NotImplementedError:
                out = self.model.invoke(self._prompt(request))
            return self._parse(out)
        except Exception as exc:  # a failing classifier must not stop the agent
            logger.warning("intent classification by the model failed (%s); using the embedding fallback", exc)
            return None

    async def _afrom_model(self, request: str) -> str | None:
        if self.model is None:
            return None
        try:
            try:
                out = await self.model.with_structured_output(self._schema).ainvoke(self._prompt(request))
            except NotImplementedError:
                out = await self.model.ainvoke(self._prompt(request))
            return self._parse(out)
        except Exception as exc:
            logger.warning("intent classification by the model failed (%s); using the embedding fallback", exc)
            return None

    def _nearest(self, query: list[float], labels: list[list[float]]) -> str:
        if self._label_vectors is None:
            mat = np.asarray(labels, dtype=np.float64)
            self._label_vectors = mat / np.linalg.norm(mat, axis=1, keepdims=True)
        q = np.asarray(query, dtype=np.float64)
        sims = self._label_vectors @ (q / np.linalg.norm(q))
        return self.intents.names[int(np.argmax(sims))]

    def _label_texts(self) -> list[str]:
        return [f"{x.name.replace('_', ' ')}: {x.description}" for x in self.intents.labels]

    def classify(self, request: str) -> IntentResult:
        """Classify one request."""
        label = self._from_model(request)
        if label is not None:
            return IntentResult(label=label, source="model")
        if self.embeddings is None:
            return IntentResult(label=None, source="none")
        labels = self.embeddings.embed_documents(self._label_texts()) if self._label_vectors is None else []
        return IntentResult(label=self._nearest(self.embeddings.embed_query(request), labels), source="embedding")

    async def aclassify(self, request: str) -> IntentResult:
        """Async twin of :meth:`classify`."""
        label = await self._afrom_model(request)
        if label is not None:
            return IntentResult(label=label, source="model")
        if self.embeddings is None:
            return IntentResult(label=None, source="none")
        labels = await self.embeddings.aembed_documents(self._label_texts()) if self._label_vectors is None else []
        return IntentResult(label=self._nearest(await self.embeddings.aembed_query(request), labels), source="embedding")
