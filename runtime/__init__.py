"""The executor: runs a compiled plan exactly, step by step, and records what happened."""

__all__: list[str] = []
