"""The HTTP service: an app factory, bearer-key auth, one router per loop under /api/ml."""
