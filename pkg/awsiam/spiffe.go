package awsiam

import (
	"fmt"
	"regexp"
	"strings"
)

// spiffeTrustDomain is the trust domain charset of the SPIFFE ID standard:
// lower case letters, digits, '.', '-' and '_'.
var spiffeTrustDomain = regexp.MustCompile(`^[a-z0-9._-]+$`)

// spiffeSegment is one path segment: letters, digits, '.', '-' and '_'.
var spiffeSegment = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// maxSPIFFEIDLength is the SPIFFE standard's limit on a whole ID.
const maxSPIFFEIDLength = 2048

// ValidateSPIFFEID reports why id is not a SPIFFE ID, or nil. A final path
// segment "*" is accepted: it asks for every ID below that path.
func ValidateSPIFFEID(id string) error {
	rest, ok := strings.CutPrefix(id, "spiffe://")
	switch {
	case !ok:
		return fmt.Errorf("%q does not start with spiffe://", id)
	case len(id) > maxSPIFFEIDLength:
		return fmt.Errorf("is %d characters long (at most %d)", len(id), maxSPIFFEIDLength)
	}
	td, path, _ := strings.Cut(rest, "/")
	if !spiffeTrustDomain.MatchString(td) {
		return fmt.Errorf("%q: trust domain %q may hold only lower case letters, digits, '.', '-' and '_'", id, td)
	}
	if path == "" {
		return fmt.Errorf("%q names a whole trust domain; give a workload path (spiffe://%s/...)", id, td)
	}
	segs := strings.Split(path, "/")
	for i, s := range segs {
		if s == "*" && i == len(segs)-1 && i > 0 {
			continue
		}
		switch {
		case s == "":
			return fmt.Errorf("%q has an empty path segment (a doubled or trailing '/')", id)
		case s == "." || s == "..":
			return fmt.Errorf("%q has a %q path segment", id, s)
		case s == "*":
			return fmt.Errorf("%q: '*' is only accepted as the last segment below a path, as in spiffe://%s/ns/*", id, td)
		case !spiffeSegment.MatchString(s):
			return fmt.Errorf("%q: path segment %q may hold only letters, digits, '.', '-' and '_'", id, s)
		}
	}
	return nil
}

// SPIFFESubject is the "sub" of a JWT-SVID: the SPIFFE ID itself. An ID
// ending in "/*" (validated by ValidateSPIFFEID) becomes a StringLike
// pattern for every ID below that path.
func SPIFFESubject(id string) Subject {
	return Subject{Value: id, Pattern: strings.HasSuffix(id, "/*")}
}
