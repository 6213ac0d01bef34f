"""A seeded, deterministic feed of realistic care events: the demo's and the benchmark's input."""

from carewatch.simulator.feed import generate_feed
from carewatch.simulator.options import FeedOptions, coming_monday

__all__ = ["FeedOptions", "coming_monday", "generate_feed"]
