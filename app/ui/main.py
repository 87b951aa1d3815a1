"""Entry point of `zhiwen ui` (streamlit run app/ui/main.py)."""

from pathlib import Path

import streamlit as st

from app.ui.common import base_settings, close_sidebar_after_navigation, language_switch
from app.ui.i18n import t
from app.ui.login import gate

st.set_page_config(page_title="知问 zhiwen", page_icon="📚", layout="wide")
language_switch()
close_sidebar_after_navigation()  # narrow windows: the page just opened is not left under the sidebar
gate(base_settings())  # with UI auth on: the login form and nothing else until a valid API key is given
pages = Path(__file__).parent / "views"  # not "pages/": Streamlit would run those files without this shell
navigation = st.navigation(
    [
        st.Page(pages / "chat.py", title=t("nav_chat"), icon="💬", default=True),
        st.Page(pages / "knowledge_bases.py", title=t("nav_kb"), icon="📚"),
        st.Page(pages / "evaluation.py", title=t("nav_eval"), icon="📊"),
        st.Page(pages / "moderation.py", title=t("nav_moderation"), icon="🛡️"),
    ]
)
navigation.run()
