"""Allow ``python -m mlplane``."""

from mlplane.compiler.cli.main import main

if __name__ == "__main__":
    main()
