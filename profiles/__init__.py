"""Shipped YAML profiles (package data): base.yaml, families/*.yaml, machines/*.yaml."""
