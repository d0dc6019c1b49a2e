"""One router per loop."""
