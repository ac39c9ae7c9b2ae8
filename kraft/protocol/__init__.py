"""What the data plane's clients and brokers share: Kafka's error codes (errors.py) and the
native client protocol's message shapes and limits (native.py, docs/decisions/0005)."""
