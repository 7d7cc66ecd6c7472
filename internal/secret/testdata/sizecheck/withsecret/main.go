// Command withsecret is base plus packages config and secret (see
// secret.TestBinarySizeBudget).
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/wxsession/wxsession/internal/config"
	"github.com/wxsession/wxsession/internal/secret"
)

func main() {
	cfg, err := awsconfig.LoadDefaultConfig(context.Background())
	if err != nil {
		panic(err)
	}
	c, err := config.LoadLogin(os.Getenv)
	if err != nil {
		panic(err)
	}
	s, err := secret.Source{AWS: cfg}.Load(context.Background())
	if err != nil {
		panic(err)
	}
	db := dynamodb.NewFromConfig(cfg)
	lambda.Start(func(ctx context.Context) error {
		_, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &c.SessionsTable, ConsistentRead: new(s != "")})
		return err
	})
}
