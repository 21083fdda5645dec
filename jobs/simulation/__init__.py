"""The financial simulation: its input (`input.py`, no NumPy: the web process validates
with it) and the vectorised model that runs it (`engine.py`, NumPy, workers only)."""
