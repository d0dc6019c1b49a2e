"""Creative DNA (loop 4), the service: decode uploads with PyAV, run the pure cores, store the
fingerprints; "why ads win" from the account's history.

- ``service``: extraction from bytes or features, stored DNA, win probability, gene effects.
- ``step``: the cycle's DNA for new creatives.
- ``thumbnails``: the frame kept of each analysed video, stored and served per account.
"""

__all__ = ["service", "step", "thumbnails"]
