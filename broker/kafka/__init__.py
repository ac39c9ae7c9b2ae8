"""The Kafka wire protocol on the CLIENT listener (SPEC §3, issue 6).

framing.py reads length-prefixed frames, header.py parses request headers and writes response
headers, codec.py turns message bodies into kio dataclasses and back, apis.py lists the APIs
and versions served, handlers*.py map each API onto the broker's operations (the
ReplicaManager for produce/fetch/list-offsets, the metadata image, the ControllerGateway for
topic administration) and server.py runs the listener. Record batches pass through as the
bytes the client sent and the log stored.
"""
