"""Floor 6, the command line: options parsed into one library call each, output printed. No logic of its own."""
