package admissionjson

import (
	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// decodeOptions make the JSON v2 decoder read what the API machinery's
// decoder (sigs.k8s.io/json, case-sensitive) reads, the same way: names
// match case-sensitively, invalid UTF-8 becomes U+FFFD, and a repeated name
// is not an error. The v2 decoder takes half the time of the v1-based one
// on an AdmissionReview, and decoding was most of the handler's time
// (docs/benchmarks.md).
var decodeOptions = jsonv2.JoinOptions(
	jsontext.AllowInvalidUTF8(true),
	jsontext.AllowDuplicateNames(true),
)

// unmarshal decodes one JSON value, with nothing after it, into v.
func unmarshal(data []byte, v any) error { return jsonv2.Unmarshal(data, v, decodeOptions) }
