package entitlement

import (
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// poeClaims are the claims of an offline PoE (SPEC §6).
type poeClaims struct {
	Issuer        string           `json:"iss"`
	Subject       string           `json:"sub"` // installation
	Tenant        string           `json:"tid"`
	Plan          string           `json:"plan"`
	Quotas        *Quotas          `json:"quotas,omitempty"`
	VersionWindow *Window          `json:"versionWindow,omitempty"`
	Expiry        *jwt.NumericDate `json:"exp"`
	IssuedAt      *jwt.NumericDate `json:"iat"`
	NotBefore     *jwt.NumericDate `json:"nbf,omitempty"`
	ID            string           `json:"jti"`
}

var poeAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.EdDSA}

// skew tolerated on PoE times.
const skew = 30 * time.Second

// verifyJWT verifies an offline PoE against the licensing keys.
func (c *Checker) verifyJWT(raw string) (Verdict, error) {
	deny := func(format string, args ...any) (Verdict, error) {
		v := Verdict{State: StateDenied, Reason: fmt.Sprintf(format, args...)}
		return v, &Error{Err: ErrDenied, Verdict: v}
	}
	if len(raw) > 16<<10 {
		return deny("PoE larger than 16 KiB")
	}
	tok, err := jwt.ParseSigned(raw, poeAlgs)
	if err != nil {
		return deny("PoE is not a signed JWT (ES256, ES384 or EdDSA)")
	}
	var cl poeClaims
	verified := false
	for _, k := range c.cfg.LicensingKeys {
		if err := tok.Claims(k, &cl); err == nil {
			verified = true
			break
		}
	}
	if !verified {
		return deny("PoE signature does not verify with any licensing key")
	}
	now := c.cfg.Now()
	switch {
	case c.cfg.Issuer != "" && cl.Issuer != c.cfg.Issuer:
		return deny("PoE iss %q is not the licensing issuer", cl.Issuer)
	case cl.Expiry == nil:
		return deny("PoE has no exp")
	case now.After(cl.Expiry.Time().Add(skew)):
		return deny("PoE expired at %s", cl.Expiry.Time().UTC().Format(time.RFC3339))
	case cl.NotBefore != nil && now.Add(skew).Before(cl.NotBefore.Time()):
		return deny("PoE not valid before %s", cl.NotBefore.Time().UTC().Format(time.RFC3339))
	case cl.IssuedAt != nil && now.Add(skew).Before(cl.IssuedAt.Time()):
		return deny("PoE issued in the future")
	case cl.Tenant == "":
		return deny("PoE has no tid")
	case cl.Subject == "":
		return deny("PoE has no sub (installation)")
	case cl.Plan == "":
		return deny("PoE has no plan")
	}
	return Verdict{
		State: StateValid, Tenant: cl.Tenant, Installation: cl.Subject, Plan: cl.Plan,
		Quotas: cl.Quotas, VersionWindow: cl.VersionWindow, Expiry: cl.Expiry.Time(),
	}, nil
}
