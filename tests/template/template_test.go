// Package template checks template.yaml the way AWS will read it: translated
// by samtranslator (the SAM transform CloudFormation runs) for the aws and
// aws-cn partitions, and linted by cfn-lint for a region of each; and read by
// the local stack's template reader for checks that need no Python.
//
// Both tools are Python; python3 on these machines has them. A machine
// without python3 or samtranslator skips the tests with a message; one whose
// python3 has samtranslator but not cfn-lint skips only the lint.
package template

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxsession/wxsession/internal/devstack/samtemplate"
)

// partitions are the regions the template must work in, one per partition.
var partitions = []struct{ partition, region string }{
	{"aws", "us-east-1"},
	{"aws-cn", "cn-north-1"},
}

// secretParameterARN is the one resource the login function may read from
// SSM: the parameter named by WeChatSecretParameter (given without its
// leading slash).
const secretParameterARN = "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/${WeChatSecretParameter}"

// appsParameterARN is the path the WeChatApps parameters lie under.
const appsParameterARN = "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/${WeChatAppsParameterPath}/*"

type statement struct {
	Effect   string
	Action   any // string or []string
	Resource any
}

type role struct {
	ManagedPolicyArns []any
	Policies          []struct {
		PolicyName     string
		PolicyDocument struct{ Statement []statement }
	}
}

func actions(s statement) []string {
	switch a := s.Action.(type) {
	case string:
		return []string{a}
	case []any:
		out := make([]string, 0, len(a))
		for _, v := range a {
			s, _ := v.(string)
			out = append(out, s)
		}
		return out
	}
	return nil
}

func python(t *testing.T) string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed: cannot run samtranslator or cfn-lint")
	}
	return py
}

func repoFile(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// translate runs samtranslator on template.yaml for region and returns the
// CloudFormation resources.
func translate(t *testing.T, region string) map[string]struct {
	Type       string
	Properties json.RawMessage
} {
	t.Helper()
	cmd := exec.Command(python(t), filepath.Join("testdata", "translate.py"), repoFile(t, "template.yaml"), region)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 3 {
		t.Skipf("samtranslator not installed for python3: %s", strings.TrimSpace(stderr.String()))
	}
	if err != nil {
		t.Fatalf("samtranslator (%s): %v\n%s", region, err, stderr.String())
	}
	var cfn struct {
		Resources map[string]struct {
			Type       string
			Properties json.RawMessage
		}
	}
	if err := json.Unmarshal(out, &cfn); err != nil {
		t.Fatalf("samtranslator output: %v", err)
	}
	return cfn.Resources
}

// TestIAM: every role's inline statements name their resources (no "*"),
// only the login and wechat functions read SSM, and each may call exactly
// ssm:GetParameter on exactly the secret's parameter (docs/design.md §7.7,
// §10).
// Managed policy ARNs follow the partition.
func TestIAM(t *testing.T) {
	for _, p := range partitions {
		t.Run(p.partition, func(t *testing.T) {
			res := translate(t, p.region)
			roles := 0
			var ssm []string // "<role>: <actions> on <resource>"
			for id, r := range res {
				if r.Type != "AWS::IAM::Role" {
					continue
				}
				roles++
				var rl role
				if err := json.Unmarshal(r.Properties, &rl); err != nil {
					t.Fatalf("%s: %v", id, err)
				}
				for _, arn := range rl.ManagedPolicyArns {
					if s, ok := arn.(string); ok && !strings.HasPrefix(s, "arn:"+p.partition+":") {
						t.Errorf("%s: managed policy %s is not in partition %s", id, s, p.partition)
					}
				}
				for _, pol := range rl.Policies {
					for _, st := range pol.PolicyDocument.Statement {
						acts := actions(st)
						if st.Resource == "*" || slices.Contains(anySlice(st.Resource), any("*")) {
							t.Errorf("%s/%s: %v on every resource (*)", id, pol.PolicyName, acts)
						}
						for _, a := range acts {
							if strings.HasPrefix(strings.ToLower(a), "ssm:") {
								res, _ := json.Marshal(st.Resource)
								ssm = append(ssm, id+": "+strings.Join(acts, ",")+" on "+string(res))
								break
							}
						}
					}
				}
			}
			if roles == 0 {
				t.Fatal("no IAM role in the translated template")
			}
			// The secret's parameter, and (only when WeChatApps is set)
			// the parameters under WeChatAppsParameterPath (docs/design.md §7.9).
			want, _ := json.Marshal([]any{map[string]string{"Fn::Sub": secretParameterARN},
				map[string]any{"Fn::If": []any{"HasWeChatApps", map[string]string{"Fn::Sub": appsParameterARN}, map[string]string{"Ref": "AWS::NoValue"}}}})
			slices.Sort(ssm)
			wantSSM := []string{"LoginFunctionRole: ssm:GetParameter on " + string(want), "WechatFunctionRole: ssm:GetParameter on " + string(want)}
			if !slices.Equal(ssm, wantSSM) {
				t.Errorf("SSM permissions: %q\nwant exactly %q", ssm, wantSSM)
			}
		})
	}
}

func anySlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// TestCfnLint: cfn-lint finds nothing in template.yaml for a region of each
// partition.
func TestCfnLint(t *testing.T) {
	py := python(t)
	if err := exec.Command(py, "-c", "import cfnlint.runner").Run(); err != nil {
		t.Skip("cfn-lint not installed for python3")
	}
	args := []string{"-c", "import sys; from cfnlint.runner import main; sys.argv[0] = 'cfn-lint'; sys.exit(main())",
		"--regions"}
	for _, p := range partitions {
		args = append(args, p.region)
	}
	args = append(args, "--", repoFile(t, "template.yaml"))
	cmd := exec.Command(py, args...)
	cmd.Env = append(os.Environ(), "AWS_DEFAULT_REGION="+partitions[0].region)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cfn-lint: %v\n%s", err, out)
	}
}

