"""Shipped JSON Schemas (package data), draft 2020-12."""
