// A client program driven by the test suite: confluent-kafka-go's schema registry client and serdes
// against kschema's read API. For each format it serializes a record with the subject's latest version
// (no auto-registration), deserializes it again and prints one JSON line: the schema ID in the wire
// format and the record read back.
package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"

	"github.com/confluentinc/confluent-kafka-go/v2/schemaregistry"
	"github.com/confluentinc/confluent-kafka-go/v2/schemaregistry/serde"
	"github.com/confluentinc/confluent-kafka-go/v2/schemaregistry/serde/avrov2"
	"github.com/confluentinc/confluent-kafka-go/v2/schemaregistry/serde/jsonschema"
	"github.com/confluentinc/confluent-kafka-go/v2/schemaregistry/serde/protobuf"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

type result struct {
	Format   string         `json:"format"`
	SchemaID int            `json:"schema_id"`
	Latest   int            `json:"latest_id"`
	Record   map[string]any `json:"record"`
}

func main() {
	if len(os.Args) != 5 {
		fail(fmt.Errorf("usage: client URL FORMAT TOPIC RECORD_JSON"))
	}
	url, format, topic, raw := os.Args[1], os.Args[2], os.Args[3], os.Args[4]
	client, err := schemaregistry.NewClient(schemaregistry.NewConfig(url))
	check(err)
	latest, err := client.GetLatestSchemaMetadata(topic + "-value")
	check(err)
	var record map[string]any
	check(json.Unmarshal([]byte(raw), &record))
	if format == "avro" {
		integers(record) // Avro's int wants a Go integer, JSON decoding gives float64
	}
	var payload []byte
	var back map[string]any
	switch format {
	case "avro":
		conf := avrov2.NewSerializerConfig()
		conf.AutoRegisterSchemas, conf.UseLatestVersion = false, true
		ser, err := avrov2.NewSerializer(client, serde.ValueSerde, conf)
		check(err)
		// avrov2 takes a pointer to the value (a struct, or a map for a record).
		payload, err = ser.Serialize(topic, &record)
		check(err)
		des, err := avrov2.NewDeserializer(client, serde.ValueSerde, avrov2.NewDeserializerConfig())
		check(err)
		check(des.DeserializeInto(topic, payload, &back))
	case "json":
		conf := jsonschema.NewSerializerConfig()
		conf.AutoRegisterSchemas, conf.UseLatestVersion, conf.EnableValidation = false, true, true
		ser, err := jsonschema.NewSerializer(client, serde.ValueSerde, conf)
		check(err)
		payload, err = ser.Serialize(topic, record)
		check(err)
		// The serializer validated the record against the served schema; reading into a map skips
		// validation, which the library only runs for concrete types.
		des, err := jsonschema.NewDeserializer(client, serde.ValueSerde, jsonschema.NewDeserializerConfig())
		check(err)
		check(des.DeserializeInto(topic, payload, &back))
	case "protobuf":
		msg := message(url, topic, latest.Version)
		check(protojsonInto(raw, msg))
		conf := protobuf.NewSerializerConfig()
		conf.AutoRegisterSchemas, conf.UseLatestVersion = false, true
		ser, err := protobuf.NewSerializer(client, serde.ValueSerde, conf)
		check(err)
		payload, err = ser.Serialize(topic, msg)
		check(err)
		des, err := protobuf.NewDeserializer(client, serde.ValueSerde, protobuf.NewDeserializerConfig())
		check(err)
		out := dynamicpb.NewMessage(msg.Descriptor())
		check(des.DeserializeInto(topic, payload, out))
		back = protoToMap(out)
	default:
		fail(fmt.Errorf("unknown format %q", format))
	}
	if len(payload) < 5 || payload[0] != 0 {
		fail(fmt.Errorf("not the Confluent wire format: %x", payload))
	}
	out, err := json.Marshal(result{format, int(binary.BigEndian.Uint32(payload[1:5])), latest.ID, back})
	check(err)
	fmt.Println(string(out))
}

// message builds a dynamic message type from the version's FileDescriptorProto (format=serialized).
func message(url, topic string, version int) *dynamicpb.Message {
	serialized, err := getSerialized(url, topic+"-value", version)
	check(err)
	fdp := &descriptorpb.FileDescriptorProto{}
	check(proto.Unmarshal(serialized, fdp))
	file, err := protodesc.NewFile(fdp, protoregistry.GlobalFiles)
	check(err)
	return dynamicpb.NewMessage(file.Messages().Get(0))
}

func protoToMap(msg *dynamicpb.Message) map[string]any {
	out := map[string]any{}
	msg.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		out[string(fd.Name())] = v.Interface()
		return true
	})
	return out
}

func integers(record map[string]any) {
	for key, value := range record {
		if number, ok := value.(float64); ok && number == float64(int64(number)) {
			record[key] = int(number)
		}
	}
}

func check(err error) {
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "client:", err)
	os.Exit(1)
}
