"""What a request does beyond validation, without Flask request objects: ``chat`` (a user
message and the assistant's reply, stored once)."""
