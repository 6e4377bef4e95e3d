"""Floor 4, one environment end to end: the pipeline (compile), lowering through the target, emitters, the atomic writer, the build report and the graph view."""
