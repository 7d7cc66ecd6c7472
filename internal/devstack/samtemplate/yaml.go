package samtemplate

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// shortTags maps CloudFormation's YAML short-form tags to their long-form
// keys. !GetAtt and !Ref are handled separately (their scalar forms differ).
var shortTags = map[string]string{
	"!Sub":          "Fn::Sub",
	"!Join":         "Fn::Join",
	"!Select":       "Fn::Select",
	"!Split":        "Fn::Split",
	"!If":           "Fn::If",
	"!Equals":       "Fn::Equals",
	"!Not":          "Fn::Not",
	"!And":          "Fn::And",
	"!Or":           "Fn::Or",
	"!FindInMap":    "Fn::FindInMap",
	"!Base64":       "Fn::Base64",
	"!ImportValue":  "Fn::ImportValue",
	"!GetAZs":       "Fn::GetAZs",
	"!Cidr":         "Fn::Cidr",
	"!Length":       "Fn::Length",
	"!ToJsonString": "Fn::ToJsonString",
	"!Transform":    "Fn::Transform",
}

// toValue converts a YAML node into plain Go values (map[string]any, []any,
// string, int, float64, bool, nil), turning CloudFormation short-form tags
// into their long form ({"Ref": x}, {"Fn::Sub": x}, ...), so the resolver
// sees one representation whatever the author wrote.
func toValue(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return toValue(n.Content[0])
	case yaml.AliasNode:
		if n.Alias == nil {
			return nil, fmt.Errorf("line %d: dangling alias", n.Line)
		}
		return toValue(n.Alias)
	}

	tag := n.Tag
	if strings.HasPrefix(tag, "!") && !strings.HasPrefix(tag, "!!") {
		return tagged(n, tag)
	}

	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: mapping key is not a scalar", k.Line)
			}
			if k.Value == "<<" && k.Tag == "!!merge" {
				return nil, fmt.Errorf("line %d: YAML merge keys (<<) are not supported by CloudFormation", k.Line)
			}
			val, err := toValue(v)
			if err != nil {
				return nil, err
			}
			m[k.Value] = val
		}
		return m, nil
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			val, err := toValue(c)
			if err != nil {
				return nil, err
			}
			s = append(s, val)
		}
		return s, nil
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
		return v, nil
	}
	return nil, fmt.Errorf("line %d: unexpected YAML node kind %d", n.Line, n.Kind)
}

// tagged converts a node carrying a CloudFormation short-form tag.
func tagged(n *yaml.Node, tag string) (any, error) {
	// The node's content without the tag.
	plain := *n
	plain.Tag = ""
	if n.Kind == yaml.ScalarNode {
		plain.Tag = "!!str"
	}
	inner, err := toValue(&plain)
	if err != nil {
		return nil, err
	}
	switch tag {
	case "!Ref":
		s, ok := inner.(string)
		if !ok {
			return nil, fmt.Errorf("line %d: !Ref takes a logical id or parameter name", n.Line)
		}
		return map[string]any{"Ref": s}, nil
	case "!Condition":
		s, ok := inner.(string)
		if !ok {
			return nil, fmt.Errorf("line %d: !Condition takes a condition name", n.Line)
		}
		return map[string]any{"Condition": s}, nil
	case "!GetAtt":
		if s, ok := inner.(string); ok {
			res, attr, found := strings.Cut(s, ".")
			if !found || res == "" || attr == "" {
				return nil, fmt.Errorf("line %d: !GetAtt %q: want LogicalId.Attribute", n.Line, s)
			}
			return map[string]any{"Fn::GetAtt": []any{res, attr}}, nil
		}
		return map[string]any{"Fn::GetAtt": inner}, nil
	}
	if long, ok := shortTags[tag]; ok {
		return map[string]any{long: inner}, nil
	}
	return nil, fmt.Errorf("line %d: unknown YAML tag %s", n.Line, tag)
}
