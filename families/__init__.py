"""Model family adapters and the data layer; every hyperparameter comes from the plan's step."""

__all__: list[str] = []
