"""Loop 5, the compound learner: CTR features, the XGBoost model, evaluation and the gate."""
