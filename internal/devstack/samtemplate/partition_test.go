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

// TestSecretParameterName: the template adds the parameter name's leading
// "/", so a name given with one (which would become "//...") is refused.
func TestSecretParameterName(t *testing.T) {
	tests := []struct {
		value, want string
	}{
		{"wxsession/wechat-secret", "/wxsession/wechat-secret"},
		{"my_app.secret-1", "/my_app.secret-1"},
		{"/wxsession/wechat-secret", ""},
		{"wxsession//x", ""},
		{"wxsession/", ""},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			tmpl, err := Load(repoTemplate(t), map[string]string{"WeChatAppId": "wx1234567890abcdef", "WeChatSecretParameter": tt.value})
			if tt.want == "" {
				if err == nil {
					t.Fatalf("WeChatSecretParameter=%q accepted", tt.value)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := tmpl.Functions["LoginFunction"].Env["WECHAT_SECRET_PARAMETER"]; got != tt.want {
				t.Fatalf("WECHAT_SECRET_PARAMETER = %q, want %q", got, tt.want)
			}
		})
	}
}
