"""The passes of the mlplane compiler: loading, diagnostics, resolution, the system model, the CLI."""
