"""Rendering of gradprobe results: text tables, figures, HTML and JSON.

The modules here read result objects and never compute them.
"""
