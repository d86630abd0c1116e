"""Streamlit helpers shared by Home.py and the pages (the only Streamlit code outside pages/)."""
