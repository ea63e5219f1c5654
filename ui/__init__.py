"""Streamlit helpers shared by the pages (UI only; the logic lives in fer_core)."""
