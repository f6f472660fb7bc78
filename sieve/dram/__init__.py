"""DRAM standards as data, the cycle-level engine behind them, and its front ends."""

from .spec import Standard, StandardError, available_standards, load_standard
from .device import CommandLog, Device, StreamResult
from .checker import Violation, check_log

__all__ = [
    "Standard",
    "StandardError",
    "available_standards",
    "load_standard",
    "Device",
    "CommandLog",
    "StreamResult",
    "Violation",
    "check_log",
]
