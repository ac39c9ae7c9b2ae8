"""Hypothesis strategies for metadata records (any field value the record types allow)."""

from __future__ import annotations

from hypothesis import strategies as st

from kraft.controller.records import (
    BrokerRegistrationChangeRecord,
    ConfigRecord,
    Endpoint,
    MetadataRecord,
    PartitionChangeRecord,
    PartitionRecord,
    RegisterBrokerRecord,
    RemoveTopicRecord,
    TopicRecord,
    UnregisterBrokerRecord,
)

ids = st.integers(min_value=-1, max_value=2**31 - 1)
epochs = st.integers(min_value=0, max_value=2**63 - 1)
texts = st.text(max_size=30)
broker_lists = st.lists(ids, max_size=6).map(tuple)
endpoints = st.builds(Endpoint, name=texts, host=texts, port=st.integers(0, 65535))

records: st.SearchStrategy[MetadataRecord] = st.one_of(
    st.builds(
        RegisterBrokerRecord,
        broker_id=ids,
        incarnation_id=texts,
        broker_epoch=epochs,
        endpoints=st.lists(endpoints, max_size=3).map(tuple),
        rack=st.none() | texts,
        fenced=st.booleans(),
    ),
    st.builds(UnregisterBrokerRecord, broker_id=ids, broker_epoch=epochs),
    st.builds(
        BrokerRegistrationChangeRecord,
        broker_id=ids,
        broker_epoch=epochs,
        fenced=st.none() | st.booleans(),
        in_controlled_shutdown=st.none() | st.booleans(),
    ),
    st.builds(TopicRecord, name=texts, topic_id=texts),
    st.builds(
        PartitionRecord,
        topic_id=texts,
        partition_id=ids,
        replicas=broker_lists,
        isr=broker_lists,
        leader=ids,
        leader_epoch=epochs,
        partition_epoch=epochs,
    ),
    st.builds(
        PartitionChangeRecord,
        topic_id=texts,
        partition_id=ids,
        leader=st.none() | ids,
        isr=st.none() | broker_lists,
        replicas=st.none() | broker_lists,
        unclean=st.booleans(),
    ),
    st.builds(RemoveTopicRecord, topic_id=texts),
    st.builds(
        ConfigRecord,
        resource_type=texts,
        resource_name=texts,
        name=texts,
        value=st.none() | texts,
    ),
)
