"""The language model: what a job asks and what answers (`model.py`, with the offline
model), Gemini through its SDK (`gemini.py`), and Korean particles for the prompts
(`korean.py`)."""
