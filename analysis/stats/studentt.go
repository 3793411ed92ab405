package stats

import (
	"math"

	"gonum.org/v1/gonum/mathext"
	"gonum.org/v1/gonum/stat/distuv"
)

// largeDoF is the number of degrees of freedom above which studentT stops
// relying on gonum and evaluates the incomplete beta function itself.
//
// gonum's StudentsT computes x = ν/(ν+t²) and then x^(ν/2) and log(1-x)
// inside the Cephes incomplete beta function, so its relative error grows
// roughly in proportion to ν (about 3e-14 at ν = 100, 3e-13 at 1e3, 2e-10 at 1e6 and 2e-7 at
// 2e8, measured against 80-digit mpmath). Welch tests on large experiments
// have ν in the millions, so above largeDoF we work with log1p(t²/ν) directly.
const largeDoF = 100

// studentT is the standard Student t distribution (location 0, scale 1) with
// nu degrees of freedom. For the nu a Welch test can produce (nu >= 1) its
// methods are accurate to about 1e-13 relative, tails down to 1e-300
// included; testdata/student_t.json covers nu from 1 to 1e12.
type studentT struct {
	nu float64
}

// twoTail returns the two-sided tail probability P(|T| >= |t|), which is
// 2·Survival(|t|) = I_x(ν/2, 1/2) with x = ν/(ν+t²).
func (d studentT) twoTail(t float64) float64 {
	t = math.Abs(t)
	switch {
	case math.IsNaN(t) || math.IsNaN(d.nu):
		return math.NaN()
	case t == 0:
		return 1
	case math.IsInf(t, 1):
		return 0
	}
	if d.nu > largeDoF {
		u := t * t / d.nu // 1-x = u/(1+u), computed without cancellation
		if u <= 1 {
			return d.tailAsymptotic(u)
		}
		return d.tailSeries(u)
	}
	if t < 1 {
		// Near t = 0, x rounds towards 1 and gonum's Survival loses its small
		// distance from 1/2 (a relative error of 8e-9 at t = 1e-8). The
		// complement I_{1-x}(1/2, ν/2) is small and computed accurately, and
		// subtracting it from 1 costs nothing because it is below 0.7.
		return 1 - mathext.RegIncBeta(0.5, d.nu/2, t*t/(d.nu+t*t))
	}
	return 2 * distuv.StudentsT{Mu: 0, Sigma: 1, Nu: d.nu}.Survival(t)
}

// pdf returns the probability density at t.
func (d studentT) pdf(t float64) float64 {
	if d.nu <= largeDoF {
		return distuv.StudentsT{Mu: 0, Sigma: 1, Nu: d.nu}.Prob(t)
	}
	a := d.nu / 2
	// Γ((ν+1)/2) / (Γ(ν/2)·sqrt(νπ)) · (1+t²/ν)^(-(ν+1)/2)
	return math.Exp(lnGammaRatio(a)-(d.nu+1)/2*math.Log1p(t*t/d.nu)) *
		math.Sqrt((a-0.25)/(d.nu*math.Pi))
}

// critical returns the c > 0 with P(|T| >= c) = alpha, the critical value of a
// two-sided test at significance alpha (the 1-alpha/2 quantile), for
// 0 < alpha < 1.
//
// The starting value is gonum's Quantile for small nu and the Cornish–Fisher
// expansion around the normal quantile for large nu (where gonum's Quantile
// is off by about ν·2e-15 and returns NaN for huge ν). A few Newton steps on
// twoTail then make c as accurate as twoTail itself. twoTail is convex and
// decreasing in c, so Newton converges monotonically once an iterate falls
// to the left of the root.
func (d studentT) critical(alpha float64) float64 {
	var c float64
	if d.nu <= largeDoF {
		c = distuv.StudentsT{Mu: 0, Sigma: 1, Nu: d.nu}.Quantile(1 - alpha/2)
	} else {
		z := distuv.UnitNormal.Quantile(1 - alpha/2)
		z2 := z * z
		c = z + z*(z2+1)/(4*d.nu) + z*((5*z2+16)*z2+3)/(96*d.nu*d.nu)
	}
	for range 8 {
		step := (d.twoTail(c) - alpha) / (2 * d.pdf(c))
		next := c + step
		if !(next > 0) || math.IsInf(next, 1) {
			break // only reachable with a hopeless start; keep the estimate
		}
		c = next
		if math.Abs(step) <= 1e-15*c {
			break
		}
	}
	return c
}

