"""Hand-written codecs for the two APIs on every record's path, Produce and Fetch.

kio decodes into and encodes from generic dataclasses; at a thousand single-record produces
a second that generic path was a fifth of a partition leader's CPU. These modules read
requests into small named tuples and write answers straight from the handlers' values,
following Kafka's JSON schemas (ProduceRequest.json, FetchResponse.json, ...) version by
version; property tests hold them byte for byte to kio, which is generated from the same
schemas. Every other API keeps using kio (broker.kafka.codec).
"""
