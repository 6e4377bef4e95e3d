"""mlplane's test suite (a package, so that ``from tests.judges import require_judge`` works)."""
