package identity

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Profile is one more role a ServiceAccount grants its Pods (Profiles),
// named for the AWS config profile that carries it.
type Profile struct {
	Name    string
	RoleARN string
}

// MaxProfiles bounds the profiles of one ServiceAccount: the config file
// goes into a Pod annotation, and each role is checked one by one.
const MaxProfiles = 32

// profileName: what an AWS config section name can hold without quoting
// in every SDK, and what an env var value carries safely.
var profileName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// DefaultProfile is the config file's section for role-arn; no profile may
// take its name.
const DefaultProfile = "default"

// ValidateProfileName reports why s cannot be a profile name, or nil.
func ValidateProfileName(s string) error {
	if s == DefaultProfile {
		return fmt.Errorf("profile name %q is reserved for the role-arn annotation's role", s)
	}
	if !profileName.MatchString(s) {
		return fmt.Errorf("profile name %q is not 1 to 64 letters, digits, '.', '_' or '-' (starting with a letter or digit)", Shorten(s, 64))
	}
	return nil
}

// ParsedProfiles is a Profiles value: the usable profiles, in the order
// given, every name the value declares (usable or not), and a warning for
// each item that is not usable.
type ParsedProfiles struct {
	Profiles []Profile
	Declared map[string]bool
	Warnings []string
}

// ParseProfiles parses a Profiles value, "name=<role ARN>" items separated
// by commas, white space trimmed. It never fails: an item without a valid
// name or role is left out with a warning, so a typo grants less, never
// more; a name given twice is left out altogether (which role was meant is
// not known). Items past MaxProfiles are left out, with one warning.
func ParseProfiles(value string) ParsedProfiles {
	p := ParsedProfiles{Declared: map[string]bool{}}
	warn := func(format string, args ...any) {
		p.Warnings = append(p.Warnings, fmt.Sprintf("service account annotation %s: "+format, append([]any{Profiles}, args...)...))
	}
	seen := map[string]int{}
	n := 0
	for item := range strings.SplitSeq(value, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		if n++; n > MaxProfiles {
			warn("more than %d profiles; the rest are ignored", MaxProfiles)
			break
		}
		name, arn, ok := strings.Cut(item, "=")
		name, arn = strings.TrimSpace(name), strings.TrimSpace(arn)
		if !ok {
			warn("item %q is not name=<role ARN>; ignored", Shorten(item, 64))
			continue
		}
		if err := ValidateProfileName(name); err != nil {
			warn("%v; ignored", err)
			continue
		}
		p.Declared[name] = true
		if seen[name]++; seen[name] == 2 {
			warn("profile %q is named more than once; none of its roles is used", name)
		}
		if err := ValidateRoleARN(arn); err != nil {
			warn("profile %q: role %v; the profile is not written", name, err)
			continue
		}
		p.Profiles = append(p.Profiles, Profile{Name: name, RoleARN: arn})
	}
	p.Profiles = slices.DeleteFunc(p.Profiles, func(pr Profile) bool { return seen[pr.Name] > 1 })
	return p
}

// maxContainerProfiles bounds the work one annotation can ask for.
const maxContainerProfiles = 256

// ParseContainerProfiles parses a ContainerProfiles value,
// "container=profile" items separated by commas. Unlike the other
// annotations a bad item is an error: the Pod asks for a role per
// container, and admitting it with another is worse than refusing it.
func ParseContainerProfiles(value string) (map[string]string, error) {
	out := map[string]string{}
	for item := range strings.SplitSeq(value, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		if len(out) >= maxContainerProfiles {
			return nil, fmt.Errorf("more than %d items", maxContainerProfiles)
		}
		container, profile, ok := strings.Cut(item, "=")
		container, profile = strings.TrimSpace(container), strings.TrimSpace(profile)
		if !ok || container == "" || profile == "" {
			return nil, fmt.Errorf("item %q is not container=profile", Shorten(item, 64))
		}
		if _, dup := out[container]; dup {
			return nil, fmt.Errorf("container %q is named more than once", Shorten(container, 64))
		}
		out[container] = profile
	}
	return out, nil
}
