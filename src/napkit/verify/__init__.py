"""Verification of NAP specifications (placeholder init, filled in below)."""
