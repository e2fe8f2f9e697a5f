package admissionjson

import (
	"encoding/base64"
	"encoding/json"
	"strconv"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// appendReview appends the AdmissionReview holding resp as encoding/json
// writes it, up to insignificant differences (escaping), and a newline,
// as json.Encoder ends it. Encoding the review by reflection, with the
// patch base64-encoded into a buffer of its own, was a tenth of the
// handler's time (docs/benchmarks.md); what the handler answers is written
// here directly, the patch encoded into dst. A status with details or list
// metadata, or audit annotations, which the handler never answers with, go
// to encoding/json. TestAppendReviewEqualsStd and FuzzAppendReview hold it
// to encoding/json.
func appendReview(dst []byte, resp *admissionv1.AdmissionResponse) ([]byte, error) {
	if s := resp.Result; len(resp.AuditAnnotations) > 0 ||
		s != nil && (s.Details != nil || s.TypeMeta != (metav1.TypeMeta{}) || s.ListMeta != (metav1.ListMeta{})) {
		b, err := json.Marshal(admissionv1.AdmissionReview{TypeMeta: metaTypeV1Review, Response: resp})
		if err != nil {
			return dst, err
		}
		return append(append(dst, b...), '\n'), nil
	}
	dst = append(dst, `{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","response":{"uid":`...)
	dst = appendString(dst, string(resp.UID))
	dst = append(dst, `,"allowed":`...)
	dst = strconv.AppendBool(dst, resp.Allowed)
	if s := resp.Result; s != nil {
		dst = append(dst, `,"status":{"metadata":{}`...)
		dst = appendMember(dst, "status", s.Status)
		dst = appendMember(dst, "message", s.Message)
		dst = appendMember(dst, "reason", string(s.Reason))
		if s.Code != 0 {
			dst = append(dst, `,"code":`...)
			dst = strconv.AppendInt(dst, int64(s.Code), 10)
		}
		dst = append(dst, '}')
	}
	if len(resp.Patch) > 0 {
		dst = append(dst, `,"patch":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, resp.Patch)
		dst = append(dst, '"')
	}
	if resp.PatchType != nil {
		dst = append(dst, `,"patchType":`...)
		dst = appendString(dst, string(*resp.PatchType))
	}
	if len(resp.Warnings) > 0 {
		dst = append(dst, `,"warnings":[`...)
		for i, w := range resp.Warnings {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, w)
		}
		dst = append(dst, ']')
	}
	return append(dst, "}}\n"...), nil
}

// appendMember appends ,"name":value unless value is empty (omitempty).
func appendMember(dst []byte, name, value string) []byte {
	if value == "" {
		return dst
	}
	dst = append(append(append(dst, `,"`...), name...), `":`...)
	return appendString(dst, value)
}
