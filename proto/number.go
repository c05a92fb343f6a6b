package proto

import (
	"errors"
	"strconv"
)

// The number rule of SPEC §15: RFC 8785 writes every number as the shortest
// decimal that reads back as the same IEEE-754 double (ECMAScript's
// Number.prototype.toString). A request number is accepted only when that
// canonical form denotes exactly the decimal value the caller wrote, so the
// signed bytes never say something else: 1.0, 1e2, -0 and 0.1 pass (their
// canonical forms 1, 100, 0 and 0.1 are the same values); 9007199254740993,
// 1.00000000000000000001, 1e-400 (it would become 0) and 1e400 (it has no
// double) are refused.
//
// The comparison is between exact decimals, normalised to sign, significant
// digits and the power of ten of the last significant digit; floats are
// only used to find the canonical form. The input's exponent is read with
// saturation and never used to size anything, so 1e999999999 costs as much
// as 1e9.

var (
	errNumberSyntax    = errors.New("malformed number")
	errNumberRange     = errors.New("number out of the range of an IEEE-754 double")
	errNumberPrecision = errors.New("number would change in its RFC 8785 form (more precision than an IEEE-754 double holds)")
)

// maxShortestDigits is the most significant digits the shortest round-trip
// form of a double can have.
const maxShortestDigits = 17

// expSaturation bounds the exponent read from input; any larger magnitude
// is out of the range of a double anyway.
const expSaturation = 1 << 40

// CheckNumber reports whether s is a JSON number (RFC 8259 grammar, nothing
// around it) whose RFC 8785 form denotes the same decimal value: it is
// finite, not rounded to zero, and needs no more precision than the IEEE-754
// double RFC 8785 serialises holds.
func CheckNumber(s string) error {
	return checkNumber(s)
}

// decimal is a number normalised to sign, significant digits (no leading or
// trailing zeros; empty for zero) and the power of ten of the last digit.
type decimal struct {
	neg    bool
	digits [maxShortestDigits]byte
	n      int   // len(digits) used
	exp    int64 // value = digits × 10^exp
	zero   bool
	// significant counts all significant digits, digits holding only the
	// first maxShortestDigits of them.
	significant int
}

func checkNumber(s string) error {
	in, tooPrecise, err := parseDecimal(s)
	if err != nil {
		return err
	}
	if in.zero {
		return nil // -0, 0.000, 0e99: canonical form "0", the same value
	}
	// The value is about 10^mag. Far outside a double's range (about
	// 4.9e-324 to 1.8e308), refuse without asking strconv (whose error
	// allocates); near the edges ParseFloat decides.
	if mag := in.exp + int64(in.significant) - 1; mag > 309 || mag < -325 {
		return errNumberRange
	}
	f, perr := strconv.ParseFloat(s, 64)
	if perr != nil || f == 0 {
		// ParseFloat reports ErrRange for ±Inf; a non-zero value that
		// rounds to zero has no double either.
		return errNumberRange
	}
	if tooPrecise {
		return errNumberPrecision
	}
	var buf [32]byte
	canon, _, _ := parseDecimal(string(strconv.AppendFloat(buf[:0], f, 'e', -1, 64)))
	if canon.neg != in.neg || canon.n != in.n || canon.exp != in.exp || canon.digits != in.digits {
		return errNumberPrecision
	}
	return nil
}

// parseDecimal parses a JSON number, or the output of strconv's 'e' format,
// into its normalised decimal. tooPrecise reports more than
// maxShortestDigits significant digits (then d.digits holds only the first
// ones). It never allocates. (Not generic over []byte: escape analysis
// then loses track of callers' string(b) conversions and they allocate.)
func parseDecimal(s string) (d decimal, tooPrecise bool, err error) {
	i := 0
	if i < len(s) && s[i] == '-' {
		d.neg = true
		i++
	}
	// Integer part: 0 or [1-9][0-9]*. strconv's output uses the same form.
	intStart := i
	if i < len(s) && s[i] == '0' {
		i++
	} else {
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	intEnd := i
	if intEnd == intStart {
		return d, false, errNumberSyntax
	}
	fracStart, fracEnd := i, i
	if i < len(s) && s[i] == '.' {
		i++
		fracStart = i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		fracEnd = i
		if fracEnd == fracStart {
			return d, false, errNumberSyntax
		}
	}
	var exp int64
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		negExp := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			negExp = s[i] == '-'
			i++
		}
		expStart := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			if exp < expSaturation {
				exp = exp*10 + int64(s[i]-'0')
			}
			i++
		}
		if i == expStart {
			return d, false, errNumberSyntax
		}
		if negExp {
			exp = -exp
		}
	}
	if i != len(s) {
		return d, false, errNumberSyntax
	}
	// The digits are s[intStart:intEnd] followed by s[fracStart:fracEnd];
	// digit k of that sequence is worth 10^(exp + fracLen - 1 - k).
	intLen, fracLen := intEnd-intStart, fracEnd-fracStart
	total := intLen + fracLen
	at := func(k int) byte {
		if k < intLen {
			return s[intStart+k]
		}
		return s[fracStart+k-intLen]
	}
	first, last := 0, total-1
	for first < total && at(first) == '0' {
		first++
	}
	if first == total {
		d.zero, d.neg = true, false
		return d, false, nil
	}
	for at(last) == '0' {
		last--
	}
	d.exp = exp - int64(fracLen) + int64(total-1-last)
	d.significant = last - first + 1
	for k := first; k <= last && d.n < maxShortestDigits; k++ {
		d.digits[d.n] = at(k)
		d.n++
	}
	return d, d.significant > maxShortestDigits, nil
}
