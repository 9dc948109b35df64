package client

import (
	"net/http"
	"time"

	"github.com/oracle/oci-go-sdk/v65/common"
)

// withTimeout returns an HTTP dispatcher with the given timeout when d is
// a plain *http.Client (as the SDK makes them); others are kept.
func withTimeout(d common.HTTPRequestDispatcher, timeout time.Duration) common.HTTPRequestDispatcher {
	if hc, ok := d.(*http.Client); ok {
		c := *hc
		c.Timeout = timeout
		return &c
	}
	return d
}
