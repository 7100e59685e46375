"""What a run made: the self-contained report page, run comparisons, and MLflow tracking."""
