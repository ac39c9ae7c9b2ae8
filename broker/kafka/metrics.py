"""Prometheus metrics of the Kafka listener (SPEC §6, native `kraft_` series), on the node's
registry:

  kraft_kafka_requests_total{api}              requests answered (or taken, for acks=0)
  kraft_kafka_request_latency_seconds{api}     from a request's frame read to its answer
                                               ready to send (a long-polled fetch included)
  kraft_kafka_connections                      connections open now
  kraft_kafka_connections_closed_for_bad_input_total
                                               closed for what the client sent (a bad
                                               frame, header or body; an unserved API)

What an operator looks at first when clients report slowness: which APIs the clients call,
how often, and whether the broker or the network is slow (this latency against the client's).
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from broker.kafka.apis import ApiKey
from broker.metrics import LATENCY_BUCKETS_SECONDS


class KafkaListenerMetrics:
    def __init__(self, registry: CollectorRegistry, connection_count: Callable[[], int]) -> None:
        self._requests = Counter(
            "kraft_kafka_requests",
            "Kafka-protocol requests answered (acks=0 produces: taken), by API",
            ["api"],
            registry=registry,
        )
        self._latency = Histogram(
            "kraft_kafka_request_latency_seconds",
            "From a Kafka request's frame read to its answer ready to send, by API (a fetch's "
            "long poll included)",
            ["api"],
            buckets=LATENCY_BUCKETS_SECONDS,
            registry=registry,
        )
        self._bad_input = Counter(
            "kraft_kafka_connections_closed_for_bad_input",
            "Kafka-protocol connections closed for what the client sent (bad frame, header "
            "or body, an API or version not served)",
            registry=registry,
        )
        connections = Gauge(
            "kraft_kafka_connections", "Kafka-protocol connections open", registry=registry
        )
        connections.set_function(lambda: float(connection_count()))
        # label lookups are the expensive part of an observation: one per API, made once
        self._by_api: dict[ApiKey, tuple[Counter, Histogram]] = {}

    def observe_request(self, api: ApiKey, seconds: float) -> None:
        series = self._by_api.get(api)
        if series is None:
            name = api.message_name
            series = self._by_api[api] = (
                self._requests.labels(api=name),
                self._latency.labels(api=name),
            )
        series[0].inc()
        series[1].observe(seconds)

    def count_bad_input(self) -> None:
        self._bad_input.inc()
