"""Consumer groups over the Kafka protocol (the classic group protocol): a pure state machine
per group (state), its asyncio shell with loading, unloading and persistence (coordinator),
the offsets topic (offsets_topic, records) and the Kafka API handlers (handlers).
See docs/consumer-groups.md."""
