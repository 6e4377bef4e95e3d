"""Floor 5, what a change would do: both sides lowered (git base, applied record or none), the graph diff, the ML summary, risk flags, the plan cache and the text, markdown and JSON formats."""
