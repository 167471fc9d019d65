"""dart-hub: adapt expert reasoning datasets to small students (DART) and publish them on the Hub."""

__version__ = "0.1.0"
