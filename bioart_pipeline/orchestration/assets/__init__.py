"""One module per stage, in data-flow order."""
