"""The task record: a task's state, its events and its result in Redis, written by one
script (`write.lua`) through `TaskStore`'s transitions and read back by `read.lua`.
`keys.py` names every key and channel. Both processes use it; it knows no kind."""
