"""``llm``: ask a language model, optionally for typed ``data``, or extract fields from earlier text.

Two shapes of the node:

- ``prompt`` (and optional ``system``, ``output_schema``): one call through the ``LLM`` port.
  With ``output_schema`` the adapter forces a tool call and returns validated ``data`` (one
  repair round); without it the answer is free text.
- ``extract: {from: <node id>, schema: {...}}``: read ``nodes.<from>.text`` and pull the
  schema's fields out of it with a small, bounded call. When that fails for any reason the
  node still succeeds, with ``data = {"text": <raw text>, "extraction_failed": true,
  "error": <why>}``, so a workflow can branch on ``'extraction_failed' in nodes.<id>.data``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, ClassVar

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, ConfigDict, Field

from engine.errors import SkillFailed
from engine.model import Deliverable, NodeSpec
from engine.nodes.base import Completed, LoadContext, NodeContext, NodeResult
from engine.ports import LLM, LLMRequest, LLMResponse
from engine.templates import render_value

__all__ = [
    "EXTRACT_MAX_CHARS",
    "EXTRACT_MAX_TOKENS",
    "ExtractSpec",
    "LlmConfig",
    "LlmNode",
]

EXTRACT_MAX_TOKENS = 512
"""Output budget of an extraction call: a handful of typed fields, never an essay."""
EXTRACT_MAX_CHARS = 20_000
"""Longest upstream text sent for extraction; longer text is cut, which bounds the call's cost."""
_EXTRACT_SYSTEM = (
    "Extract the requested fields from the user's text by calling the submit tool. "
    "Use only what the text states; leave out optional fields the text does not give."
)
_PROMPT_KEPT = 2_000  # characters of the rendered prompt kept on the step, beside its hash
NO_LLM = (
    "llm nodes need a language model, and none is configured: set ANTHROPIC_API_KEY "
    "(and ANTHROPIC_BASE_URL for a compatible endpoint), or remove the llm nodes from this workflow"
)


class ExtractSpec(BaseModel):
    """``extract``: which earlier node's text to read, and the JSON Schema of the fields."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    source: str = Field(alias="from")
    fields_schema: dict[str, Any] = Field(alias="schema")


class LlmConfig(BaseModel):
    """The configuration of an ``llm`` node (architecture.md §4)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    model: str | None = None
    system: str | None = None
    prompt: str | None = None
    output_schema: dict[str, Any] | None = None
    max_tokens: int = Field(default=1024, ge=1, le=64_000)
    temperature: float | None = Field(default=None, ge=0.0, le=1.0)
    extract: ExtractSpec | None = None


class LlmNode:
    """One model call through the ``LLM`` port; tokens and cost are stored on the step."""

    type_name: ClassVar[str] = "llm"
    config_model: ClassVar[type[BaseModel]] = LlmConfig
    template_fields: ClassVar[tuple[str, ...]] = ("system", "prompt")
    side_effects: ClassVar[bool] = False  # a repeated call costs tokens but changes nothing outside

    @classmethod
    def check(cls, node: NodeSpec, ctx: LoadContext) -> list[tuple[str | None, str]]:
        """A configured LLM, exactly one of ``prompt`` and ``extract``, and usable schemas."""
        config = node.config
        assert isinstance(config, LlmConfig)
        problems: list[tuple[str | None, str]] = []
        if not ctx.llm_available:
            problems.append(("type", NO_LLM))
        if config.extract is None and not config.prompt:
            problems.append(("prompt", "an llm node needs a prompt (or extract: {from, schema})"))
        if config.extract is not None:
            problems += _check_extract(config, node, ctx)
        if config.output_schema is not None:
            problems += _check_schema("output_schema", config.output_schema)
        return problems

    @classmethod
    async def execute(cls, ctx: NodeContext) -> NodeResult:
        """Call the model, or extract fields from an earlier node's text."""
        config = ctx.node.config
        assert isinstance(config, LlmConfig)
        llm = ctx.deps.llm
        if llm is None:
            raise SkillFailed(NO_LLM)
        model = config.model or ctx.deps.default_model
        if config.extract is not None:
            return await _extract(ctx, llm, model, config.extract)
        compiled = ctx.compiled
        system = compiled.get("system")
        request = LLMRequest(
            model=model,
            system=None if system is None else _as_text(render_value(system, ctx.scope)),
            prompt=_as_text(render_value(compiled["prompt"], ctx.scope)),
            output_schema=config.output_schema,
            max_tokens=config.max_tokens,
            temperature=config.temperature,
        )
        response = await llm.complete(request)
        data = response.data or {}
        text = response.text or (json.dumps(data, ensure_ascii=False) if data else "")
        return _completed(Deliverable(text=text, data=data), request, response)


async def _extract(ctx: NodeContext, llm: LLM, model: str, spec: ExtractSpec) -> Completed:
    upstream = ctx.scope["nodes"].get(spec.source)
    if upstream is None:
        raise SkillFailed(f"extract: node '{spec.source}' has not produced any output in this run")
    raw = str(upstream.get("text") or "")
    # The call is made here rather than through a separate port method so that its tokens and
    # cost are recorded on this step like any other model call.
    request = LLMRequest(
        model=model,
        system=_EXTRACT_SYSTEM,
        prompt=f"<text>\n{raw[:EXTRACT_MAX_CHARS]}\n</text>",
        output_schema=spec.fields_schema,
        max_tokens=EXTRACT_MAX_TOKENS,
        temperature=0.0,
    )
    try:
        response = await llm.complete(request)
    except SkillFailed as exc:
        return _fallback(request, raw, str(exc))
    if response.data is None:
        return _fallback(request, raw, "the model returned no structured output", response)
    data = response.data
    return _completed(Deliverable(text=json.dumps(data, ensure_ascii=False), data=data), request, response)


def _fallback(request: LLMRequest, raw: str, error: str, response: LLMResponse | None = None) -> Completed:
    data = {"text": raw, "extraction_failed": True, "error": error}
    return _completed(Deliverable(text=raw, data=data), request, response)


def _completed(output: Deliverable, request: LLMRequest, response: LLMResponse | None) -> Completed:
    step_input = {
        "model": request.model,
        "prompt": request.prompt[:_PROMPT_KEPT],
        "prompt_sha256": hashlib.sha256(request.prompt.encode("utf-8")).hexdigest(),
        "max_tokens": request.max_tokens,
    }
    if response is None:
        return Completed(output=output, input=step_input)
    step_input["attempts"] = response.attempts
    return Completed(
        output=output,
        input=step_input,
        input_tokens=response.input_tokens,
        output_tokens=response.output_tokens,
        cost_usd=response.cost_usd,
    )


def _as_text(value: Any) -> str:
    # A single-expression template keeps its type; a model prompt is text, so objects become JSON.
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _check_extract(config: LlmConfig, node: NodeSpec, ctx: LoadContext) -> list[tuple[str | None, str]]:
    assert config.extract is not None
    problems: list[tuple[str | None, str]] = []
    if config.prompt or config.output_schema is not None:
        problems.append(("extract", "extract reads another node's text: leave out prompt and output_schema"))
    source = config.extract.source
    if source == node.id or source not in ctx.node_ids:
        problems.append(("extract", f"extract.from: unknown node '{source}'"))
    problems += _check_schema("extract", config.extract.fields_schema)
    return problems


def _check_schema(field: str, schema: dict[str, Any]) -> list[tuple[str | None, str]]:
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return [(field, f"not a valid JSON Schema: {exc.message}")]
    if schema.get("type") != "object":
        return [(field, "the schema must have type: object (its fields become the node's data)")]
    return []
