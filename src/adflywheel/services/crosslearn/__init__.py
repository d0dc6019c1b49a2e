"""Cross-account learning (loop 3), the service: opt-in, niches, noised contributions,
publication at k accounts, and the niche priors new accounts and variants start from.

- ``service``: settings, contribution and publication, the published patterns.
- ``priors``: a new variant's Thompson prior from its niche's published pattern.
- ``step``: the cycle's contribution (and, daily, the shared winner index).
"""

__all__ = ["priors", "service", "step"]
