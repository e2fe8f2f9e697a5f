// Package admissionjson is the webhook's admission JSON path: it reads an
// AdmissionReview with the Pod in it in one pass (ReadReview, DecodePod),
// writes the answer (WriteResponse), and describes what package mutate
// added to a Pod as a JSON patch (Patch): the Pod's spec set whole, the
// bytes the API server sent with the additions spliced in, which is what
// kube-apiserver applies fastest (BenchmarkAPIServerPatch), or one add per
// added element where the spec cannot be spliced exactly.
//
// It exists for speed: each step replaces a general library call that was
// a measured share of the handler's time (docs/benchmarks.md). Differential
// tests hold every step to the library it replaces: the decode to the API
// machinery's decoder (FuzzDecode), the operation patch to the JSON patch
// diff of the whole Pods (TestPatchEqualsWholeDiff), the spliced patch to
// the operation patch as kube-apiserver's JSON patch library applies them
// (TestSplicedPatchEqualsOperations, FuzzSplice), the patch's values to
// encoding/json (TestPatchJSONEqualsStd).
package admissionjson
