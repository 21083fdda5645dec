"""One module per HTTP resource; `tasks.py` also mounts the routes every kind shares."""
