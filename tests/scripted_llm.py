"""An OpenAI-compatible chat server that answers with a script, for what the real tiny model cannot be made
to do on cue: stream slowly enough for a person to press "stop", or answer without any [n] marker. It speaks
real HTTP and server-sent events, so the real client (langchain-openai, httpx), the chain and the UI run
unchanged; and it records when a client hangs up mid-stream (generation really stopped, not just hidden), or
dies itself mid-stream (``die_after``: no finish_reason, no [DONE], the connection just closes)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ScriptedLLM:
    def __init__(self, reply: str, token_delay_s: float = 0.0, finish_reason: str = "stop", die_after: int | None = None) -> None:
        self.reply = reply
        self.token_delay_s = token_delay_s  # pacing of the stream, so it is still running when stopped
        self.finish_reason = finish_reason
        self.die_after = die_after  # a server that dies mid-answer: this many tokens, then the connection closes
        self.requests = 0
        self.tokens_sent = 0
        self.hung_up = threading.Event()  # a client closed the connection before the stream ended
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self):
        llm = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _json(self, payload: dict) -> None:
                body = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._json({"object": "list", "data": [{"id": "scripted", "object": "model", "owned_by": "tests"}]})

            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                llm.requests += 1
                if not request.get("stream"):
                    self._json({"id": "x", "object": "chat.completion", "created": 0, "model": "scripted", "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": llm.reply}, "finish_reason": llm.finish_reason}]})
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    tokens = [*llm.reply, None] if llm.die_after is None else list(llm.reply[: llm.die_after])
                    for token in tokens:
                        delta = {"content": token} if token is not None else {}
                        chunk = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "scripted",
                                 "choices": [{"index": 0, "delta": delta, "finish_reason": None if token is not None else llm.finish_reason}]}
                        self.wfile.write(f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode())
                        self.wfile.flush()
                        if token is not None:
                            llm.tokens_sent += 1
                            time.sleep(llm.token_delay_s)
                    if llm.die_after is None:
                        self.wfile.write(b"data: [DONE]\n\n")
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    llm.hung_up.set()
                self.close_connection = True

        return Handler
