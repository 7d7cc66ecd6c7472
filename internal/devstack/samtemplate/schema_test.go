package samtemplate

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/wxsession/wxsession/internal/dynamostore"
	"github.com/wxsession/wxsession/internal/profile"
)

// TestTemplateTablesMatchTheStores cross-checks template.yaml (what AWS
// creates) against the schemas the store packages are written for (what the
// code reads and writes): keys, attribute types, the openid index and TTL.
func TestTemplateTablesMatchTheStores(t *testing.T) {
	tmpl := loadRepo(t, appParams)
	schema := dynamostore.Schema("SessionsTable", "UsersTable")
	tests := []struct {
		logicalID string
		want      dynamodb.CreateTableInput
		ttl       string
	}{
		{"SessionsTable", schema[0], dynamostore.TTLAttribute},
		{"UsersTable", schema[1], ""},
		{"ProfilesTable", profile.Schema("ProfilesTable"), ""},
	}
	for _, tc := range tests {
		t.Run(tc.logicalID, func(t *testing.T) {
			got, ok := tmpl.Tables[tc.logicalID]
			if !ok {
				t.Fatalf("template has no table %s (tables: %v)", tc.logicalID, keys(tmpl.Tables))
			}
			if got.TTLAttribute != tc.ttl {
				t.Errorf("TTL attribute = %q, want %q", got.TTLAttribute, tc.ttl)
			}
			in := got.Input
			if !reflect.DeepEqual(in.KeySchema, tc.want.KeySchema) {
				t.Errorf("KeySchema = %s, want %s", dump(in.KeySchema), dump(tc.want.KeySchema))
			}
			if !sameAttributes(in, tc.want) {
				t.Errorf("AttributeDefinitions = %s, want %s", dump(in.AttributeDefinitions), dump(tc.want.AttributeDefinitions))
			}
			if in.BillingMode != tc.want.BillingMode {
				t.Errorf("BillingMode = %q, want %q", in.BillingMode, tc.want.BillingMode)
			}
			if len(in.GlobalSecondaryIndexes) != len(tc.want.GlobalSecondaryIndexes) {
				t.Fatalf("GSIs = %s, want %s", dump(in.GlobalSecondaryIndexes), dump(tc.want.GlobalSecondaryIndexes))
			}
			for i, g := range in.GlobalSecondaryIndexes {
				w := tc.want.GlobalSecondaryIndexes[i]
				if *g.IndexName != *w.IndexName || !reflect.DeepEqual(g.KeySchema, w.KeySchema) || g.Projection.ProjectionType != w.Projection.ProjectionType {
					t.Errorf("GSI %d = %s, want %s", i, dump(g), dump(w))
				}
			}
		})
	}
}

func sameAttributes(a, b dynamodb.CreateTableInput) bool {
	m := map[string]string{}
	for _, d := range a.AttributeDefinitions {
		m[*d.AttributeName] = string(d.AttributeType)
	}
	if len(m) != len(b.AttributeDefinitions) {
		return false
	}
	for _, d := range b.AttributeDefinitions {
		if m[*d.AttributeName] != string(d.AttributeType) {
			return false
		}
	}
	return true
}

func dump(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%+v", v)
	}
	return string(b)
}

// TestTemplateIsPartitionNeutral keeps template.yaml deployable in the AWS
// China regions: ARNs and URLs come from ${AWS::Partition},
// ${AWS::URLSuffix}, !GetAtt or SAM policy templates, never literals.
func TestTemplateIsPartitionNeutral(t *testing.T) {
	data, err := os.ReadFile(repoTemplate(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, literal := range []string{"arn:aws:", "arn:aws-cn:", "amazonaws.com"} {
		if strings.Contains(string(data), literal) {
			t.Errorf("template.yaml contains the partition-specific literal %q", literal)
		}
	}
	if !strings.Contains(string(data), "${AWS::URLSuffix}") {
		t.Error("the ApiUrl output should be built with ${AWS::URLSuffix}")
	}
}
