"""The governance report (``mlplane report``): data register, model cards, controls matrix and
lineage, computed from the resolved system and the policy engine's results, rendered as JSON,
Markdown or one self-contained HTML file."""
