"""Temporal workflows: time, waiting and human steps. No business rules here."""
