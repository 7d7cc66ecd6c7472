package samtemplate

import (
	"os"
	"strings"
	"testing"

	"github.com/wxsession/wxsession/internal/config"
)

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

// TestTemplateVariablesAreInTheConfigTable keeps internal/config the one
// owner of environment variable names: every variable template.yaml gives a
// function is in config.Vars.
func TestTemplateVariablesAreInTheConfigTable(t *testing.T) {
	known := map[string]bool{}
	for _, v := range config.Vars {
		if known[v.Name] {
			t.Errorf("config.Vars lists %s twice", v.Name)
		}
		known[v.Name] = true
	}
	tmpl := loadRepo(t, appParams)
	for id, f := range tmpl.Functions {
		for name := range f.Env {
			if !known[name] {
				t.Errorf("%s: template.yaml sets %s, which config.Vars does not list", id, name)
			}
		}
	}
}
