package functions_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestFunctionsDoNotLinkTheDefaultCredentialChain: the function binaries
// build their AWS configuration from the Lambda environment
// (dynamoclient.New) and must not link awsconfig.LoadDefaultConfig, which
// brings every credential source of the SDK (SSO, STS, the shared files,
// credential processes, EC2 instance roles) into the binary (the small
// container credentials client is kept: dynamoclient.New uses it):
// about 1.4 MB each (docs/design.md §11). A symbol check, since the
// packages stay in the import graph (dynamoclient imports awsconfig for
// NewEnvConfig and wxadmin's NewFromDefaultConfig).
func TestFunctionsDoNotLinkTheDefaultCredentialChain(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the four functions")
	}
	dir := t.TempDir()
	fns := []string{"login", "authorizer", "api", "wechat"}
	args := []string{"build", "-tags", "lambda.norpc", "-trimpath", "-o", dir + "/"}
	for _, fn := range fns {
		args = append(args, "./"+fn)
	}
	cmd := exec.Command("go", args...) // go test puts $GOROOT/bin first in PATH
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// Whole symbol names (the packages' init tasks stay: they are in the
	// import graph).
	forbidden := []string{
		"github.com/aws/aws-sdk-go-v2/config.LoadDefaultConfig",
		"github.com/aws/aws-sdk-go-v2/credentials/ssocreds.New",
		"github.com/aws/aws-sdk-go-v2/credentials/stscreds.NewAssumeRoleProvider",
		"github.com/aws/aws-sdk-go-v2/credentials/stscreds.NewWebIdentityRoleProvider",
		"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds.New",
		"github.com/aws/aws-sdk-go-v2/credentials/processcreds.NewProvider",
		"github.com/aws/aws-sdk-go-v2/feature/ec2/imds.(*Client).GetMetadata",
		"github.com/aws/aws-sdk-go-v2/service/sts.(*Client).AssumeRole",
		"github.com/aws/aws-sdk-go-v2/service/sso.(*Client).GetRoleCredentials",
	}
	for _, fn := range fns {
		out, err := exec.Command("go", "tool", "nm", filepath.Join(dir, fn)).Output()
		if err != nil {
			t.Fatalf("go tool nm %s: %v", fn, err)
		}
		linked := map[string]bool{}
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) >= 3 {
				linked[strings.Join(f[2:], " ")] = true
			}
		}
		if !linked["github.com/wxsession/wxsession/internal/dynamoclient.New"] {
			t.Fatalf("%s: no dynamoclient.New in the symbol table; is it stripped?", fn)
		}
		for _, f := range forbidden {
			if linked[f] {
				t.Errorf("%s links %s", fn, f)
			}
		}
	}
}
