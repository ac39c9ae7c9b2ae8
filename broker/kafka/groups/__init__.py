"""Consumer groups over the Kafka protocol (the classic group protocol): the values of the
protocol (model), a pure state machine per group (state), its asyncio shell with loading,
unloading and persistence (coordinator), the offsets topic (offsets_topic, records), the
Kafka API handlers (handlers), and the cluster-wide view for HTTP and metrics (inspect,
metrics). See docs/consumer-groups.md."""
