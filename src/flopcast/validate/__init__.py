"""validate: measurement CSV → jobs → predictions → error report."""

from flopcast.validate.report import summarize, validate_file
from flopcast.validate.training import TrainingCase, predict_case, prepare_training_rows

__all__ = ["TrainingCase", "predict_case", "prepare_training_rows", "summarize", "validate_file"]
