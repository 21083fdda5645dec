"""The `taskstream` command (`up`, `web`, `worker`, `loadtest`) and what `up` starts for
development: an embedded Valkey and a mail catcher."""
