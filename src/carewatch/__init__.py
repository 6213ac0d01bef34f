"""Carewatch: live oversight of commissioned care."""

__version__ = "0.1.0"
