// A client program driven by the test suite: Confluent's own JavaScript client, @confluentinc/schemaregistry,
// against kschema's read API. It serializes a record with the subject's latest version (no auto-registration),
// deserializes it again and prints one JSON line: the schema ID in the wire format, the latest ID the
// registry reported and the record read back. For Protobuf the message type is built from the version's
// FileDescriptorProto (format=serialized), which the deserializer also reads.
"use strict";

const {
  SchemaRegistryClient,
  SerdeType,
  AvroSerializer,
  AvroDeserializer,
  JsonSerializer,
  JsonDeserializer,
  ProtobufSerializer,
  ProtobufDeserializer,
} = require("@confluentinc/schemaregistry");
const { create, createFileRegistry, createMutableRegistry, fromBinary, toJson } = require("@bufbuild/protobuf");
const { FileDescriptorProtoSchema } = require("@bufbuild/protobuf/wkt");

const SERDES = {
  avro: [AvroSerializer, AvroDeserializer],
  json: [JsonSerializer, JsonDeserializer],
  protobuf: [ProtobufSerializer, ProtobufDeserializer],
};

async function messageType(url, subject, version) {
  const response = await fetch(`${url}/subjects/${encodeURIComponent(subject)}/versions/${version}?format=serialized`);
  if (!response.ok) throw new Error(`GET serialized: ${response.status} ${await response.text()}`);
  const { schema } = await response.json();
  const file = fromBinary(FileDescriptorProtoSchema, Buffer.from(schema, "base64"));
  const registry = createFileRegistry(file, () => undefined);
  const prefix = file.package ? `${file.package}.` : "";
  return registry.getMessage(prefix + file.messageType[0].name);
}

async function main() {
  const [url, format, topic, raw] = process.argv.slice(2);
  if (!raw || !SERDES[format]) throw new Error("usage: client-confluent.js URL avro|json|protobuf TOPIC RECORD_JSON");
  const subject = `${topic}-value`;
  const client = new SchemaRegistryClient({ baseURLs: [url] });
  const latest = await client.getLatestSchemaMetadata(subject);
  const [Serializer, Deserializer] = SERDES[format];
  const conf = { autoRegisterSchemas: false, useLatestVersion: true };
  let record = JSON.parse(raw);
  let desc = null;
  if (format === "protobuf") {
    desc = await messageType(url, subject, latest.version);
    conf.registry = createMutableRegistry(desc);
    record = create(desc, record);
  } else if (format === "json") {
    conf.validate = true;
  }
  const payload = await new Serializer(client, SerdeType.VALUE, conf).serialize(topic, record);
  if (payload[0] !== 0) throw new Error(`not the Confluent wire format: ${payload.toString("hex")}`);
  let back = await new Deserializer(client, SerdeType.VALUE, {}).deserialize(topic, payload);
  if (format === "protobuf") back = toJson(desc, back);
  process.stdout.write(
    JSON.stringify({ format, schema_id: payload.readUInt32BE(1), latest_id: latest.id, record: back }) + "\n",
  );
}

main().catch((error) => {
  process.stderr.write(`client: ${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});
