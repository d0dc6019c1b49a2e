"""The compound learner (loop 5), the service: base predictions, ensemble weights learnt on a
time-forward holdout, served predictions, and the model registry.

- ``service``: predict, record predictions, learn and keep the ensemble weights.
- ``training``: train a challenger as of an instant and let the gate decide; promote, roll back.
- ``priors`` / ``serving_priors``: the compound prediction as a new variant's Thompson prior.
- ``ctr_data``: the model's rows and contexts as of an instant (no peeking past it).
- ``step``: the cycle's first model, weights and this hour's predictions.
- ``serving``: ``predict`` answered from what the hour computed (the caches, their sizes).

Private: ``registry`` (artifacts, versions, the champion alias).
"""

__all__ = ["ctr_data", "priors", "service", "serving", "serving_priors", "step", "training"]
