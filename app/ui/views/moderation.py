"""Moderation page. The filters are not built yet, and this page says so: it must never pretend."""

import streamlit as st

from app.ui.i18n import t

st.title(t("nav_moderation"))
st.warning(t("moderation_todo"))
