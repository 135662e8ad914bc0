"""What a request does beyond validation, without Flask request objects: ``chat`` (a user
message and the reply that answers it), ``replies`` (replies as jobs, and the worker's
Supervisor that publishes their pieces), ``live`` (a worker's listeners of sessions' events),
``per_worker`` (what a worker process keeps for itself)."""