// TestIndexesHaveSortKeys: every global secondary index in template.yaml has
// a sort key. dynalite keys the entry of a hash-only index by the index key
// plus 24 bits of a hash of the table key, so items that share an index key
// overwrite each other's entries there (logout-all once left 9 of 16,000
// sessions behind); a sort key that makes entries unique keeps the local
// stack and the tests honest (docs/design.md §6.3).
func TestIndexesHaveSortKeys(t *testing.T) {
	tmpl, err := samtemplate.Load(repoFile(t, "template.yaml"), map[string]string{"WeChatAppId": "wx0000000000local"})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for id, tbl := range tmpl.Tables {
		for _, g := range tbl.Input.GlobalSecondaryIndexes {
			n++
			if len(g.KeySchema) != 2 || g.KeySchema[1].KeyType != types.KeyTypeRange {
				t.Errorf("%s: index %s has no sort key", id, aws.ToString(g.IndexName))
			}
		}
	}
	if n == 0 {
		t.Fatal("no global secondary index found in template.yaml")
	}
}

// TestFixedEgressOption: FixedEgressIp builds a NAT gateway with an Elastic
// IP and puts exactly the two WeChat-calling functions in its private
// subnets, behind the UseFixedEgress condition (docs/design.md §7.8).
func TestFixedEgressOption(t *testing.T) {
	res := translate(t, "us-east-1")
	for id, typ := range map[string]string{"EgressNatGateway": "AWS::EC2::NatGateway", "EgressIp": "AWS::EC2::EIP",
		"EgressDynamoDBEndpoint": "AWS::EC2::VPCEndpoint", "EgressSecurityGroup": "AWS::EC2::SecurityGroup"} {
		if res[id].Type != typ {
			t.Errorf("%s: type %q, want %s", id, res[id].Type, typ)
		}
	}
	for id, r := range res {
		if r.Type != "AWS::Lambda::Function" {
			continue
		}
		var props struct{ VpcConfig json.RawMessage }
		if err := json.Unmarshal(r.Properties, &props); err != nil {
			t.Fatal(err)
		}
		inVPC := strings.Contains(string(props.VpcConfig), "UseFixedEgress")
		if want := id == "LoginFunction" || id == "WechatFunction"; inVPC != want {
			t.Errorf("%s: VpcConfig %s, want conditional VPC: %v", id, props.VpcConfig, want)
		}
	}
}
