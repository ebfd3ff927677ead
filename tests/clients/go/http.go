package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/dynamicpb"
)

// getSerialized fetches a Protobuf version as a base64 FileDescriptorProto, as Confluent's
// `format=serialized` returns it.
func getSerialized(base, subject string, version int) ([]byte, error) {
	resp, err := http.Get(fmt.Sprintf("%s/subjects/%s/versions/%d?format=serialized", base, url.PathEscape(subject), version))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET serialized: %d %s", resp.StatusCode, body)
	}
	var v struct {
		Schema string `json:"schema"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, err
	}
	return base64.StdEncoding.DecodeString(v.Schema)
}

func protojsonInto(raw string, msg *dynamicpb.Message) error {
	return protojson.Unmarshal([]byte(raw), msg)
}
