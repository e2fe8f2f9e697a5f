// Package admissionjson is the webhook's admission JSON path: it reads an
// AdmissionReview with the Pod in it in one pass (ReadReview, DecodePod),
// writes the answer (WriteResponse), and describes what package mutate
// added to a Pod as a JSON patch (Patch).
//
// It exists for speed: each step replaces a general library call that was
// a measured share of the handler's time (docs/benchmarks.md). Differential
// tests hold every step to the library it replaces: the decode to the API
// machinery's decoder (FuzzDecode), the patch to the JSON patch diff of the
// whole Pods (TestPatchEqualsWholeDiff), the patch's values to
// encoding/json (TestPatchJSONEqualsStd).
package admissionjson
