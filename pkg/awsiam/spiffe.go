package awsiam

import "strings"

// SPIFFESubject is the "sub" of a JWT-SVID: the SPIFFE ID itself. An ID
// ending in "/*" (validated by identity.ValidateSPIFFEIDPattern) becomes a
// StringLike pattern for every ID below that path.
func SPIFFESubject(id string) Subject {
	return Subject{Value: id, Pattern: strings.HasSuffix(id, "/*")}
}
