"""Multi-task movie recommender on MovieLens 100K (TensorFlow Recommenders)."""
