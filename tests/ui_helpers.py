"""What the web UI tests share: where the pages are, logging in through the real entry script, and
reading everything a page rendered."""

from __future__ import annotations

from pathlib import Path

from google.protobuf import text_format
from streamlit.testing.v1 import AppTest

UI = Path(__file__).resolve().parents[1] / "app" / "ui"
MAIN = UI / "main.py"
PAGES = UI / "views"
TIMEOUT = 120


def main_app() -> AppTest:
    return AppTest.from_file(str(MAIN), default_timeout=TIMEOUT).run()


def login(token: str, at: AppTest | None = None) -> AppTest:
    at = at or main_app()
    at.text_input(key="login-token").set_value(token)
    at.button(key="FormSubmitter:login-登录").click().run()
    return at


def rendered(at: AppTest) -> str:
    """Every element's content (labels, options, values, text), main area and sidebar."""
    def walk(node) -> list[str]:
        own = [text_format.MessageToString(node.proto, as_utf8=True)] if getattr(node, "proto", None) is not None else []
        return own + [s for child in getattr(node, "children", {}).values() for s in walk(child)]
    return "\n".join(walk(at.main) + walk(at.sidebar))
