"""Runs inside a pod of the node tests: confluent-kafka's SchemaRegistryClient and serdes against the
registry's in-cluster Service, one record per format of the examples, serialized with the latest registered
version and read back by a separate client (as a consumer would). Prints one JSON line per format."""

import json
import struct
import sys
from typing import Any

from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

url = sys.argv[1]
ctx = SerializationContext("roundtrip", MessageField.VALUE)


def conf(subject: str) -> dict[str, Any]:
    return {
        "auto.register.schemas": False,
        "use.latest.version": True,
        "subject.name.strategy": lambda _ctx, _name: subject,
    }


def report(fmt: str, subject: str, frame: bytes, back: object, sent: object) -> None:
    latest = SchemaRegistryClient({"url": url}).get_latest_version(subject)
    schema_id = struct.unpack(">bI", frame[:5])[1]
    line = {"format": fmt, "subject": subject, "schema_id": schema_id, "latest_id": latest.schema_id}
    sys.stdout.write(json.dumps({**line, "equal": back == sent}) + "\n")
    sys.stdout.flush()


# Avro: the Customer record.
avro_subject = "com.acme.Customer"
schema = SchemaRegistryClient({"url": url}).get_latest_version(avro_subject).schema.schema_str
record = {"id": "c-1", "email": "c1@example.com"}
frame = AvroSerializer(SchemaRegistryClient({"url": url}), schema, conf=conf(avro_subject))(record, ctx)
back = AvroDeserializer(SchemaRegistryClient({"url": url}))(frame, ctx)
report("AVRO", avro_subject, frame, back, record)

# JSON Schema: the money object.
json_subject = "acme.money.json"
schema = SchemaRegistryClient({"url": url}).get_latest_version(json_subject).schema.schema_str
money = {"amount": 1250, "currency": "EUR"}
frame = JSONSerializer(schema, SchemaRegistryClient({"url": url}), conf=conf(json_subject))(money, ctx)
back = JSONDeserializer(None, schema_registry_client=SchemaRegistryClient({"url": url}))(frame, ctx)
report("JSON", json_subject, frame, back, money)

# Protobuf: acme.Money, its class made from a descriptor (what protoc would generate for acme/money.proto).
proto_subject = "acme/money.proto"
file = descriptor_pb2.FileDescriptorProto(name="acme/money.proto", package="acme", syntax="proto3")
message = file.message_type.add(name="Money")
message.field.add(
    name="units",
    number=1,
    type=descriptor_pb2.FieldDescriptorProto.TYPE_INT64,
    label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
)
message.field.add(
    name="currency",
    number=2,
    type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
    label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
)
pool = descriptor_pool.DescriptorPool()
pool.Add(file)
Money = message_factory.GetMessageClass(pool.FindMessageTypeByName("acme.Money"))
value = Money(units=42, currency="CHF")
proto_conf = {**conf(proto_subject), "use.deprecated.format": False}
frame = ProtobufSerializer(Money, SchemaRegistryClient({"url": url}), conf=proto_conf)(value, ctx)
back = ProtobufDeserializer(
    Money, {"use.deprecated.format": False}, schema_registry_client=SchemaRegistryClient({"url": url})
)(frame, ctx)
report("PROTOBUF", proto_subject, frame, back, value)
