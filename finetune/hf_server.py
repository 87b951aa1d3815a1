"""`zhiwen finetune serve`: a small OpenAI-compatible server for a base model plus LoRA adapters, on
transformers + PEFT, for machines without vLLM (CPU, a laptop, CI).

It mirrors vLLM's ``--lora-modules NAME=PATH``: ``GET /v1/models`` lists the base model's name and
each adapter's, and a request's ``model`` picks one, so the same zhiwen settings (``llm_model`` = an
adapter name) work against either server. The adapter directory is the one ``zhiwen finetune train``
wrote, unchanged. The llama.cpp CPU backend cannot load a PEFT adapter directory (it needs GGUF
LoRA files), which is why this server exists.

Generation is one request at a time: PEFT switches adapters by mutating the model, and a CPU has no
spare capacity for a second generation anyway. Throughput is vLLM's job.
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.openai_protocol import ModelCard, ModelList, chunk, completion_id, error_body
from finetune.base import (
    check_adapter_dir,
    check_base_dir,
    load_base_model,
    load_tokenizer,
    torch_dtype,
)
from finetune.protocol import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionRequest,
    Choice,
    Usage,
)
from finetune.template import ensure_chat_template

log = logging.getLogger(__name__)

DEFAULT_MAX_TOKENS = 512


class RequestError(ValueError):
    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


def parse_lora_modules(specs: list[str]) -> dict[str, Path]:
    """``["name=path", …]`` (vLLM's syntax) → {name: adapter dir}; names must be unique."""
    out: dict[str, Path] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise ValueError(f"LoRA 适配器要写成 NAME=PATH (expected NAME=PATH): {spec!r}")
        if name in out:
            raise ValueError(f"适配器名称重复 (duplicate adapter name): {name}")
        out[name.strip()] = Path(path.strip())
    return out


@dataclass
class Generated:
    text: str
    finish_reason: str  # "stop" (end of turn or a stop string) or "length" (max_tokens reached)
    prompt_tokens: int
    completion_tokens: int


class _Cancel:
    """A StoppingCriteria that ends generation when the consumer asks (stop string seen, client gone)."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
        return self.event.is_set()


class AdapterEngine:
    def __init__(self, base: Path | str, adapters: dict[str, Path] | None = None, base_name: str = "zhiwen",
                 device: str | None = None) -> None:
        import torch

        self.base_path = check_base_dir(base)
        self.adapters = {name: check_adapter_dir(path) for name, path in (adapters or {}).items()}
        if base_name in self.adapters:
            raise ValueError(f"适配器名称不能与基础模型同名 (adapter name equals the base name): {base_name}")
        self.base_name = base_name
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        precision = "fp32" if self.device == "cpu" else ("bf16" if torch.cuda.is_bf16_supported() else "fp16")
        model = load_base_model(self.base_path, dtype=torch_dtype(precision))
        self.tokenizer = self._tokenizer()
        if self.adapters:
            from peft import PeftModel

            names = list(self.adapters)
            model = PeftModel.from_pretrained(model, str(self.adapters[names[0]]), adapter_name=names[0])
            for name in names[1:]:
                model.load_adapter(str(self.adapters[name]), adapter_name=name)
        self.model = model.to(self.device).eval()
        self.max_context = int(getattr(self.model.config, "max_position_embeddings", 0) or 0) or 4096
        self.lock = threading.Lock()

    def _tokenizer(self) -> Any:
        """The base's tokenizer; when it has no chat template, the one the adapters were trained with
        (train saves the tokenizer, ChatML added, beside each adapter)."""
        tokenizer = load_tokenizer(self.base_path)
        if not getattr(tokenizer, "chat_template", None):
            for path in self.adapters.values():
                if (path / "tokenizer_config.json").exists():
                    template = getattr(load_tokenizer(path), "chat_template", None)
                    if template:
                        tokenizer.chat_template = template
                        break
        ensure_chat_template(tokenizer)
        return tokenizer

    # -- models ------------------------------------------------------------------------------------
    def model_names(self) -> list[str]:
        return [self.base_name, *self.adapters]

    def cards(self) -> list[ModelCard]:
        return [ModelCard(id=self.base_name, root=str(self.base_path))] + [
            ModelCard(id=name, root=str(path), parent=self.base_name) for name, path in self.adapters.items()
        ]

    def _select(self, name: str) -> Any:
        """A context manager under which ``self.model`` computes as ``name`` (base: adapters off)."""
        import contextlib

        if name == self.base_name:
            return self.model.disable_adapter() if self.adapters else contextlib.nullcontext()
        if name not in self.adapters:
            raise RequestError(404, f"The model `{name}` does not exist. Available: {', '.join(self.model_names())}", "model_not_found")
        self.model.set_adapter(name)
        return contextlib.nullcontext()

    # -- generation --------------------------------------------------------------------------------
    def _prepare(self, request: ChatCompletionRequest) -> tuple[Any, int, dict[str, Any]]:
        if request.model not in self.model_names():
            self._select(request.model)  # raises the 404
        messages = [{"role": "system" if m.role == "developer" else m.role, "content": m.text()} for m in request.messages]
        try:
            prompt = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except Exception as exc:  # a template that rejects the conversation (e.g. roles out of order)
            raise RequestError(400, f"chat template failed: {exc}", "invalid_messages") from exc
        input_ids = self.tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"].to(self.device)
        n_prompt = int(input_ids.shape[1])
        wanted = request.max_completion_tokens or request.max_tokens or DEFAULT_MAX_TOKENS
        room = self.max_context - n_prompt
        if room < 1:
            raise RequestError(400, f"prompt has {n_prompt} tokens; the model's context is {self.max_context}", "context_length_exceeded")
        temperature = 1.0 if request.temperature is None else request.temperature
        kwargs: dict[str, Any] = {
            "max_new_tokens": min(wanted, room),
            "do_sample": temperature > 0,
            "pad_token_id": self.tokenizer.pad_token_id,
            "eos_token_id": self._eos_ids(),
        }
        if temperature > 0:
            kwargs.update(temperature=temperature, top_p=request.top_p or 1.0, top_k=0)
        return input_ids, n_prompt, kwargs

    def _eos_ids(self) -> list[int]:
        ids = {self.tokenizer.eos_token_id}
        configured = getattr(self.model.generation_config, "eos_token_id", None)
        ids.update(configured if isinstance(configured, list) else [configured])
        return sorted(i for i in ids if i is not None)

    def stream(self, request: ChatCompletionRequest) -> Iterator[str | Generated]:
        """Text pieces as they are generated, then one Generated with the whole text and counts.
        Stop strings are held back until it is certain they are not starting, then cut."""
        import torch
        from transformers import StoppingCriteriaList, TextIteratorStreamer

        input_ids, n_prompt, kwargs = self._prepare(request)
        stops = request.stop_strings()
        holdback = max((len(s) for s in stops), default=1) - 1
        with self.lock:
            context = self._select(request.model)
            cancel = _Cancel()
            streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)
            result: dict[str, Any] = {}

            def run() -> None:
                try:
                    with context, torch.inference_mode():
                        if request.seed is not None:
                            torch.manual_seed(request.seed)
                        result["ids"] = self.model.generate(
                            input_ids=input_ids, attention_mask=torch.ones_like(input_ids), streamer=streamer,
                            stopping_criteria=StoppingCriteriaList([cancel]), **kwargs,
                        )
                except Exception as exc:  # noqa: BLE001 -- surfaced to the consumer below, not lost in a thread
                    result["error"] = exc
                    streamer.end()

            thread = threading.Thread(target=run, name="zhiwen-generate", daemon=True)
            thread.start()
            text, sent, stopped = "", 0, False
            try:
                for piece in streamer:
                    text += piece
                    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
                    if cut >= 0:
                        text, stopped = text[:cut], True
                        cancel.event.set()
                    safe = len(text) if stopped else max(sent, len(text) - holdback)
                    if safe > sent:
                        yield text[sent:safe]
                        sent = safe
                    if stopped:
                        break
            finally:
                cancel.event.set()  # the client went away, or we are done: free the model
                thread.join()
            if "error" in result:
                raise result["error"]
            if sent < len(text):
                yield text[sent:]
            new_ids = result["ids"][0, n_prompt:].tolist()
            n_new = len(new_ids)
            ended = bool(new_ids) and new_ids[-1] in self._eos_ids()
            finish = "stop" if (stopped or ended or n_new < kwargs["max_new_tokens"]) else "length"
            yield Generated(text, finish, n_prompt, n_new)

    def complete(self, request: ChatCompletionRequest) -> Generated:
        final = None
        for item in self.stream(request):
            if isinstance(item, Generated):
                final = item
        assert final is not None
        return final


def create_app(engine: AdapterEngine) -> Any:
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse, StreamingResponse

    app = FastAPI(title="zhiwen LoRA adapter server", version="1")

    @app.exception_handler(RequestError)
    async def request_error(_: Any, exc: RequestError) -> JSONResponse:
        return JSONResponse(error_body(str(exc), "invalid_request_error", exc.code), status_code=exc.status)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "models": engine.model_names()}

    @app.get("/v1/models")
    def models() -> ModelList:
        return ModelList(data=engine.cards())

    @app.post("/v1/chat/completions")
    def chat(body: ChatCompletionRequest) -> Any:
        if not body.stream:
            done = engine.complete(body)
            return ChatCompletion(
                model=body.model, choices=[Choice(message=AssistantMessage(content=done.text), finish_reason=done.finish_reason)],
                usage=Usage(prompt_tokens=done.prompt_tokens, completion_tokens=done.completion_tokens,
                            total_tokens=done.prompt_tokens + done.completion_tokens),
            )
        events = engine.stream(body)  # validation (unknown model, prompt too long) fails here, as a 4xx
        first = next(events)

        def sse() -> Iterator[str]:
            cid = completion_id()
            yield _sse(chunk(cid, body.model, {"role": "assistant", "content": ""}))
            for item in _chain(first, events):
                if isinstance(item, Generated):
                    usage = Usage(prompt_tokens=item.prompt_tokens, completion_tokens=item.completion_tokens,
                                  total_tokens=item.prompt_tokens + item.completion_tokens)
                    yield _sse(chunk(cid, body.model, {}, finish=item.finish_reason))
                    if body.stream_options and body.stream_options.include_usage:
                        final = chunk(cid, body.model, {}, usage=usage.model_dump())
                        final["choices"] = []
                        yield _sse(final)
                else:
                    yield _sse(chunk(cid, body.model, {"content": item}))
            yield "data: [DONE]\n\n"

        return StreamingResponse(sse(), media_type="text/event-stream")

    return app


def _chain(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest


def _sse(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


def serve(base: Path | str, adapters: dict[str, Path], host: str = "127.0.0.1", port: int = 8000, base_name: str = "zhiwen") -> None:
    import uvicorn

    engine = AdapterEngine(base, adapters, base_name=base_name)
    uvicorn.run(create_app(engine), host=host, port=port, log_level="warning")


def main(argv: list[str] | None = None) -> None:
    """``python -m finetune.hf_server``: what ``zhiwen finetune eval`` starts in a subprocess."""
    parser = argparse.ArgumentParser(description="OpenAI-compatible server for a base model + LoRA adapters")
    parser.add_argument("--base", required=True)
    parser.add_argument("--lora", action="append", default=[], help="NAME=PATH, repeatable")
    parser.add_argument("--base-name", default="zhiwen")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    from finetune.base import quiet_transformers

    quiet_transformers()
    serve(args.base, parse_lora_modules(args.lora), args.host, args.port, args.base_name)


if __name__ == "__main__":
    main()
