"""Moderation page: the rule categories, their word lists (edited here, applied on the next check
without a restart), a try-it box, and the audit log. Category names, actions, surfaces and the shipped
descriptions read in the session's language; a team's own categories and descriptions show as written."""

from __future__ import annotations

import tomllib
from importlib import resources

import pandas as pd
import streamlit as st

from app.ui.common import base_settings, can, in_language, local_time
from app.ui.i18n import STRINGS, lang, t
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
    st.error(in_language(str(exc)))
    st.stop()


def word(kind: str, code: str | None) -> str:
    """A code (block, answer, compliance, mobile, …) in words; one this page does not know as it is."""
    if code is None or code == "":
        return "–"
    key = f"mod_{kind}_{code}"
    return t(key) if key in STRINGS else code


@st.cache_data
def shipped_descriptions() -> dict[str, str]:
    with resources.as_file(resources.files("moderation").joinpath("defaults", "rules.toml")) as path:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    return {name: spec.get("description", "") for name, spec in config.get("categories", {}).items()}


def description(name: str, text: str) -> str:
    """The shipped description in the session's language; one the team wrote, as they wrote it."""
    key = f"mod_desc_{name}"
    return t(key) if key in STRINGS and text == shipped_descriptions().get(name) else text


def pii_or_category(category: str | None, rule_id: str | None) -> str:
    """"个人信息 · 手机号" for a PII finding (its rule id is pii:<kind>), the category in words otherwise."""
    if category == "pii" and rule_id and rule_id.startswith("pii:"):
        return f"{word('cat', 'pii')} · {word('pii', rule_id[4:])}"
    return word("cat", category)


def surfaces_text(surfaces) -> str:
    return "、".join(word("surf", s) for s in surfaces) if lang() == "zh" else ", ".join(word("surf", s) for s in surfaces)


st.caption(t("moderation_rules_dir", path=str(moderator.store.root)))
pii_actions = "; ".join(f"{word('surf', s)}: {word('act', a)}" for s, a in rules.pii_actions.items())
st.dataframe(
    pd.DataFrame(
        [{t("mod_category"): word("cat", c.name), t("mod_action"): word("act", c.action), t("mod_surfaces"): surfaces_text(c.surfaces),
          t("mod_terms"): str(len(c.terms) + len(c.patterns)), t("mod_description"): description(c.name, c.description)}
         for c in rules.categories.values()]
        + [{t("mod_category"): word("cat", "pii"), t("mod_action"): pii_actions,
            t("mod_surfaces"): surfaces_text(s for s, a in rules.pii_actions.items() if a != "off"), t("mod_terms"): "–",
            t("mod_description"): t("mod_pii") + " · " + ", ".join(word("pii", k) for k in sorted(rules.pii_kinds))}]
    ),
    hide_index=True, width="stretch",
)

if can("*", "admin"):  # the rules apply to every knowledge base
    st.subheader(t("mod_edit"))
    names = {c: word("cat", c) for c in rules.categories}  # labels made in this run's language
    category = st.selectbox(t("mod_category"), list(names), key="mod-category", format_func=names.__getitem__)
    words_file = moderator.store.root / "words" / f"{category}.txt"
    current = words_file.read_text(encoding="utf-8") if words_file.exists() else ""
    edited = st.text_area(t("mod_words_help"), current, height=240, key=f"mod-words-{category}")
    if st.button(t("mod_save"), type="primary"):
        words_file.parent.mkdir(parents=True, exist_ok=True)
        words_file.write_text(edited if edited.endswith("\n") else edited + "\n", encoding="utf-8")
        try:
            moderator.store.current()
            st.success(t("mod_saved", name=word("cat", category)))
        except ZhiwenError as exc:
            words_file.write_text(current, encoding="utf-8")  # a broken regex must not take the filters down
            st.error(in_language(str(exc)))

st.subheader(t("mod_try"))
sample = st.text_input(t("mod_try_text"), key="mod-try")
surface_names = {s: word("surf", s) for s in SURFACES}
surface = st.radio(t("mod_surfaces"), SURFACES, horizontal=True, key="mod-surface", format_func=surface_names.__getitem__)
if sample:
    result = moderator.check(sample, surface, audit=False)
    if result.blocked:
        st.error(f"{t('mod_blocked')}: {result.message}")
    elif result.findings:
        st.warning(result.text)
    else:
        st.success(t("mod_pass"))
    for f in result.findings:
        category_name = pii_or_category(f.category, f.rule_id)
        st.caption(t("mod_finding", action=word("act", f.action), category=category_name, rule=f.rule_id, start=f.start, end=f.end))

st.subheader(t("mod_audit"))
records = moderator.audit.read()[-50:] if moderator.audit else []
if records:
    st.dataframe(
        pd.DataFrame([{t("mod_time"): local_time(r.get("time"), seconds=True), t("mod_surfaces"): word("surf", r.get("surface")),
                       t("mod_category"): pii_or_category(r.get("category"), r.get("rule_id")), t("mod_action"): word("act", r.get("action")),
                       t("mod_rule"): r.get("rule_id") or "–", t("mod_kind"): word("match", r.get("kind"))} for r in records[::-1]]),
        hide_index=True, width="stretch",
    )
else:
    st.caption(t("mod_audit_empty"))