// tailAsymptotic returns I_x(a, 1/2) for a = ν/2 > 50 and x = 1/(1+u) >= 1/2,
// using the asymptotic expansion of DiDonato and Morris (1992, ACM TOMS 18(3),
// "Algorithm 708", section 9, routine BGRAT) specialised to b = 1/2:
//
//	I_x(a, b) = Γ(a+b)/(Γ(a)·T^b) · Σ_n d_n J_n,  T = a + (b-1)/2,  z = -T·ln x,
//
// where J_0 = Q(b, z), the regularized upper incomplete gamma function, which
// for b = 1/2 is erfc(sqrt(z)). ln x = -log1p(u) is exact to rounding, which
// is what gonum cannot offer.
func (d studentT) tailAsymptotic(u float64) float64 {
	const (
		b      = 0.5
		nTerms = 30
		tol    = 0x1p-53
	)
	a := d.nu / 2
	T := a + (b-1)/2
	lnx := -math.Log1p(u)
	z := -T * lnx
	sz := math.Sqrt(z)
	r := math.Exp(-z) * sz / math.SqrtPi // e^{-z} z^b / Γ(b)
	v := 1 / (4 * T * T)
	h := lnx * lnx / 4

	// J_n = v·((b+2n-2)(b+2n-1)·J_{n-1} + (b+2n-1+z)·r·h^{n-1}), and
	// d_n = (b-1)·c_n + (1/n)·Σ_{i=1}^{n-1} (i·b-n)·c_i·d_{n-i} with c_n = 1/(2n+1)!.
	var c, dn [nTerms + 1]float64
	j := math.Erfc(sz)
	sum := j
	hpow := 1.0
	cn := 1.0
	for n := 1; n <= nTerms; n++ {
		bn := b + float64(2*n-2)
		j = v * (bn*(bn+1)*j + (bn+1+z)*r*hpow)
		hpow *= h
		cn /= float64(2*n) * float64(2*n+1)
		c[n] = cn
		var s float64
		for i := 1; i < n; i++ {
			s += (float64(i)*b - float64(n)) * c[i] * dn[n-i]
		}
		dn[n] = (b-1)*cn + s/float64(n)
		term := dn[n] * j
		sum += term
		if math.Abs(term) <= tol*sum {
			break
		}
	}
	return math.Exp(lnGammaRatio(a)) * sum
}

// tailSeries returns I_x(a, 1/2) for a = ν/2 > 50 and x = 1/(1+u) < 1/2 from
// the power series (DiDonato and Morris's BPSER)
//
//	I_x(a, b) = x^a / B(a, b) · Σ_{k>=0} (1-b)_k/k! · x^k/(a+k),
//
// whose terms are all positive for b = 1/2 and shrink at least like 2^-k.
// x^a = exp(-a·log1p(u)) is computed without forming x.
func (d studentT) tailSeries(u float64) float64 {
	a := d.nu / 2
	x := 1 / (1 + u)
	var sum float64
	coef := 1.0 // (1/2)_k / k!
	xk := 1.0
	for k := 0; k < 2000; k++ {
		term := coef * xk / (a + float64(k))
		sum += term
		if term <= 0x1p-54*sum {
			break
		}
		coef *= (float64(k) + 0.5) / float64(k+1)
		xk *= x
	}
	// 1/B(a, 1/2) = Γ(a+1/2)/(Γ(a)·sqrt(π)) = g·sqrt(a-1/4)/sqrt(π).
	return math.Exp(-a*math.Log1p(u)+lnGammaRatio(a)+math.Log(sum)) *
		math.Sqrt((a-0.25)/math.Pi)
}

// lnGammaRatio returns ln(Γ(a+1/2) / (Γ(a)·sqrt(a-1/4))) for a >= 15, a small
// number (about 1/(96a²)) that math.Lgamma(a+1/2)-math.Lgamma(a) would bury
// under a rounding error of about |lnΓ(a)|·1e-16. It subtracts the Stirling
// series analytically:
//
//	lnΓ(a+1/2) - lnΓ(a) = a·log1p(1/(2a)) + ln(a)/2 - 1/2 + S(a+1/2) - S(a),
//
// where S(z) = Σ B_{2k}/(2k(2k-1)·z^{2k-1}) is the Stirling correction,
// truncated after z^-13 (error below 1e-18 for z >= 15).
func lnGammaRatio(a float64) float64 {
	return a*math.Log1p(1/(2*a)) - 0.5 - 0.5*math.Log1p(-1/(4*a)) +
		stirlingCorrection(a+0.5) - stirlingCorrection(a)
}

// stirlingCorrection returns lnΓ(z) - ((z-1/2)·ln z - z + ln(2π)/2) for z >= 15.
func stirlingCorrection(z float64) float64 {
	w := 1 / (z * z)
	return (1.0/12 + w*(-1.0/360+w*(1.0/1260+w*(-1.0/1680+w*(1.0/1188+w*(-691.0/360360+w/156)))))) / z
}
