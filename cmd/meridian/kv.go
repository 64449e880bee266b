package main

import (
	"strings"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
)

// parsePairs parses repeated "k=v" flag values (the value may itself hold
// '='); an empty key, a missing '=' or a repeated key is an error, so a typo
// never silently drops an encryption context entry.
func parsePairs(flag string, vals []string) ([][2]string, error) {
	seen := make(map[string]bool, len(vals))
	pairs := make([][2]string, 0, len(vals))
	for _, v := range vals {
		k, val, ok := strings.Cut(v, "=")
		switch {
		case !ok:
			return nil, usageErrorf("--%s %q: want KEY=VALUE", flag, v)
		case k == "":
			return nil, usageErrorf("--%s %q: empty key", flag, v)
		case seen[k]:
			return nil, usageErrorf("--%s: key %q given twice", flag, k)
		}
		seen[k] = true
		pairs = append(pairs, [2]string{k, val})
	}
	return pairs, nil
}

// parseContext turns --context flags into an encryption context (nil if none).
func parseContext(flag string, vals []string) (map[string]string, error) {
	pairs, err := parsePairs(flag, vals)
	if err != nil || len(pairs) == 0 {
		return nil, err
	}
	m := make(map[string]string, len(pairs))
	for _, p := range pairs {
		m[p[0]] = p[1]
	}
	return m, nil
}

// parseTags turns --tag flags into tags, in the order given.
func parseTags(vals []string) ([]*apiv1.Tag, error) {
	pairs, err := parsePairs("tag", vals)
	if err != nil {
		return nil, err
	}
	tags := make([]*apiv1.Tag, 0, len(pairs))
	for _, p := range pairs {
		tags = append(tags, &apiv1.Tag{TagKey: p[0], TagValue: p[1]})
	}
	return tags, nil
}
