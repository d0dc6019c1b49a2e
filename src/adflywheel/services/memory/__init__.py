"""Winner memory (loop 1), the service: qualify winners from the store, keep them for good,
search them by DNA similarity.

- ``service``: qualify and index, search, the k-NN prior, the shared anonymised index.
- ``index``: the FAISS index of a scope, kept true to the database, and its look-up cache.
- ``step``: the cycle's indexing of new winners.

Private: ``files`` (index files through fsspec), ``shared`` (the cross-account index).
"""

__all__ = ["index", "service", "step"]
