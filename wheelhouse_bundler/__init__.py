"""Move a locked Python environment across an air gap, exactly and verifiably."""

__version__ = "0.1.0"
