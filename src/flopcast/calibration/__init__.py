"""Calibration: fit efficiency parameters per GPU family to measurements.

``flopcast calibrate FILE.csv`` fits a handful of :class:`~flopcast.specs.Efficiency` fields
per GPU family by least squares on log(predicted/measured), with a robust loss (so a few rows
the model cannot explain do not drag the rest) and a weak pull toward the documented priors
(so a parameter the data do not constrain stays where physics put it). The shipped
``default.yaml`` is fitted on ../shared/measurements/training.csv only.
"""

from flopcast.calibration.fit import FITTED_PARAMETERS, calibrate, leave_one_source_out

__all__ = ["FITTED_PARAMETERS", "calibrate", "leave_one_source_out"]
