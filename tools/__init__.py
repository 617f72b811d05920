"""Tools around the plan: the `audit` scanner and developer benchmarks."""
