package serve

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// VersionPolicy selects the versions of each model that a repository
// serves, as Triton's version_policy does. The zero value serves every
// version.
type VersionPolicy struct {
	// Latest, when > 0, serves the Latest newest versions that load (in
	// version order: numbers numerically, then names). A newer version that
	// is not loaded yet (still being written) or fails to load does not
	// count, so the older ones keep serving until it does.
	Latest int
	// Specific, when not empty, serves exactly these versions, those that
	// exist and load.
	Specific []string
}

// maxPolicyVersions bounds the versions a specific: policy may list.
const maxPolicyVersions = 1024

// ParseVersionPolicy reads "all", "latest:N" (N ≥ 1) or "specific:V1,V2,…";
// the error is a *FieldError for "version_policy".
func ParseVersionPolicy(s string) (VersionPolicy, error) {
	kind, arg, hasArg := strings.Cut(s, ":")
	switch {
	case kind == "all" && !hasArg:
		return VersionPolicy{}, nil
	case kind == "latest" && hasArg:
		n, err := strconv.Atoi(arg)
		if err != nil || n < 1 || n > maxPolicyVersions {
			return VersionPolicy{}, fieldErr("version_policy", "latest:N needs a whole number N in [1, %d], got %s", maxPolicyVersions, clipq(arg))
		}
		return VersionPolicy{Latest: n}, nil
	case kind == "specific" && hasArg:
		vs := strings.Split(arg, ",")
		if len(vs) > maxPolicyVersions {
			return VersionPolicy{}, fieldErr("version_policy", "specific: lists more than %d versions", maxPolicyVersions)
		}
		for _, v := range vs {
			if !nameRE.MatchString(v) {
				return VersionPolicy{}, fieldErr("version_policy", "specific: version %s must match %s", clipq(v), nameRE)
			}
		}
		slices.SortFunc(vs, compareVersions)
		return VersionPolicy{Specific: slices.Compact(vs)}, nil
	}
	return VersionPolicy{}, fieldErr("version_policy", "want all, latest:N or specific:V1,V2,…, got %s", clipq(s))
}

// String is the policy as ParseVersionPolicy reads it.
func (p VersionPolicy) String() string {
	switch {
	case len(p.Specific) > 0:
		return "specific:" + strings.Join(p.Specific, ",")
	case p.Latest > 0:
		return fmt.Sprintf("latest:%d", p.Latest)
	}
	return "all"
}

// wants reports whether the policy may serve version v of a model that
// already serves `newer` versions newer than v, and if not, why.
func (p VersionPolicy) wants(v string, newer int) (ok bool, why string) {
	switch {
	case len(p.Specific) > 0:
		if !slices.Contains(p.Specific, v) {
			return false, fmt.Sprintf("not served: the version policy is %s", p)
		}
	case p.Latest > 0:
		if newer >= p.Latest {
			return false, fmt.Sprintf("not served: the version policy %s serves newer versions", p)
		}
	}
	return true, ""
}
