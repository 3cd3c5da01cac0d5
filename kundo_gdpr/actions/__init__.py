"""Erase and export: what an approved request does to the desk."""
