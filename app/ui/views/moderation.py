"""Moderation page: the rule categories, their word lists (edited here, applied on the next check
without a restart), a try-it box, and the audit log."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.ui.common import base_settings, can
from app.ui.i18n import t
from core.errors import ZhiwenError
from moderation.moderator import Moderator
from moderation.rules import SURFACES

settings = base_settings()
st.title(t("nav_moderation"))
if not settings.moderation_enabled:
    st.warning(t("moderation_off"))
moderator = Moderator.for_settings(settings)
try:
    rules = moderator.store.current()
except ZhiwenError as exc:
    st.error(str(exc))
    st.stop()

st.caption(t("moderation_rules_dir", path=str(moderator.store.root)))
st.dataframe(
    pd.DataFrame(
        [{t("mod_category"): c.name, t("mod_action"): c.action, t("mod_surfaces"): ", ".join(c.surfaces),
          t("mod_terms"): len(c.terms) + len(c.patterns), t("mod_description"): c.description} for c in rules.categories.values()]
        + [{t("mod_category"): "pii", t("mod_action"): ", ".join(f"{s}={a}" for s, a in rules.pii_actions.items()),
            t("mod_surfaces"): ", ".join(sorted(rules.pii_kinds)), t("mod_terms"): None, t("mod_description"): t("mod_pii")}]
    ),
    hide_index=True, use_container_width=True,
)

if can("*", "admin"):  # the rules apply to every knowledge base
    st.subheader(t("mod_edit"))
    category = st.selectbox(t("mod_category"), list(rules.categories), key="mod-category")
    words_file = moderator.store.root / "words" / f"{category}.txt"
    current = words_file.read_text(encoding="utf-8") if words_file.exists() else ""
    edited = st.text_area(t("mod_words_help"), current, height=240, key=f"mod-words-{category}")
    if st.button(t("mod_save"), type="primary"):
        words_file.parent.mkdir(parents=True, exist_ok=True)
        words_file.write_text(edited if edited.endswith("\n") else edited + "\n", encoding="utf-8")
        try:
            moderator.store.current()
            st.success(t("mod_saved", name=category))
        except ZhiwenError as exc:
            words_file.write_text(current, encoding="utf-8")  # a broken regex must not take the filters down
            st.error(str(exc))

st.subheader(t("mod_try"))
sample = st.text_input(t("mod_try_text"), key="mod-try")
surface = st.radio(t("mod_surfaces"), SURFACES, horizontal=True, key="mod-surface")
if sample:
    result = moderator.check(sample, surface, audit=False)
    if result.blocked:
        st.error(f"{t('mod_blocked')}: {result.message}")
    elif result.findings:
        st.warning(result.text)
    else:
        st.success(t("mod_pass"))
    for f in result.findings:
        st.caption(f"{f.action} · {f.category} · {f.rule_id} · {f.start}-{f.end}")

st.subheader(t("mod_audit"))
records = moderator.audit.read()[-50:] if moderator.audit else []
if records:
    st.dataframe(pd.DataFrame(records[::-1]), hide_index=True, use_container_width=True)
else:
    st.caption(t("mod_audit_empty"))
