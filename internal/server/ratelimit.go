package server

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gantryml/gantry/internal/api"
	"github.com/gantryml/gantry/internal/auth"
)

// Default request rate limits per tenancy.
const (
	DefaultRateLimit = 200 // requests per second
	DefaultRateBurst = 400
)

// rateLimiter is a token bucket per tenancy: rate tokens a second up to
// burst; a request without a token is answered 429 TooManyRequests with
// a retry-after header, as OCI throttles.
type rateLimiter struct {
	rate  float64
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// maxBuckets bounds the limiter's memory; idle full buckets are dropped
// when it is reached.
const maxBuckets = 10000

func newRateLimiter(rate float64, burst int) *rateLimiter {
	return &rateLimiter{rate: rate, burst: float64(burst), now: time.Now, buckets: map[string]*bucket{}}
}

// take spends a token of key; when there is none it returns how long until one.
func (l *rateLimiter) take(key string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= maxBuckets {
			l.prune(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

func (l *rateLimiter) prune(now time.Time) {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.buckets, k)
		}
	}
}

// wrap limits authenticated requests per tenancy.
func (l *rateLimiter) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := auth.Caller(r.Context())
		if ok {
			if allowed, wait := l.take(p.TenancyID); !allowed {
				secs := int(math.Ceil(wait.Seconds()))
				w.Header().Set("retry-after", strconv.Itoa(max(secs, 1)))
				api.WriteError(w, r, http.StatusTooManyRequests, api.CodeTooManyRequests,
					"too many requests for this tenancy; retry after "+strconv.Itoa(max(secs, 1))+"s")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
