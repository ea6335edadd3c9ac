"""technic: a market scanner built as a scheduled dataflow pipeline."""
__version__ = "0.1.0"
