"""Floor 2, diagnostics for people and tools: text, json, sarif and github renderers. Imports only `core`."""
