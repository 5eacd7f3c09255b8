"""flopcast: predict LLM training time, memory, cost and energy before spending a GPU-hour."""

__version__ = "0.1.0"
