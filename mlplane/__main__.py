"""Allow ``python -m mlplane``."""

from mlplane.compiler.cli import main

if __name__ == "__main__":
    main()
