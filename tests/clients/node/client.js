// A client program driven by the test suite: @kafkajs/confluent-schema-registry against kschema's read
// API. It encodes a record with the subject's latest version, decodes it again and prints one JSON line:
// the schema ID in the wire format, the latest ID the registry reported and the record read back.
"use strict";

const { SchemaRegistry } = require("@kafkajs/confluent-schema-registry");

async function main() {
  const [url, format, topic, raw] = process.argv.slice(2);
  const subject = `${topic}-value`;
  if (!raw) throw new Error("usage: client.js URL FORMAT TOPIC RECORD_JSON");
  const registry = new SchemaRegistry({ host: url });
  const latestId = await registry.getLatestSchemaId(subject);
  const encoded = await registry.encode(latestId, JSON.parse(raw));
  if (encoded[0] !== 0) throw new Error(`not the Confluent wire format: ${encoded.toString("hex")}`);
  const decoded = await registry.decode(encoded);
  const record = format === "protobuf" && typeof decoded.toJSON === "function" ? decoded.toJSON() : decoded;
  process.stdout.write(
    JSON.stringify({ format, schema_id: encoded.readUInt32BE(1), latest_id: latestId, record }) + "\n",
  );
}

main().catch((error) => {
  process.stderr.write(`client: ${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});
