"""DRAM standards as data, the cycle-level engine behind them, and its front ends."""

from .spec import Standard, StandardError, available_standards, load_standard
from .device import CommandLog, Device, StreamResult, StreamSession
from .checker import Violation, check_log

__all__ = [
    "Standard",
    "StandardError",
    "available_standards",
    "load_standard",
    "Device",
    "CommandLog",
    "StreamResult",
    "StreamSession",
    "Violation",
    "check_log",
]
