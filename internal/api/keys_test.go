package api_test

import "github.com/gantryml/gantry/internal/auth"

func newKeyPEM() (string, error) {
	k, err := auth.GenerateKey()
	if err != nil {
		return "", err
	}
	return string(auth.EncodePrivateKeyPEM(k)), nil
}
